"""The listening gallery: example clips as rows; the original and every classifier's finetuned probe, per setting,
as columns; each cell an audio player over a small spectrogram, with the residual one click away.

The clips are the study's six on ESC-50's fold 1 (positions 8, 12, 31, 66, 86, 102) where the analysis kept them,
else the first example clip of each category. The audio is the copy beside each classifier's page.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from probe.fileio import safe_name as slug, write_text
from probe.reports import figures
from probe.reports.data import Analysis, AnalysedRun
from probe.rundir import AFTER, AnalysisDir

GALLERY = "gallery.html"


def gallery_clips(analysis: Analysis) -> list[dict[str, Any]]:
    """The example rows every classifier's runs hold: the study's positions where the examples are them, else the
    first of each category."""
    from probe.esc50 import STUDY_EXAMPLES

    by_classifier = analysis.by_classifier()
    shared = None
    for runs in by_classifier.values():
        ids = {row["clip_id"] for run in runs for row in run.summary.get("examples", [])}
        shared = ids if shared is None else shared & ids
    rows = [row for row in (analysis.runs[0].summary.get("examples", []) if analysis.runs else [])
            if row["clip_id"] in (shared or set())]
    if tuple(row["position"] for row in rows) == STUDY_EXAMPLES:
        return rows
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row["category"], row)
    return list(first.values())


def _cell(run: AnalysedRun, clip_id: str, kind: str, site: Path) -> dict[str, Any] | None:
    """One clip of one run: its audio (the copy beside the classifier's page), a thumbnail, the residual's link."""
    import soundfile as sf

    row = next((r for r in run.summary.get("examples", []) if r["clip_id"] == clip_id), None)
    if row is None or kind not in row["files"]:
        return None
    folder = f"{slug(run.classifier)}/{AnalysisDir.AUDIO}/{slug(run.label)}"
    audio = site / folder / row["files"][kind]
    thumbnail = Path("gallery") / f"{slug(run.label)}_{row['position']:04d}_{kind}"
    waveform, _ = sf.read(str(audio), dtype="float32", always_2d=True)
    figures.spectrogram_thumbnail(waveform.mean(1), site / thumbnail.with_suffix(".png"))
    residual = row["files"].get("residual")
    return {"audio": f"{folder}/{row['files'][kind]}", "image": f"{thumbnail}.png",
            "residual": f"{folder}/{residual}" if residual and kind != "original" else None,
            "predicted": row.get("predicted", {}).get(kind)}


def write_gallery(env, site: Path, analysis: Analysis, provenance: dict[str, Any], verdict_rule: str) -> str | None:
    """Write gallery.html beside the index (after the classifier pages, whose audio it plays); None without examples."""
    clips = gallery_clips(analysis)
    if not clips:
        return None
    (site / "gallery").mkdir()
    columns = [(classifier, run) for classifier, runs in analysis.by_classifier().items() for run in runs
               if not run.summary.get("control")]
    first = analysis.runs[0]
    rows = [{"clip": clip, "original": _cell(first, clip["clip_id"], "original", site),
             "cells": [_cell(run, clip["clip_id"], AFTER, site) for _, run in columns]} for clip in clips]
    html = env.get_template("gallery.html.j2").render(
        title="probe report: listening gallery", stylesheet="style.css", rows=rows, provenance=provenance,
        verdict_rule=verdict_rule, columns=[{"classifier": c, "setting": run.setting,
                                             "label": run.condition_label(AFTER)} for c, run in columns])
    write_text(site / GALLERY, html)
    return GALLERY
