"""`probe figures`: the comparison figures on their own, sized for papers (3.5 in wide, 300 dpi)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from probe.reports import figures
from probe.reports.config import FIGURE_FORMATS
from probe.fileio import safe_name as slug
from probe.reports.data import load_analysis
from probe.outputs import check_output, staged_directory
from probe.rundir import Tables


def write_paper_figures(analyses: list[str], out: str | Path, formats: tuple[str, ...] = FIGURE_FORMATS,
                        size: figures.FigureSize = figures.PAPER) -> list[Path]:
    """Per run: octave and third-octave band shifts and the spectrum difference; across runs: profiles, information
    kept, transfer. `out` is replaced whole (a figures folder probe wrote, or a new one); returns the files."""
    analysis = load_analysis(analyses)
    check_output(out, "figures", analyses)
    with staged_directory(out, "figures", analyses) as staging:
        drawn = _draw(analysis, staging, formats, size)
    return [Path(out) / path.relative_to(staging) for path in drawn]


def _draw(analysis, out: Path, formats: tuple[str, ...], size: figures.FigureSize) -> list[Path]:
    written: list[Path] = []
    for run in analysis.runs:
        for band_set in run.fixed_band_sets:
            curves = {("contrast against the control" if c == "contrast" else f"{run.condition_label(c)} (absolute)"):
                      run.overall(band_set, c) for c in ("contrast", "after", "before")}
            curves = {k: v for k, v in curves.items() if len(v)}
            if curves:
                written += figures.save(figures.band_profiles(curves, run.label, size), out / f"{slug(run.label)}_bands_{band_set}",
                                        formats)
        frequencies, differences = run.spectrum_differences()
        curves = {run.condition_label(c): curve for c, curve in differences.items()}
        written += figures.save(figures.spectrum_difference(frequencies, curves, run.label, size),
                                out / f"{slug(run.label)}_spectrum", formats)
    band_set = analysis.runs[0].answer_band_set
    profiles = {run.label: run.overall(band_set, run.headline_condition) for run in analysis.runs
                if not run.summary.get("control") and len(run.overall(band_set, run.headline_condition))}
    written += figures.save(figures.band_profiles(profiles, f"what finetuning changed against each control, "
                                                            f"{band_set.replace('_', '-')} bands",
                                                  size, ylabel="energy change (dB)\nfinetuned − control"),
                            out / "comparison_bands", formats)
    kept = [{"label": run.label, **run.summary["information"]["after"]} for run in analysis.runs
            if "after" in run.summary.get("information", {})]
    if kept:
        written += figures.save(figures.information_kept(pd.DataFrame(kept), "information kept", size),
                                out / "comparison_information", formats)
    transfer = analysis.comparison_tables.get(Tables.TRANSFER)
    if transfer is not None and transfer.classifier_of.nunique() > 1:
        written += figures.save(figures.transfer_heatmap(transfer, size), out / "comparison_transfer", formats)
    return written
