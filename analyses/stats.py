"""Means with honest intervals, tests of what a verdict says, and multiple-test corrections.

The unit resampled is the independent one: a clip, or the group of clips cut from one source recording
(ESC-50's `src_file`). Every function here works on cluster sums, so a clip is its own cluster when no
groups are given. Intervals are studentised bootstrap intervals (bootstrap-t): on skewed data at 8 units
they cover near the nominal rate where the percentile interval falls short (`python -m benchmarks.planted`
records both in VALIDATION.md; tests/test_stats.py checks it). Below `MIN_INTERVAL_UNITS` no interval is given.

Verdict tests are one-sided t-tests of the mean, which is what the tables print (a Wilcoxon test would test the
pseudo-median), on the small-sample cluster-robust standard error CR2 (Bell and McCaffrey 2002) with their
degrees of freedom: with G clusters of equal size that is the usual standard error and G - 1 df; with unequal
clusters (one source recording holding most clips) the df, and the *effective* number of clusters df + 1, shrink
toward the few clusters that carry the mean, and no verdict is given below `MIN_INTERVAL_UNITS` effective ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from probe.registries import Registry
from probe.sizing import MIN_INTERVAL_UNITS  # noqa: F401  (defined with the sizing, which reads it before any training)

INTERVAL_METHODS = ("studentized", "percentile")


@dataclass(frozen=True)
class ClusterSums:
    """Per cluster and column: the sum of the finite values (G, columns) and their count."""

    sums: np.ndarray
    counts: np.ndarray
    squares: np.ndarray

    @property
    def units(self) -> np.ndarray:
        """Clusters holding at least one finite value, per column."""
        return (self.counts > 0).sum(0)


def cluster_sums(values: np.ndarray, groups: np.ndarray | None = None) -> ClusterSums:
    """Sum the finite values of `values` (N, columns) within each group (N,); no groups: each row its own."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    present = np.isfinite(flat)
    filled = np.where(present, flat, 0.0)
    if groups is None:
        return ClusterSums(filled, present.astype(np.float64), filled**2)
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    indicator = np.zeros((index.max() + 1 if len(index) else 0, len(flat)))
    indicator[index, np.arange(len(flat))] = 1.0
    return ClusterSums(indicator @ filled, indicator @ present, indicator @ filled**2)


