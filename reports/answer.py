"""The index's first section: one answer per classifier, read off its most reliable probe.

The rule that picks the probe is fixed here, from VALIDATION.md (five seeds of the demo's planted experiment, run
before this section existed): the spectral gain recovered both planted bands on every seed, the energy-penalised AE
on all but one low-band seed (4 of 5), both with their intervals across seeds beyond the threshold; the plain
pretrained AE and the random AE missed the low band on most seeds (2 and 1 of 5: with no penalty, an AE keeps what
it reconstructs well, needed or not). So a classifier's answer comes from the first of these its runs have, in this
order, against that probe's own control.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from probe.reports.data import CONTRAST, AnalysedRun, Analysis
from probe.probes import run_kind
from probe.rundir import Tables
from probe.units import format_hz

PARSIMONY = ("spectral gain", "energy-penalised AE")
"""Probes under a penalty on what they pass: a band they keep is one the classifier needs."""
RELIABILITY = ("spectral gain", "energy-penalised AE", "pretrained AE", "random AE")
"""Probe kinds (`probe.probes.run_kind`), most reliable first."""
SIGNIFICANT = ("suppressed", "boosted", "not needed")
"""Verdicts a test showed beyond the threshold (a dot in the heatmap)."""
NO_VERDICT = ("inconclusive", "too few clips", "too narrow", "noise floor")
"""Verdicts that say nothing about the band (hatched in the heatmap)."""


@dataclass
class Answer:
    """One classifier's answer: the run it was read from, that run's probe kind, and a plain sentence; `folds`, where
    the run's setting was cross-validated and the answer reads its folds pooled."""

    classifier: str
    run: AnalysedRun
    kind: str
    sentence: str
    folds: str | None = None


def probe_kind(summary: dict[str, Any]) -> tuple[int, str] | None:
    """(rank, kind) of a run by `RELIABILITY`; None for a control, a run with no contrast, or another probe type."""
    if summary.get("control") or summary.get("bands", {}).get("headline") != CONTRAST:
        return None
    kind = run_kind(summary)
    return (RELIABILITY.index(kind), kind) if kind in RELIABILITY else None


def answers(analysis: Analysis, band_set: str, measured_runs: dict[str, str] | None = None) -> list[Answer]:
    """Per classifier with a ranked probe: its most reliable run (the first listed among equals) and its sentence.
    `measured_runs` (classifier -> run label): the runs the measured answer read (`probe.analyses.answer`), which
    the heatmap then shows; classifiers without one are left out."""
    out = []
    for classifier, runs in analysis.by_classifier().items():
        if measured_runs is not None:
            runs = [run for run in runs if run.label == measured_runs.get(classifier)]
        ranked = [(kind, index, run) for index, run in enumerate(runs) if (kind := probe_kind(run.summary))]
        if not ranked:
            continue
        (_, kind), _, run = min(ranked, key=lambda item: (item[0][0], item[1]))
        pooled = analysis.pooled.get(f"{classifier}--{run.summary.get('setting')}")
        said = sentence(classifier, run, kind, band_set, pooled["bands"].get(band_set) if pooled else None)
        out.append(Answer(classifier, run, kind, said, pooled["folds"] if pooled else None))
    return out


def sentence(classifier: str, run: AnalysedRun, kind: str, band_set: str,
             pooled: dict[str, Any] | None = None) -> str:
    """What the run's contrast (or, given, its setting's folds pooled) says in plain words. A parsimony probe's kept
    bands are "needed"; a plain AE's are only "kept" (with no penalty it keeps what it reconstructs well, needed or
    not)."""
    described = pooled or run.summary.get("bands", {}).get(CONTRAST, {}).get(band_set)
    if not described:
        return f"{classifier}: no {band_set.replace('_', '-')} band analysis in its {run.setting} run."
    ranges = described["ranges"]
    spans = lambda *verdicts: _spans([r for v in verdicts for r in ranges.get(v, [])])  # noqa: E731
    if kind in PARSIMONY:
        parts = [f"needs {s}" for s in [spans("preserved", "boosted")] if s]
        parts += [f"can do without {s}" for s in [spans("suppressed", "not needed")] if s]
    else:
        parts = [f"{verb} {s}" for verb, verdict in (("keeps", "preserved"), ("boosts", "boosted"),
                                                     ("suppresses", "suppressed")) if (s := spans(verdict))]
    open_ = spans(*NO_VERDICT)
    said = " and ".join(parts) if parts else "shows no clear need for any band"
    source = run.setting if run.setting == kind else f"{run.setting}, a {kind}"
    source += ", every fold's clips pooled" if pooled else ""
    return (f"{classifier} {said}" + (f"; no verdict on {open_}" if open_ else "") +
            f" (read off {source}, its most reliable probe, against {_reference(run)}).")


