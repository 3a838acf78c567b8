"""The statistics behind every verdict: intervals that cover at small n and by source recording, tests of the
mean against a threshold, corrections, and rank correlations with intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probe.analyses import stats
from probe.analyses.bandshift import ShiftSettings, assign_verdicts, summarise_per_band


def test_nans_are_left_out_of_means_intervals_and_tests() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 1.0, size=(40, 3))
    values[::2, 1] = np.nan
    values[:, 2] = np.nan
    mean, low, high = stats.bootstrap_mean_ci(values, n_boot=500, rng=rng)
    assert np.isclose(mean[0], values[:, 0].mean()) and np.isclose(mean[1], np.nanmean(values[:, 1]))
    assert low[1] < mean[1] < high[1]
    assert np.isnan([mean[2], low[2], high[2]]).all()
    p_values = stats.t_test_p(values)
    assert p_values[0] < 1e-6 and p_values[1] < 1e-3 and p_values[2] == 1.0


def test_t_tests_match_scipy_without_groups() -> None:
    from scipy.stats import ttest_1samp

    values = np.random.default_rng(1).normal(0.4, 1.0, size=(12, 2))
    for alternative in ("two-sided", "less", "greater"):
        expected = ttest_1samp(values, 0.25, alternative=alternative).pvalue
        np.testing.assert_allclose(stats.t_test_p(values, null=0.25, alternative=alternative), expected, rtol=1e-10)


def _coverage(n: int, draw, true_mean: float, method: str, replications: int = 600) -> float:
    data = draw(np.random.default_rng(n), (n, replications))
    _, low, high = stats.bootstrap_mean_ci(data, 0.95, 2000, np.random.default_rng(1), method=method)
    return float(np.mean((low <= true_mean) & (true_mean <= high)))


SKEWED = {"exponential": (lambda rng, shape: rng.exponential(1.0, shape), 1.0),
          "lognormal": (lambda rng, shape: rng.lognormal(0.0, 1.0, shape), float(np.exp(0.5)))}


@pytest.mark.parametrize("distribution", sorted(SKEWED))
def test_the_studentised_interval_covers_skewed_data_at_small_n(distribution: str) -> None:
    """At 8 units the percentile interval covers 80 % of the time where 95 % is claimed; the studentised one holds
    near the nominal rate (VALIDATION.md records the numbers)."""
    draw, true_mean = SKEWED[distribution]
    studentised, percentile = (_coverage(8, draw, true_mean, m) for m in ("studentized", "percentile"))
    assert studentised >= 0.89 and studentised >= percentile + 0.05, (studentised, percentile)
    assert _coverage(40, draw, true_mean, "studentized") >= 0.91


def test_gaussian_intervals_cover_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    replications = rng.normal(loc=1.0, scale=2.0, size=(50, 1000))
    _, low, high = stats.bootstrap_mean_ci(replications, level=0.95, n_boot=2000, rng=rng)
    assert 0.93 <= np.mean((low <= 1.0) & (1.0 <= high)) <= 0.975
    _, low90, high90 = stats.bootstrap_mean_ci(replications, level=0.90, n_boot=2000, rng=rng)
    assert 0.87 <= np.mean((low90 <= 1.0) & (1.0 <= high90)) <= 0.93


def test_no_interval_below_the_minimum_number_of_units() -> None:
    values = np.random.default_rng(2).normal(size=(stats.MIN_INTERVAL_UNITS - 1, 1))
    mean, low, high = stats.bootstrap_mean_ci(values)
    assert np.isfinite(mean[0]) and np.isnan(low[0]) and np.isnan(high[0])
    mean, low, high = stats.bootstrap_mean_ci(np.vstack([values, [[0.0]]]))
    assert np.isfinite(low[0]) and np.isfinite(high[0])


def test_clips_cut_from_one_recording_count_as_one_unit() -> None:
    """Five copies of each of 8 recordings: the cluster interval is the interval of 8 values, not of 40."""
    recordings = np.random.default_rng(3).normal(size=8)
    values = np.repeat(recordings, 5)[:, None]
    groups = np.repeat(np.arange(8), 5)
    naive = stats.bootstrap_mean_ci(values, rng=np.random.default_rng(0))
    clustered = stats.bootstrap_mean_ci(values, rng=np.random.default_rng(0), groups=groups)
    alone = stats.bootstrap_mean_ci(recordings[:, None], rng=np.random.default_rng(0))
    width = lambda ci: float(ci[2][0] - ci[1][0])  # noqa: E731
    assert np.isclose(clustered[0][0], recordings.mean())
    assert width(clustered) == pytest.approx(width(alone), rel=1e-9)
    assert width(clustered) > 1.8 * width(naive)
    _, se, units = stats.mean_and_se(values, groups)
    assert units[0] == 8 and se[0] == pytest.approx(recordings.std(ddof=1) / np.sqrt(8))
    assert stats.t_test_p(values, groups)[0] == pytest.approx(stats.t_test_p(recordings[:, None])[0])
    # too few recordings for an interval, however many clips
    assert np.isnan(stats.bootstrap_mean_ci(values[:20], groups=groups[:20])[1]).all()


def _verdicts(columns: list[np.ndarray], threshold: float = 3.0) -> list[str]:
    settings = ShiftSettings(n_boot=500, threshold_db=threshold)
    values = np.column_stack(columns)
    frame = pd.DataFrame({"band_index": np.arange(values.shape[1]), "near_noise_floor": False,
                          **summarise_per_band(values, settings, np.random.default_rng(0))})
    return list(assign_verdicts([frame], settings)[0].verdict)


def test_verdict_words_test_what_they_say() -> None:
    rng = np.random.default_rng(4)
    n = 40
    words = _verdicts([
        -8 + rng.normal(0, 1, n),      # clearly beyond -3 dB
        -3.4 + rng.normal(0, 2, n),    # away from 0 dB, but not shown beyond -3 dB: the old rule said "suppressed"
        8 + rng.normal(0, 1, n),       # clearly beyond +3 dB
        0.2 + rng.normal(0, 0.5, n),   # shown within ±3 dB
        2.4 + rng.normal(0, 2, n),     # inside ±3 dB on average, not shown to be
        np.zeros(n),                   # exactly nothing: the null
    ])
    assert words == ["suppressed", "inconclusive", "boosted", "preserved", "inconclusive", "preserved"]
    assert _verdicts([np.full(stats.MIN_INTERVAL_UNITS - 1, -20.0)]) == ["too few clips"]


def test_the_family_correction_spans_every_band_and_claim() -> None:
    """A band whose own 95 % test passes can fail once 3 claims x 30 bands share the error rate."""
    rng = np.random.default_rng(5)
    n = 20
    base = rng.normal(0, 1, n)
    edge = -3.0 - 2.7 * base.std(ddof=1) / np.sqrt(n) + (base - base.mean())  # one-sided p about 0.007
    alone = _verdicts([edge])
    crowd = _verdicts([edge] + [rng.normal(0, 0.3, n) for _ in range(29)])
    assert alone == ["suppressed"] and crowd[0] == "inconclusive"
    settings = ShiftSettings(n_boot=200)
    frame = pd.DataFrame({"near_noise_floor": False, **summarise_per_band(np.column_stack([edge] * 4), settings,
                                                                         np.random.default_rng(0))})
    assert (assign_verdicts([frame], settings)[0].family_tests == 12).all()


def test_rank_correlations_carry_a_bootstrap_interval_over_clips() -> None:
    rng = np.random.default_rng(6)
    profile = np.linspace(0, 1, 20)
    same = profile + rng.normal(0, 0.05, (30, 20))
    result = stats.rank_correlation_ci(same, same + rng.normal(0, 0.05, (30, 20)), rng=rng)
    assert result["spearman_rho"] > 0.9 and result["ci_low"] > 0.8 and result["bands"] == 20
    first, second = rng.normal(size=20), rng.normal(size=20)  # two unrelated profiles, seen through clip noise
    unrelated = stats.rank_correlation_ci(first + rng.normal(0, 0.5, (30, 20)), second + rng.normal(0, 0.5, (30, 20)),
                                          rng=rng)
    from scipy.stats import spearmanr

    assert unrelated["ci_low"] < spearmanr(first, second).statistic < unrelated["ci_high"]
    assert unrelated["ci_high"] - unrelated["ci_low"] > 0.1
    few = stats.rank_correlation_ci(same[:5], same[:5], rng=rng)
    assert few["spearman_rho"] == pytest.approx(1.0) and np.isnan(few["ci_low"])


def test_the_rank_correlation_interval_covers_the_profiles_true_rho() -> None:
    """Noisy clips around two fixed profiles: the interval must hold the rho of the profiles themselves. Resampled
    profiles are noisier, so a percentile interval sits below it; the basic interval covered 0.88 here when written."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    first = np.linspace(0, 1, 20)
    second = first + rng.normal(0, 0.3, 20)
    true = spearmanr(first, second).statistic
    hits = [stats.rank_correlation_ci(first + rng.normal(0, 0.6, (20, 20)), second + rng.normal(0, 0.6, (20, 20)),
                                      n_boot=400, rng=rng) for _ in range(150)]
    assert np.mean([h["ci_low"] <= true <= h["ci_high"] for h in hits]) >= 0.82