def _mean_and_se(sums: np.ndarray, counts: np.ndarray, s_sq: np.ndarray, s_n: np.ndarray, n_sq: np.ndarray,
                 units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ratio mean sum(S) / sum(N) and its cluster-robust standard error, from (weighted) cluster moments."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        residual = np.maximum(s_sq - 2 * mean * s_n + mean**2 * n_sq, 0.0)
        se = np.sqrt(residual * units / np.maximum(units - 1, 1)) / counts
    return mean, se


@dataclass(frozen=True)
class Moments:
    """Per column: the mean, its CR2 standard error, the clusters present and the Bell-McCaffrey df."""

    mean: np.ndarray
    se: np.ndarray
    units: np.ndarray
    df: np.ndarray

    @property
    def effective_units(self) -> np.ndarray:
        """df + 1: the number of equal clusters that would carry as much information (the clusters themselves when
        they are of equal size)."""
        return self.df + 1


def cluster_moments(values: np.ndarray, groups: np.ndarray | None = None) -> Moments:
    """The mean per column of `values` (N, ...) over its finite entries, with the CR2 cluster-robust standard error
    and the Bell-McCaffrey degrees of freedom (working independence).

    For a mean (an intercept-only fit) both have closed forms. With p_g a cluster's share of the N values and S_g
    its residual sum: var = sum_g S_g^2 / (1 - p_g) / N^2, and df = 1 / (sum p_g^2 + (sum r_g)^2 - sum r_g^2) with
    r_g = p_g^2 / (1 - p_g). Equal clusters give the usual G / (G - 1) correction and G - 1 df.
    """
    values = np.asarray(values, dtype=np.float64)
    c = cluster_sums(values, groups)
    total = c.counts.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = c.sums.sum(0) / total
        share = c.counts / total
        single = share >= 1.0  # one cluster holds everything: no spread to estimate
        keep = np.where(single, 0.0, 1.0 - share)
        residual = c.sums - mean * c.counts
        se = np.sqrt(np.where(keep > 0, residual**2 / np.where(keep > 0, keep, 1.0), 0.0).sum(0)) / total
        r = np.where(keep > 0, share**2 / np.where(keep > 0, keep, 1.0), 0.0)
        df = 1.0 / ((share**2).sum(0) + r.sum(0) ** 2 - (r**2).sum(0))
    units = c.units
    df = np.where(units >= 2, df, 0.0)
    shape = values.shape[1:]
    return Moments(mean.reshape(shape), se.reshape(shape), units.reshape(shape), df.reshape(shape))


def mean_and_se(values: np.ndarray, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, CR2 cluster-robust standard error, units) per column of `values` (N, ...), NaNs left out."""
    moments = cluster_moments(values, groups)
    return moments.mean, moments.se, moments.units


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, n_boot: int = 2000,
                      rng: np.random.Generator | None = None, groups: np.ndarray | None = None,
                      method: str = "studentized",
                      min_units: int = MIN_INTERVAL_UNITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 with a bootstrap interval: (mean, low, high), each shaped values.shape[1:].

    NaN entries are left out. `groups` (N,) names each row's independent unit (a source recording); whole
    groups are resampled. The interval is NaN where a column has fewer than `min_units` units. Resampling
    draws multinomial weights over the units, so one (n_boot, G) @ (G, columns) product replaces n_boot
    copies of the data.
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"unknown interval method {method!r}; known: {', '.join(INTERVAL_METHODS)}")
    rng = rng or np.random.default_rng(0)
    values = np.asarray(values, dtype=np.float64)
    shape = values.shape[1:]
    c = cluster_sums(values, groups)
    units = c.units
    mean, se = _mean_and_se(c.sums.sum(0), c.counts.sum(0), (c.sums**2).sum(0), (c.sums * c.counts).sum(0),
                            (c.counts**2).sum(0), units)
    low, high = np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    enough = units >= max(2, min_units)
    g = len(c.sums)
    if enough.any():
        weights = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(np.float64)
        s, n = c.sums[:, enough], c.counts[:, enough]
        boot_mean, boot_se = _mean_and_se(weights @ s, weights @ n, weights @ s**2, weights @ (s * n), weights @ n**2,
                                          units[enough])
        alpha = (1 - level) / 2
        if method == "percentile":
            low[enough], high[enough] = np.nanquantile(boot_mean, [alpha, 1 - alpha], axis=0)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                t = (boot_mean - mean[enough]) / boot_se
            t = np.where(np.isnan(t) & np.isfinite(boot_mean), 0.0, t)  # a resample with no spread, at the mean
            # A resample with no spread away from the mean (tied values) has no t to rank and is left out: harmless for
            # continuous dB values, but on data with many exact ties it narrows the interval.
            t = np.where(np.isinf(t), np.nan, t)
            t_low, t_high = np.nanquantile(t, [alpha, 1 - alpha], axis=0)
            low[enough], high[enough] = mean[enough] - t_high * se[enough], mean[enough] - t_low * se[enough]
    return mean.reshape(shape), low.reshape(shape), high.reshape(shape)


def t_test_p(values: np.ndarray, groups: np.ndarray | None = None, null: float = 0.0,
             alternative: str = "two-sided") -> np.ndarray:
    """p-value per column of a t-test of the mean against `null` on the CR2 standard error with Bell-McCaffrey df
    (`cluster_moments`): `less` (mean < null), `greater`, or `two-sided`. 1 where a column has fewer than two units;
    a column with no spread gives 0 or 1."""
    return _t_p(cluster_moments(values, groups), null, alternative)


def _t_p(moments: Moments, null: float, alternative: str) -> np.ndarray:
    """`t_test_p` from a column's moments, so that several tests share one pass over the data."""
    from scipy.stats import t as student

    mean, se, units = moments.mean, moments.se, moments.units
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = (mean - null) / se
    statistic = np.where(np.isnan(statistic) & (se == 0), 0.0, statistic)
    df = np.maximum(moments.df, 1e-6)
    if alternative == "less":
        p = student.cdf(statistic, df)
    elif alternative == "greater":
        p = student.sf(statistic, df)
    elif alternative == "two-sided":
        p = np.minimum(1.0, 2 * student.sf(np.abs(statistic), df))
    else:
        raise ValueError(f"alternative is less, greater or two-sided, got {alternative!r}")
    return np.where(units >= 2, np.nan_to_num(p, nan=1.0), 1.0)


def claim_p_values(values: np.ndarray, threshold: float,
                   groups: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per column, the p-value of each claim a verdict can make about the mean shift m, against threshold T:
    `below` (m < -T, one-sided), `above` (m > T, one-sided), `within` (-T < m < T: two one-sided tests, the larger
    p). Each claim's null is its complement, so a small p is evidence for the claim's words."""
    moments = cluster_moments(values, groups)
    below = _t_p(moments, -threshold, "less")
    above = _t_p(moments, threshold, "greater")
    within = np.maximum(_t_p(moments, -threshold, "greater"), _t_p(moments, threshold, "less"))
    return {"below": below, "above": above, "within": within}


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


CORRECTIONS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("correction")
"""Multiple-comparison corrections by name (`--correction`): p-values in, adjusted p-values out."""
CORRECTIONS.register("holm", holm)
CORRECTIONS.register("fdr", benjamini_hochberg)


def bootstrap_weights(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) resampling weights over rows that draw whole groups: row i weighs as often as its group was drawn."""
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    g = index.max() + 1
    drawn = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(np.float64)
    return drawn[:, index]


def _row_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def rank_correlation_ci(first: np.ndarray, second: np.ndarray, level: float = 0.95, n_boot: int = 1000,
                        rng: np.random.Generator | None = None, groups: np.ndarray | None = None,
                        min_units: int = MIN_INTERVAL_UNITS) -> dict[str, float]:
    """Spearman's rho between the column means of two (N, bands) arrays on the same rows (a clip each; NaN where
    a route has no value), with a basic bootstrap interval (2 rho - the resampled quantiles, within [-1, 1]) that
    resamples rows (or `groups` of rows) jointly. Resampled profiles are noisier than the mean profile, so the
    resampled rhos sit below it; the basic interval reflects that shift instead of reporting it as the interval.

    The bands are the objects ranked; the clips are the independent sample, so the interval says how much the
    agreement of the two profiles depends on which clips were drawn. Bands where either mean is undefined are
    left out. No interval from fewer than `min_units` units."""
    rng = rng or np.random.default_rng(0)
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)

    def means(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
        present = np.isfinite(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ np.where(present, values, 0.0)) / (weights @ present)

    def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ra, rb = _row_ranks(a), _row_ranks(b)
        ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ra * rb).sum(-1) / np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))

    n = len(first)
    a, b = means(np.ones((1, n)), first)[0], means(np.ones((1, n)), second)[0]
    keep = np.isfinite(a) & np.isfinite(b)
    result = {"spearman_rho": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "bands": int(keep.sum())}
    if keep.sum() < 3:
        return result
    result["spearman_rho"] = float(correlation(a[keep], b[keep]))
    units = np.asarray(groups) if groups is not None else np.arange(n)
    both = np.isfinite(first[:, keep]).any(1) & np.isfinite(second[:, keep]).any(1)
    if len(np.unique(units[both])) >= max(2, min_units):
        weights = bootstrap_weights(units, n_boot, rng)
        boot_a, boot_b = means(weights, first[:, keep]), means(weights, second[:, keep])
        usable = np.isfinite(boot_a).all(1) & np.isfinite(boot_b).all(1)
        rhos = correlation(boot_a[usable], boot_b[usable])
        alpha = (1 - level) / 2
        q_low, q_high = np.nanquantile(rhos, [alpha, 1 - alpha])
        rho = result["spearman_rho"]
        result["ci_low"], result["ci_high"] = float(max(-1.0, 2 * rho - q_high)), float(min(1.0, 2 * rho - q_low))
    return result
