"""The index's answer per classifier: the declared reliability rule, the plain sentence, the heatmap's marks, and the
noise floor on band figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.reports import figures
from probe.reports.answer import answer_table, answers, probe_kind, sentence
from probe.reports.data import AnalysedRun, Analysis

BANDS = [("250 Hz", 177.0, 250.0, 354.0), ("500 Hz", 354.0, 500.0, 707.0), ("1 kHz", 707.0, 1000.0, 1414.0),
         ("2 kHz", 1414.0, 2000.0, 2828.0)]


def _summary(classifier: str, setting: str, probe: str = "autoencoder", penalty: float = 0.0, random_start=False,
             control=False, headline="contrast") -> dict:
    ranges = {v: [] for v in ("suppressed", "boosted", "preserved", "inconclusive", "too few clips", "too narrow",
                              "noise floor", "not needed")}
    ranges["preserved"] = [{"from_hz": 177.0, "to_hz": 707.0}]
    ranges["boosted"] = [{"from_hz": 707.0, "to_hz": 1414.0}]
    ranges["suppressed"] = [{"from_hz": 1414.0, "to_hz": 2828.0}]
    return {"label": f"{classifier}--{setting}", "classifier": classifier, "setting": setting, "probe": probe,
            "penalty": penalty, "control": control,
            "bands": {"headline": headline, "random_start": random_start,
                      "contrast": {"octave": {"ranges": ranges, "sentence": "..."}}}}


def _run(tmp_path: Path, summary: dict, shifts=(0.5, 4.0, -9.0, -2.0), floor=(False, False, False, True)) -> AnalysedRun:
    run = AnalysedRun(tmp_path / summary["label"], summary)
    run._tables["band_contrast_vs_control"] = pd.DataFrame({
        "condition": "contrast", "band_set": "octave", "band_index": range(len(BANDS)),
        "band": [b[0] for b in BANDS], "low_hz": [b[1] for b in BANDS], "centre_hz": [b[2] for b in BANDS],
        "high_hz": [b[3] for b in BANDS], "mean_shift_db": shifts, "ci_low": np.array(shifts) - 1,
        "ci_high": np.array(shifts) + 1, "near_noise_floor": floor,
        "verdict": ["preserved", "boosted", "suppressed", "noise floor"]})
    return run


def test_the_most_reliable_probe_is_picked_by_the_declared_order(tmp_path):
    kinds = {"gain": _summary("a", "gain", probe="spectral-gain"), "energy": _summary("a", "energy", penalty=1.0),
             "pre": _summary("a", "pre"), "rand": _summary("a", "rand", random_start=True)}
    assert {name: probe_kind(s)[1] for name, s in kinds.items()} == {
        "gain": "spectral gain", "energy": "energy-penalised AE", "pre": "pretrained AE", "rand": "random AE"}
    assert probe_kind(_summary("a", "id", probe="identity", control=True)) is None
    assert probe_kind(_summary("a", "cmp", headline="after")) is None  # a compare has no control to contrast with
    runs = [_run(tmp_path, kinds[name]) for name in ("rand", "pre", "energy")]
    (chosen,) = answers(Analysis(runs, [], {}), "octave")
    assert chosen.run.summary["setting"] == "energy" and chosen.kind == "energy-penalised AE"


def test_the_sentence_says_needs_only_for_a_probe_under_a_penalty(tmp_path):
    gain = _run(tmp_path, _summary("mn10", "spectral gain", probe="spectral-gain"))
    gain.setting = "spectral gain"
    said = sentence("mn10", gain, "spectral gain", "octave")
    # preserved and boosted are needed, merged where they touch; suppressed is done without
    assert said.startswith("mn10 needs 177 Hz–1.41 kHz and can do without 1.41 kHz–2.83 kHz")
    assert "against the untuned probe" in said
    plain = _run(tmp_path, _summary("mn10", "random AE", random_start=True))
    plain.setting = "random AE"
    said = sentence("mn10", plain, "random AE", "octave")
    assert "needs" not in said and "keeps 177 Hz–707 Hz" in said and "suppresses 1.41 kHz–2.83 kHz" in said
    assert "the identity on the same chain" in said


def test_the_heatmap_cells_are_the_chosen_runs_contrasts(tmp_path):
    runs = [_run(tmp_path, _summary("mn10", "gain", probe="spectral-gain")),
            _run(tmp_path, _summary("mn10", "pre"), shifts=(9.0, 9.0, 9.0, 9.0)),
            _run(tmp_path, _summary("passt", "pre"), shifts=(1.0, -1.0, -5.0, 0.0))]
    cells = answer_table(answers(Analysis(runs, [], {}), "octave"), "octave")
    mn10 = cells[cells.classifier == "mn10"]
    assert mn10.contrast_db.tolist() == [0.5, 4.0, -9.0, -2.0]  # the gain's, not the plain AE's
    assert mn10.significant.tolist() == [False, True, True, False]
    assert mn10.no_verdict.tolist() == [False, False, False, True]
    assert cells[cells.classifier == "passt"].kind.unique().tolist() == ["pretrained AE"]
    fig = figures.answer_heatmap(cells, 3.0, "answer")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [b[0] for b in BANDS]
    assert len([p for p in ax.patches if p.get_hatch()]) == 2  # one no-verdict band per classifier
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(dots) == 4  # per classifier: its boosted and its suppressed band
    figures.plt.close(fig)


@pytest.mark.parametrize("flagged", [True, False])
def test_band_figures_mark_the_noise_floor(tmp_path, flagged):
    frame = _run(tmp_path, _summary("a", "b"), floor=(False, False, flagged, flagged)).table("band_contrast_vs_control")
    fig = figures.band_profiles({"run": frame}, "bands", threshold_db=3.0)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    marked = [label for label in labels if "noise floor" in label]
    assert marked == (["near the originals' noise floor (no verdict)"] if flagged else [])
    if flagged:  # one span from the 1 kHz band's low edge to the 2 kHz band's high edge
        span = next(h for h, label in zip(handles, labels) if "noise floor" in label)
        assert span.get_x() == pytest.approx(707.0) and span.get_x() + span.get_width() == pytest.approx(2828.0)
    figures.plt.close(fig)


def test_a_cross_validated_setting_answers_with_its_folds_pooled(tmp_path):
    """Two folds of one setting: the sentence and the cells come from comparison/band_contrast_pooled, not fold 1."""
    runs = [_run(tmp_path, {**_summary("mn10", "gain", probe="spectral-gain"), "label": f"mn10--gain--fold{f}",
                            "fold": f}) for f in (1, 2)]
    pooled_ranges = {v: [] for v in ("suppressed", "boosted", "preserved", "inconclusive", "too few clips",
                                     "too narrow", "noise floor", "not needed")}
    pooled_ranges["suppressed"] = [{"from_hz": 177.0, "to_hz": 2828.0}]
    comparisons = [{"pooled": {"mn10--gain": {"classifier": "mn10", "setting": "gain", "folds": "1,2",
                                              "bands": {"octave": {"ranges": pooled_ranges}}}}}]
    table = runs[0].table("band_contrast_vs_control").assign(classifier="mn10", setting="gain", folds="1,2",
                                                             mean_shift_db=[-7.0, -8.0, -9.0, -10.0])
    analysis = Analysis(runs, comparisons, {"band_contrast_pooled": table})
    (chosen,) = answers(analysis, "octave")
    assert chosen.folds == "1,2" and "every fold's clips pooled" in chosen.sentence
    assert chosen.sentence.startswith("mn10 can do without 177 Hz–2.83 kHz")
    cells = answer_table([chosen], "octave", analysis.comparison_tables["band_contrast_pooled"])
    assert cells.contrast_db.tolist() == [-7.0, -8.0, -9.0, -10.0] and set(cells.folds) == {"1,2"}