def measured_rows(analysis: Analysis, page_of: dict[str, str]) -> list[dict[str, Any]]:
    """The index's answer list where the analysis measured the answer: per classifier its sentence (`classifier`,
    `sentence`, `href` of its page), worded by what is missing where it has no claim, and a line for each classifier
    with no answer probe among its runs."""
    claims = analysis.comparison_tables.get(Tables.ANSWER)
    claimed = set(claims.classifier) if claims is not None and len(claims) else set()
    by_label = {run.label: run for run in analysis.runs}
    rows = []
    for classifier, said in analysis.measured_answer.items():
        run = next((by_label[label] for label in said.get("runs", []) if label in by_label), None)
        text = said["sentence"] if classifier in claimed else unanswered(classifier, said, run)
        rows.append({"classifier": classifier, "sentence": text, "href": page_of.get(classifier)})
    rows += [{"classifier": c, "href": page_of.get(c),
              "sentence": f"{c}: no answer: none of its probes is one the planted validation showed to recover a "
                          "planted band (the spectral gain, the energy-penalised AE)."}
             for c, runs in analysis.by_classifier().items()
             if c not in analysis.measured_answer and any(probe_kind(run.summary) for run in runs)]
    return rows


def unanswered(classifier: str, said: dict[str, Any], run: AnalysedRun | None) -> str:
    """The sentence of a measured answer with no claim, by what it lacks: replicates that agree (a word needs two or
    more), clips enough for a verdict on any band, a verdict beyond the threshold, or a band analysis at all.
    `said`: the analysis's summary of the answer (replicates, units, setting); `run`: the answer probe's first run."""
    setting, count = said.get("setting", "its answer probe"), int(said.get("replicates", 1))
    source = f"from {setting}, {count} replicate{'s' if count != 1 else ''}"
    bands = run.overall(run.answer_band_set, CONTRAST) if run is not None else pd.DataFrame()
    if not len(bands):
        return f"{classifier}: no answer: no band analysis against its control to read ({source})."
    reasons = []
    if count < 2:
        reasons.append(f"a word needs at least 2 replicates that agree, and it has {count} (train them with "
                       "--replicates)")
    if (bands.verdict == "too few clips").all():
        units = said.get("units")
        reasons.append(f"{f'its {units} clips' if units else 'its clips'} in the scored fold are too few for a "
                       "verdict on any band")
    elif not bands.verdict.isin(SIGNIFICANT + ("preserved",)).any():
        reasons.append("none of its bands has a verdict that keeps or drops it")
    return f"{classifier}: no answer: {'; '.join(reasons) or 'no range was proposed'} ({source})."


def _spans(ranges: list[dict[str, Any]]) -> str:
    """Hz ranges in frequency order, neighbours merged: "140 Hz–1.78 kHz, 2–8 kHz"."""
    merged: list[list[float]] = []
    for start, end in sorted((r["from_hz"], r["to_hz"]) for r in ranges):
        if merged and start <= merged[-1][1] * 1.0001:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return ", ".join(f"{format_hz(start)}–{format_hz(end)}" for start, end in merged)


def _reference(run: AnalysedRun) -> str:
    return "the identity on the same chain" if run.summary.get("bands", {}).get("random_start") else "the untuned probe"


def answer_table(chosen: list[Answer], band_set: str, pooled: pd.DataFrame | None = None) -> pd.DataFrame:
    """The heatmap's cells: per classifier and band, the chosen run's contrast (its setting's folds pooled, where
    `pooled`, comparison/band_contrast_pooled, has them), interval and verdict, with the marks."""
    frames = []
    for answer in chosen:
        rows = answer.run.overall(band_set, CONTRAST)
        if answer.folds and pooled is not None and len(pooled):
            rows = pooled[(pooled.classifier == answer.classifier) & (pooled.band_set == band_set)
                          & (pooled.setting == answer.run.summary.get("setting"))]
        rows = rows.sort_values("band_index")
        frames.append(pd.DataFrame({
            "classifier": answer.classifier, "run": answer.run.label, "probe": answer.run.setting, "kind": answer.kind,
            "folds": answer.folds or str(answer.run.summary.get("fold", 1)),
            "band": rows.band.to_numpy(), "centre_hz": rows.centre_hz.to_numpy(),
            "contrast_db": rows.mean_shift_db.to_numpy(), "ci_low": rows.ci_low.to_numpy(),
            "ci_high": rows.ci_high.to_numpy(), "verdict": rows.verdict.to_numpy(),
            "significant": rows.verdict.isin(SIGNIFICANT).to_numpy(),
            "no_verdict": (rows.verdict.isin(NO_VERDICT) | rows.near_noise_floor.astype(bool)).to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
