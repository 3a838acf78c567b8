"""Reading analysis folders (written by `probe analyse`) for the report and the figures."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.errors import ConfigError
from probe.rundir import AFTER, CONDITION_LABELS, ORIGINAL, AnalysisDir, Tables, run_setting

CONTRAST = "contrast"
"""The condition name of the contrast rows (`probe.analyses.bandshift.CONTRAST`)."""


@dataclass
class AnalysedRun:
    """One run's analysis: its summary, tables (loaded on demand) and arrays."""

    folder: Path
    summary: dict[str, Any]
    setting: str = ""
    """How the classifier page names this run: its probe setting, or the run label where two runs share one."""
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    _arrays: np.lib.npyio.NpzFile | None = None

    @property
    def label(self) -> str:
        return self.summary["label"]

    @property
    def classifier(self) -> str:
        return str(self.summary.get("classifier") or self.label)

    @property
    def probe_setting(self) -> str:
        """The run's probe setting as its analysis named it (the AE, a probe, a processed folder)."""
        return run_setting(self.summary)

    def condition_label(self, condition: str) -> str:
        return self.summary.get("condition_labels", {}).get(condition) or CONDITION_LABELS.get(condition, condition)

    @property
    def table_names(self) -> list[str]:
        """The tables this run's analysis wrote, by their registered names."""
        return list(self.summary["tables"])

    @property
    def objective(self) -> str:
        return str(self.summary.get("objective") or "cross-entropy")

    @property
    def without_labels(self) -> bool:
        """Whether the run was scored against the classifier's own decisions on the originals (`--objective
        fidelity`): its "accuracy" is agreement, and its classes are the classifier's top class on each original."""
        return (self.summary.get("accuracy") or {}).get("scored_against") == "decisions"

    @property
    def accuracy_word(self) -> str:
        return "agreement" if self.without_labels else "accuracy"

    def scoring_note(self) -> str:
        """What the accuracy columns mean for a run without labels (empty for a labelled run)."""
        if not self.without_labels:
            return ""
        accuracy = self.summary["accuracy"]
        maps = {c: accuracy.get(c, {}).get("map") for c in ("before", "after")}
        shown = ", ".join(f"{self.condition_label(c)} {v:.3f}" for c, v in maps.items() if v is not None)
        return ("trained without labels: accuracy is agreement with the classifier's own top-1 decision on each "
                "original (so the originals read 1.000), and each clip's class is that decision"
                + (f"; mAP against the original's tags (outputs above 0.5): {shown}" if shown else ""))

    def table(self, name: str) -> pd.DataFrame:
        """A table by its registered name; empty when this analysis did not write it."""
        if name not in self._tables:
            path = AnalysisDir.table_file(self.folder, name)
            self._tables[name] = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
        return self._tables[name]

    def arrays(self) -> np.lib.npyio.NpzFile:
        """arrays.npz, opened once (its members load lazily)."""
        if self._arrays is None:
            self._arrays = np.load(self.folder / AnalysisDir.ARRAYS)
        return self._arrays

    def spectrum_differences(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The STFT frequencies and, per reconstruction condition (by its label), the mean spectrum over classes minus the
        originals' (dB)."""
        arrays = self.arrays()
        original = np.nanmean(arrays[f"stft_db_class_{ORIGINAL}"], 0)
        curves = {condition: np.nanmean(arrays[f"stft_db_class_{condition}"], 0) - original for condition in (AFTER, "before")
                  if f"stft_db_class_{condition}" in arrays.files}
        return arrays["stft_frequencies_hz"], curves

    def overall(self, band_set: str, condition: str) -> pd.DataFrame:
        """The overall rows of one band set and condition: an absolute shift (`before`, `after`), or the contrast
        against the control (`contrast`)."""
        name = Tables.BAND_CONTRAST_VS_CONTROL if condition == CONTRAST else Tables.BAND_SHIFT_OVERALL
        table = self.table(name)
        return table[(table.band_set == band_set) & (table.condition == condition)] if len(table) else table

    @property
    def fixed_band_sets(self) -> list[str]:
        """The band sets that are the same behind every classifier (the analysis records which)."""
        return list(self.summary["band_sets"]["fixed"])

    @property
    def fine_band_set(self) -> str:
        """The finest fixed band set (the analysis records which)."""
        return self.summary["band_sets"]["fine"]

    @property
    def answer_band_set(self) -> str:
        """The band set the answer's words are said on (the analysis records which)."""
        return self.summary["band_sets"]["answer"]

    @property
    def headline_condition(self) -> str:
        """What the run's conclusions read: the contrast against its control where there is one, else the absolute
        shift of the finetuned output (a compare has no control)."""
        return self.summary.get("bands", {}).get("headline") or AFTER

    def headline(self, band_set: str) -> str:
        """The run's finding on one band set as a clause: what finetuning changed against its control."""
        bands = self.summary.get("bands", {})
        described = bands.get(self.headline_condition, {}).get(band_set)
        if not described:
            return ""
        if self.summary.get("control"):
            return f"nothing trains (the control, which should read 0 dB): it {described['sentence']}"
        if self.headline_condition == CONTRAST:
            against = bands.get("reference_label") or "against the untuned probe"
            random = " (a random-init AE has no meaningful untuned output: the reference is the identity)" \
                if bands.get("random_start") else ""
            return f"finetuning {described['sentence']} ({against}){random}"
        return f"the {self.condition_label(AFTER)} {described['sentence']} (absolute shift against the original: no control)"


@dataclass
class Analysis:
    """Every run of one or more analysis folders, plus their comparison tables."""

    runs: list[AnalysedRun]
    comparisons: list[dict[str, Any]]
    comparison_tables: dict[str, pd.DataFrame]
    provenances: list[dict[str, Any]] = field(default_factory=list)
    """Each analysis folder's provenance: seed, versions, git SHA, the command that made it (older ones: none)."""

    @property
    def planted(self) -> dict[str, Any]:
        """The planted answer of the demo's analysis (comparison/planted); empty elsewhere."""
        return next((c["planted"] for c in self.comparisons if "planted" in c), {})

    @property
    def answered(self) -> bool:
        """Whether the analysis measured the answer (its comparison step ran `probe.analyses.answer`)."""
        return any("answer" in c for c in self.comparisons)

    @property
    def measured_answer(self) -> dict[str, Any]:
        """Per classifier, its measured answer (comparison/answer's summary: sentence, replicates, removal checks);
        empty where the analysis made none."""
        return {key: value for c in self.comparisons for key, value in c.get("answer", {}).items()}

    @property
    def pooled(self) -> dict[str, Any]:
        """Cross-validated settings, their folds pooled (comparison/band_contrast_pooled), by `classifier--setting`:
        the folds and the bands described; empty without folds."""
        return {key: value for c in self.comparisons for key, value in c.get("pooled", {}).items()}

    def by_classifier(self) -> dict[str, list[AnalysedRun]]:
        """Runs grouped by classifier name, in first-seen order: one report page each."""
        groups: dict[str, list[AnalysedRun]] = {}
        for run in self.runs:
            groups.setdefault(run.classifier, []).append(run)
        for runs in groups.values():
            names = [run.probe_setting for run in runs]
            for run in runs:
                run.setting = run.probe_setting if names.count(run.probe_setting) == 1 else run.label
        return groups


def load_analysis(folders: list[str | Path]) -> Analysis:
    """Read analysis folders; a missing or foreign folder is a one-line error naming it."""
    runs, comparisons, tables, provenances = [], [], {}, []
    for folder in map(Path, folders):
        summary_path = AnalysisDir(folder).summary
        if not summary_path.is_file():
            raise ConfigError(folder, "not an analysis folder (no summary.json): run `probe analyse` first")
        try:
            summary = json.loads(summary_path.read_text())
            entries = summary["runs"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(summary_path, f"unreadable analysis summary ({exc})") from None
        for entry in entries:
            analysis = AnalysisDir(folder)
            runs.append(AnalysedRun(analysis.run_folder(entry["folder"]), analysis.run_summary(entry["folder"])))
        comparisons.append(summary.get("comparison", {}))
        if summary.get("provenance"):
            provenances.append(summary["provenance"])
        names = summary.get("comparison_tables") or [path.stem for path in AnalysisDir(folder).comparison.glob("*.parquet")]
        for name in names:
            path = AnalysisDir.table_file(AnalysisDir(folder).comparison, name)
            if path.is_file():
                frame = pd.read_parquet(path)
                tables[name] = pd.concat([tables[name], frame], ignore_index=True) if name in tables else frame
    labels = [r.label for r in runs]
    duplicates = {label for label in labels if labels.count(label) > 1}
    if duplicates:
        raise ConfigError(None, f"run {sorted(duplicates)[0]!r} appears in more than one analysis folder")
    return Analysis(runs, comparisons, tables, provenances)