def test_corrections_known_answers_and_scipy_parity() -> None:
    from scipy.stats import false_discovery_control

    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.benjamini_hochberg(p), false_discovery_control(p))


def _cr2_by_matrices(values: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """CR2 standard error and Bell-McCaffrey df of a mean, from the general matrix formulas (X a column of ones)."""
    n = len(values)
    x = np.ones((n, 1))
    hat = x @ x.T / n
    residual = values - values.mean()
    a, rows = [], []
    for g in np.unique(groups):
        index = np.flatnonzero(groups == g)
        block = np.eye(len(index)) - hat[np.ix_(index, index)]
        w, v = np.linalg.eigh(block)
        a.append(v @ np.diag(w ** -0.5) @ v.T)
        rows.append(index)
    variance = sum((x[i].T @ ag @ residual[i]).item() ** 2 for ag, i in zip(a, rows)) / n**2
    maker = np.eye(n) - hat
    columns = np.column_stack([maker[:, i] @ ag @ x[i] / n for ag, i in zip(a, rows)])
    small = columns.T @ columns
    return float(np.sqrt(variance)), float(np.trace(small) ** 2 / np.sum(small**2))


@pytest.mark.parametrize("sizes", [[5] * 8, [1, 2, 4, 7, 12, 20, 30, 40], [1] * 7 + [30], [3, 1, 9]])
def test_cluster_moments_match_cr2_and_bell_mccaffrey(sizes: list[int]) -> None:
    """The closed forms for a mean equal the general matrix formulas; equal clusters give G - 1 df."""
    rng = np.random.default_rng(len(sizes) + sum(sizes))
    groups = np.repeat(np.arange(len(sizes)), sizes)
    values = rng.lognormal(0, 1, len(groups)) + rng.normal(0, 1, len(sizes))[groups]
    moments = stats.cluster_moments(values[:, None], groups)
    se, df = _cr2_by_matrices(values, groups)
    assert moments.mean[0] == pytest.approx(values.mean())
    assert moments.se[0] == pytest.approx(se, rel=1e-9)
    assert moments.df[0] == pytest.approx(df, rel=1e-9)
    if len(set(sizes)) == 1:
        assert moments.df[0] == pytest.approx(len(sizes) - 1)


def test_one_dominant_recording_leaves_too_few_effective_units_for_a_verdict() -> None:
    """Seven single clips and one recording of 30 clips: 8 clusters, about 2.4 effective ones, so no verdict, however
    far the mean lies; the same 8 recordings at equal size get their word."""
    rng = np.random.default_rng(6)
    settings = ShiftSettings(n_boot=500)
    for sizes, expected in (([1] * 7 + [30], "too few clips"), ([5] * 8, "suppressed")):
        groups = np.repeat(np.arange(8), sizes)
        values = (-12 + rng.normal(0, 1, 8)[groups] + rng.normal(0, 0.5, len(groups)))[:, None]
        summary = summarise_per_band(values, settings, np.random.default_rng(0), groups)
        frame = pd.DataFrame({"band_index": [0], "near_noise_floor": False, **summary})
        assert summary["units"][0] == 8
        assert assign_verdicts([frame], settings)[0].verdict.iloc[0] == expected, sizes
