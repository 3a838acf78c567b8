"""The removal check and the answer built on it: the filter's attenuation, the decisions' known answers, and the
words it refuses (a band the probe dropped that the classifier needs; a level-invariant classifier's uniform drop)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from probe.analyses.answer import Remover, Replicates, answer_rows, answer_sentence, replicate_bands
from probe.analyses.config import RemovalSettings
from probe.analyses.registry import RunResult
from probe.sizing import smallest_upper_bound
from probe.analyses.removal import (decide, design_bandstop, paired_drop, remove_bands,
                                    transition_hz)
from probe.analyses.runs import RunOutputs
from probe.models.base import WaveformClassifier
from probe.synthetic import HIGH, SyntheticConfig, render_clip, render_planted_clips


def _tone_gain_db(frequency_hz: float, ranges: list[tuple[float, float]], sample_rate: int) -> float:
    t = np.arange(2 * sample_rate) / sample_rate
    x = np.sin(2 * np.pi * frequency_hz * t)[None]
    y = remove_bands(x, sample_rate, ranges)[0]
    middle = slice(sample_rate // 2, -sample_rate // 2)  # away from the ends, where the filter sees zeros
    return float(10 * np.log10(np.mean(y[middle] ** 2) / np.mean(x[0][middle] ** 2) + 1e-30))


@pytest.mark.parametrize("sample_rate", [16000, 32000])
@pytest.mark.parametrize("band", [(4500.0, 7200.0), (150.0, 1800.0), (0.0, 700.0), (5600.0, 8000.0), (22.0, 44.0)])
def test_the_band_stop_removes_the_range_and_leaves_the_rest(sample_rate: int, band: tuple[float, float]) -> None:
    """Designed for 80 dB: every tone inside the range comes out at least 75 dB down; beyond the transitions (1/6
    octave of the edge, at least 25 Hz, outside the range) the level moves by less than 0.01 dB."""
    settings = RemovalSettings()
    low, high = band
    inside = np.geomspace(max(low, 5.0), min(high, sample_rate / 2 - 5), 12)
    assert max(_tone_gain_db(f, [band], sample_rate) for f in inside) < -75
    outside = [f for f in (low - 1.05 * transition_hz(low, settings), high + 1.05 * transition_hz(high, settings))
               if 5 < f < sample_rate / 2 - 5]
    for frequency in outside:
        assert abs(_tone_gain_db(frequency, [band], sample_rate)) < 0.01, frequency
    taps = design_bandstop(max(low, 0.0), high, sample_rate) if low > 0 or high < sample_rate / 2 else None
    if taps is not None:
        np.testing.assert_allclose(taps, taps[::-1])  # symmetric and centred: zero phase


def test_removal_keeps_length_and_phase() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 300 * t)[None].astype(np.float32)
    y = remove_bands(x, rate, [(4500.0, 7200.0)])
    assert y.shape == x.shape
    np.testing.assert_allclose(y[0, 2000:-2000], x[0, 2000:-2000], atol=1e-3)  # a passband tone comes through in place


def test_paired_drop_known_answers() -> None:
    same = np.ones(40, bool)
    drop, low, high = paired_drop(same, same)
    assert drop == 0 and high == pytest.approx(smallest_upper_bound(40)) and low == pytest.approx(-high)
    assert decide(low, high, 5.0) == "undecided" and decide(low, high, 7.0) == "costs less"
    broken = np.r_[np.ones(30, bool), np.zeros(10, bool)]
    drop, low, high = paired_drop(same, broken)
    assert drop == pytest.approx(25.0) and low > 5 and decide(low, high, 5.0) == "costs more"
    assert smallest_upper_bound(120) < 2.5 < smallest_upper_bound(40)


def test_no_change_with_some_clips_wrong_either_way_keeps_an_interval() -> None:
    """36 clips right and 4 wrong, before and after alike: the plain phi is 1 and would give [0, 0] at any n; the
    interval must instead stay about as wide as with nothing wrong (and narrow as clips are added)."""
    before = np.r_[np.ones(36, bool), np.zeros(4, bool)]
    drop, low, high = paired_drop(before, before.copy())
    assert drop == 0 and low < -3 and high > 3
    assert decide(low, high, 2.0) == "undecided"
    _, _, high_more = paired_drop(np.tile(before, 5), np.tile(before, 5))
    assert 0 < high_more < high


def test_paired_drop_covers_at_its_level() -> None:
    """One-sided 95 % upper bound of the drop: simulated paired clips (3 % break, 1 % recover, 40 clips) are covered
    in at least 93 % of 2000 draws; the lower bound likewise."""
    rng = np.random.default_rng(3)
    true_drop = 100 * (0.03 - 0.01)
    upper_ok = lower_ok = 0
    for _ in range(2000):
        before = rng.random(40) < 0.8
        event = rng.random(40)
        after = np.where(before, event >= 0.03 / 0.8, event < 0.01 / 0.2)
        _, low, high = paired_drop(before, after)
        upper_ok += high >= true_drop
        lower_ok += low <= true_drop
    assert upper_ok / 2000 >= 0.93 and lower_ok / 2000 >= 0.93, (upper_ok, lower_ok)


def test_clips_of_one_recording_widen_the_interval() -> None:
    before = np.ones(40, bool)
    after = np.r_[np.zeros(4, bool), np.ones(36, bool)]
    _, _, independent = paired_drop(before, after, np.arange(40))
    _, _, clustered = paired_drop(before, after, np.repeat(np.arange(10), 4))  # the four breaks are one recording's
    assert clustered > independent


# --- the answer on a classifier with a known need --------------------------------------------------------------

RATE = 16000
SYNTHETIC = SyntheticConfig(classes_per_category=1, clips_per_class=24, seed=21)


class BandEnergyNet(nn.Module):
    def __init__(self, classes: int, normalise: bool = False) -> None:
        super().__init__()
        self.fir = nn.Conv1d(1, 12, 129, stride=4, bias=False)
        self.head = nn.Linear(12, classes)
        self.normalise = normalise

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.normalise:  # level-invariant: each clip scaled to unit power first
            waveform = waveform / waveform.pow(2).mean(-1, keepdim=True).clamp_min(1e-12).sqrt()
        energy = self.fir(waveform[:, None]).pow(2).mean(-1)
        return self.head(torch.log(energy + 1e-6))


def _high_band_classifier(normalise: bool) -> WaveformClassifier:
    """A waveform network taught to read the class from the high band alone (the low band carries a random class);
    `normalise`: it scales each clip to unit power first, as level-invariant networks do."""
    rng = np.random.default_rng([21, 1])
    targets = np.tile(np.arange(SYNTHETIC.num_classes), 16)
    x = torch.from_numpy(render_planted_clips(targets, HIGH, rng, SYNTHETIC))
    torch.manual_seed(21)
    net = BandEnergyNet(SYNTHETIC.num_classes, normalise=normalise)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        for batch in torch.randperm(len(x)).split(40):
            loss = nn.functional.cross_entropy(net(x[batch]), torch.from_numpy(targets)[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return WaveformClassifier("high", nn.Identity(), net, sample_rate=RATE,
                              class_names=[f"c{i}" for i in range(SYNTHETIC.num_classes)]).freeze()


@pytest.fixture(scope="module")
def high_band_classifier() -> WaveformClassifier:
    return _high_band_classifier(normalise=False)


@pytest.fixture(scope="module")
def level_invariant_classifier() -> WaveformClassifier:
    return _high_band_classifier(normalise=True)


def _run(classifier: WaveformClassifier, clips: int = 120) -> RunOutputs:
    rng = np.random.default_rng(77)
    targets = np.tile(np.arange(SYNTHETIC.num_classes), clips // SYNTHETIC.num_classes)
    originals = np.stack([render_clip(t, t, rng, SYNTHETIC) for t in targets])
    with torch.no_grad():
        logits = classifier(torch.from_numpy(originals)).numpy()
    ids = [f"clip{i}" for i in range(len(targets))]
    return RunOutputs(path=Path("run"), label="high--spectral gain", config={"classifier": "high", "fold": 1},
                      provenance={}, sample_rate=RATE, class_names=classifier.class_names, category_names=["all"],
                      class_categories=[0] * SYNTHETIC.num_classes, clip_ids=ids, targets=targets, originals=originals,
                      logits={"original": logits})


OCTAVES = [(177.0, 354.0), (354.0, 707.0), (707.0, 1414.0), (1414.0, 2828.0), (2828.0, 5657.0), (5657.0, 8000.0)]


def _replicates(run: RunOutputs, contrasts: list[list[float]], verdicts: list[list[str]]) -> Replicates:
    group = Replicates("high", "spectral gain", "spectral gain")
    for index, (values, words) in enumerate(zip(contrasts, verdicts)):
        table = pd.DataFrame({"band_set": "octave", "band_index": range(len(OCTAVES)),
                              "band": [f"{int(lo)}" for lo, _ in OCTAVES], "low_hz": [lo for lo, _ in OCTAVES],
                              "high_hz": [hi for _, hi in OCTAVES], "mean_shift_db": values, "verdict": words,
                              "near_noise_floor": False})
        group.results.append(RunResult(run, {"label": f"rep{index}", "fold": 1}, {"band_contrast_vs_control": table}))
    return group


def _answer(classifier, run, contrasts, verdicts, settings=RemovalSettings()):
    group = _replicates(run, contrasts, verdicts)
    remover = Remover(run, classifier, run.targets, torch.device("cpu"), settings)
    level = remover.quieter()
    invariant = decide(level[1], level[2], settings.margin_points) == "costs less"
    bands = replicate_bands(group, 3.0, invariant)
    rows = pd.DataFrame(answer_rows(group, bands, remover, settings, "accuracy"))
    return rows, answer_sentence("high", rows, group, invariant, settings, len(run.targets)), invariant


def test_a_band_the_probe_dropped_but_the_classifier_needs_is_not_confirmed(high_band_classifier) -> None:
    run = _run(high_band_classifier)
    assert (run.logits["original"].argmax(1) == run.targets).mean() > 0.8
    # five replicates agree: the low octaves kept, the top two dropped by 15-19 dB (a gain that attenuated them)
    contrasts = [[0.5, 0.2, -0.4, 0.1, -15.0 - r, -18.0 - r] for r in np.linspace(0, 1, 5)]
    verdicts = [["preserved"] * 4 + ["suppressed"] * 2] * 5
    rows, sentence, _ = _answer(high_band_classifier, run, contrasts, verdicts)
    top = rows[rows.from_hz >= 2828.0]
    assert set(top.claim) == {"not_confirmed"} and not top.confirmed.any(), rows
    assert (top.ci_low > 5).all()
    assert "not confirmed" in sentence and "can do without 2.83" not in sentence


def test_a_level_invariant_classifier_gets_no_word_from_a_uniform_drop(level_invariant_classifier) -> None:
    run = _run(level_invariant_classifier)
    contrasts = [[-10.0 - 0.1 * b + 0.2 * r for b in range(6)] for r in range(5)]  # the gain sank everywhere alike
    verdicts = [["suppressed"] * 6] * 5
    rows, sentence, invariant = _answer(level_invariant_classifier, run, contrasts, verdicts)
    assert invariant and "level-invariant" in sentence
    assert not (rows.claim == "can_do_without").any(), rows


def test_one_replicate_says_no_verdict_word(high_band_classifier) -> None:
    run = _run(high_band_classifier)
    rows, sentence, _ = _answer(high_band_classifier, run, [[0.5, 0.2, -0.4, 0.1, -6.0, -8.0]],
                                [["preserved"] * 4 + ["suppressed"] * 2])
    assert set(rows.claim) == {"no_verdict"} and "training-to-training spread is unknown" in sentence
    assert rows.removal_drop.notna().all()  # what removing the proposals costs is still measured


@pytest.mark.integration
def test_replicates_are_runs_that_differ_in_their_seed_and_the_answer_reads_them_together(
        tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    import json

    from probe.app.cli import main

    out = tmp_path / "gain"
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--probe",
                 "spectral-gain", "--epochs", "2", "--replicates", "3", "--data", f"esc50:{synthetic_root}", "--out",
                 str(out), "--device", "cpu", "--quiet"]) == 0
    seeds = [json.loads((out / f"rep-{k}" / "config.json").read_text())["config"]["seed"] for k in (1, 2, 3)]
    assert seeds == [0, 1, 2]
    analysis = tmp_path / "analysis"
    assert main(["analyse", str(out), "--out", str(analysis), "--methods", "none", "--bootstrap", "200",
                 "--no-transfer", "--device", "cpu", "--quiet"]) == 0
    answer = json.loads((analysis / "summary.json").read_text())["comparison"]["answer"]
    assert list(answer) == ["small_cnn"] and answer["small_cnn"]["replicates"] == 3
    assert len(set(answer["small_cnn"]["runs"])) == 3
    claims = pd.read_parquet(analysis / "comparison" / "answer.parquet")
    assert (claims.replicates == 3).all() and set(claims.claim) <= {"needs", "needs_one_of", "can_do_without",
                                                                     "not_confirmed", "no_verdict"}


def test_transfer_judges_only_runs_of_their_own_fold() -> None:
    """Two folds, each with its own classifier: a classifier that trained on fold 2's clips must not judge them."""
    from probe.analyses.transfer import transfer_table

    class Fixed(nn.Module):  # always says class `k`
        def __init__(self, k: int) -> None:
            super().__init__()
            self.k = k

        def forward(self, x):
            return nn.functional.one_hot(torch.full((len(x),), self.k), 2).float()

    def run(fold: int) -> RunOutputs:
        targets = np.full(8, fold - 1)
        waves = np.zeros((8, 1600), np.float32)
        return RunOutputs(path=Path(f"f{fold}"), label=f"c--ae--fold{fold}", config={"classifier": "c", "fold": fold},
                          provenance={}, sample_rate=RATE, class_names=["a", "b"], category_names=["all"],
                          class_categories=[0, 0], clip_ids=[f"{fold}-{i}" for i in range(8)], targets=targets,
                          originals=waves, reconstructions={"before": waves, "after": waves})

    judges = {("c", 1): (WaveformClassifier("c", nn.Identity(), Fixed(0), sample_rate=RATE, class_names=["a", "b"]),
                         ["a", "b"]),
              ("c", 2): (WaveformClassifier("c", nn.Identity(), Fixed(1), sample_rate=RATE, class_names=["a", "b"]),
                         ["a", "b"])}
    table = transfer_table([run(1), run(2)], judges, torch.device("cpu"))
    assert len(table) == 2 and (table.fold == [1, 2]).all() and table.own.all()
    assert (table.accuracy_original == 1.0).all()  # each fold judged by its own classifier only


def test_removing_the_whole_spectrum_is_silence() -> None:
    x = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32)
    assert not remove_bands(x, RATE, [(10.0, 8000.0)]).any()


def test_an_answer_without_claims_says_what_it_lacks() -> None:
    """Never "no band analysis" where there is one: one replicate, or too few units, is said as such."""
    from probe.analyses.answer import Replicates, no_claim_sentence

    one = Replicates("cnn", "spectral_gain", "spectral gain", results=[object()])
    said = no_claim_sentence("cnn", one, 5)
    assert said.startswith("cnn: no answer: a word needs at least 2 replicates that agree, and it has 1")
    assert "its 5 independent clips in the scored fold are too few for a verdict (at least 8)" in said
    five = Replicates("cnn", "spectral_gain", "spectral gain", results=[object()] * 5)
    assert no_claim_sentence("cnn", five, 40) == "cnn: no answer: its replicates proposed no range (from " \
                                                "spectral_gain, 5 replicates)."
    assert "band analysis" not in said
