"""The run directory and the analysis folder: the contracts between training, the analyses and the report.

Every name in them is defined here and nowhere else.

    RUNDIR/config.json       the resolved config, package versions, input checkpoint hashes, git SHA
    RUNDIR/metrics.jsonl     one JSON record per line (per step and per epoch)
    RUNDIR/latest.pt         everything needed to resume exactly (atomic writes)
    RUNDIR/best.pt           the best epoch by validation accuracy
    RUNDIR/outputs/          what the analyses read:
        originals.npy, targets.npy, clip_ids.json,
        classes.json                         class and category names, the classifier's sample rate
        reconstructions_{before,after}.npy   the probe's output before and after finetuning
        logits_{original,before,after}.npy   the classifier's logits on each condition
        objective.json                       what the run optimised: probe type, penalty, the probe's own record
        <curve>.npy                          a probe's curves (the spectral gain's gain_db, gain_db_per_class):
                                             first row the frequencies in Hz, then the values
        val_logits.npy                       (probe train-classifier) the trained classifier's validation logits
    RUNDIR/done.json         written last; a run without it is incomplete

    ANALYSISDIR/summary.json         the runs, the comparison, the settings
    ANALYSISDIR/comparison/          tables across runs
    ANALYSISDIR/<run label>/         summary.json, <table>.parquet and .csv, arrays.npz, audio/
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from probe.errors import ConfigError
from probe.fileio import atomic_write, sha256_file, write_json
from probe.folds import FOLDS_FILE

TRACKED_PACKAGES = ("audio-probe", "torch", "torchaudio", "numpy", "scipy", "pandas", "librosa", "captum", "hear21passt",
                    "audio-encoders-pytorch", "archisound", "transformers")
_command: list[str] | None = None

ORIGINAL, BEFORE, AFTER = "original", "before", "after"
"""The conditions of the tables: the clip itself, the probe before finetuning, the finetuned probe."""
RECONSTRUCTIONS = (BEFORE, AFTER)
CONDITIONS = (ORIGINAL, *RECONSTRUCTIONS)
CONDITION_LABELS = {ORIGINAL: "original", BEFORE: "AE before finetuning", AFTER: "finetuned AE"}
"""How reports name the conditions unless an analysis says otherwise (a compare's "after" is "processed")."""


class RunDir:
    """Paths and atomic I/O for one run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.latest = self.path / "latest.pt"
        self.best = self.path / "best.pt"
        self.outputs = self.path / "outputs"
        self.done = self.path / "done.json"
        self.folds = self.path / FOLDS_FILE
        self.originals_file = self.outputs / "originals.npy"
        self.targets_file = self.outputs / "targets.npy"
        self.clip_ids_file = self.outputs / "clip_ids.json"
        self.clip_groups_file = self.outputs / "clip_groups.json"
        """Per clip, its independent unit (its source recording; the clip itself where none is known)."""
        self.classes_file = self.outputs / "classes.json"
        self.objective_file = self.outputs / "objective.json"
        self.val_logits_file = self.outputs / "val_logits.npy"

    def reconstructions_file(self, condition: str) -> Path:
        return self.outputs / f"reconstructions_{condition}.npy"

    def logits_file(self, condition: str) -> Path:
        return self.outputs / f"logits_{condition}.npy"

    def curve_file(self, name: str) -> Path:
        return self.outputs / f"{name}.npy"

    def required_outputs(self) -> list[Path]:
        """What `probe analyse` needs from a finetune run."""
        return [self.originals_file, self.targets_file, self.clip_ids_file, self.classes_file,
                *(self.reconstructions_file(c) for c in RECONSTRUCTIONS), *(self.logits_file(c) for c in CONDITIONS)]

    def fold_entry(self) -> dict[str, Any]:
        """{"folds": the run's fold record} for its checkpoints (`probe.folds`); empty where none was written."""
        return {"folds": json.loads(self.folds.read_text())} if self.folds.is_file() else {}

    def is_complete(self) -> bool:
        return self.done.is_file()

    def is_run(self) -> bool:
        """Whether the folder with a config.json is a probe run, started or not, and not a transformers checkpoint
        (whose config.json names its `model_type`)."""
        try:
            config = json.loads(self.config.read_text())
        except (OSError, ValueError):
            return self.config.is_file()  # a run killed while writing it is still a run
        return not (isinstance(config, dict) and "model_type" in config)

    def write_config(self, config: dict[str, Any], inputs: dict[str, str | None]) -> None:
        """Write the config with provenance: versions, platform, git SHA and the inputs' SHA-256."""
        write_json(self.config, {"config": config, "provenance": provenance(inputs)})

    def append_metrics(self, record: dict[str, Any], durable: bool = True) -> None:
        """Append one record; a torn last line is dropped by `read_metrics`. `durable`: fsync the file (and with it
        every record appended before). A step's record need not be: a kill loses nothing the kernel has, and after a
        power loss `--resume` truncates the metrics to the checkpoint's step anyway, whose epoch record is durable."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a") as handle:
            handle.write(json.dumps(record) + "\n")
            if durable:
                handle.flush()
                os.fsync(handle.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.is_file():
            return []
        records = []
        for line in self.metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # the process died mid-line: everything after it is untrusted
        return records

    def truncate_metrics(self, keep: Any) -> None:
        """Keep only the records for which `keep(record)` is true (used when resuming)."""
        kept = [r for r in self.read_metrics() if keep(r)]
        with atomic_write(self.metrics, "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in kept)

    def save(self, path: Path, state: dict[str, Any]) -> None:
        import torch

        with atomic_write(path) as handle:
            torch.save(state, handle)

    def mark_done(self, summary: dict[str, Any]) -> None:
        write_json(self.done, summary)


class Tables:
    """The names of the built-in analyses' tables: what the analyses register and write, and what the report reads.
    A plugin's analysis names its own tables."""

    ANSWER = "answer"
    ACCURACY_OVERALL = "accuracy_overall"
    ACCURACY_PER_CLASS = "accuracy_per_class"
    ACCURACY_PER_CATEGORY = "accuracy_per_category"
    CONFUSION = "confusion"
    BAND_SHIFT_PER_CLIP = "band_shift_per_clip"
    BAND_SHIFT_OVERALL = "band_shift_overall"
    BAND_SHIFT_PER_CLASS = "band_shift_per_class"
    BAND_SHIFT_PER_CATEGORY = "band_shift_per_category"
    BAND_CONTRAST_VS_CONTROL = "band_contrast_vs_control"
    BAND_CONTRAST_POOLED = "band_contrast_pooled"
    DESCRIPTORS_PER_CLIP = "descriptors_per_clip"
    DESCRIPTOR_SHIFTS = "descriptor_shifts"
    NMI_PER_CLIP = "nmi_per_clip"
    NMI_SUMMARY = "nmi_summary"
    ATTRIBUTION_BAND_MASS = "attribution_band_mass"
    ATTRIBUTION_BAND_PROFILE = "attribution_band_profile"
    ATTRIBUTION_SANITY = "attribution_sanity"
    ATTRIBUTION_COMPLETENESS = "attribution_completeness"
    BAND_PROFILES = "band_profiles"
    PROBE_CURVES = "probe_curves"
    ROUTE_CORRELATIONS = "route_correlations"
    CLASSIFIER_CONTRASTS = "classifier_contrasts"
    CLASS_DIVERGENCE = "class_divergence"
    CATEGORY_DIVERGENCE = "category_divergence"
    TRANSFER = "transfer"
    PLANTED = "planted"


SCHEMA_VERSION = 3
"""Written into every analysis summary (`schema_version`) and checked on reading: raised whenever a table's columns
change meaning (`probe.analyses.schema` declares them), so a reader knows which layout it holds."""


class AnalysisDir:
    """The names inside an analysis folder (written by `probe analyse` and `probe compare`, read by `probe report`)."""

    SUMMARY = "summary.json"
    COMPARISON = "comparison"
    ARRAYS = "arrays.npz"
    AUDIO = "audio"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.summary = self.path / self.SUMMARY
        self.comparison = self.path / self.COMPARISON

    def run_folder(self, folder: str) -> Path:
        return self.path / folder

    @staticmethod
    def table_file(folder: Path, name: str, suffix: str = ".parquet") -> Path:
        return folder / f"{name}{suffix}"

    def run_summary(self, folder: str) -> dict[str, Any]:
        """A run's analysis summary. One written by an older probe (no index of its tables) is refused with what to
        do: analysing the runs again is cheap, and reading every older layout is not worth its code."""
        path = self.run_folder(folder) / self.SUMMARY
        if not path.is_file():
            raise ConfigError(path.parent, "missing its summary.json: the analysis folder is incomplete")
        try:
            summary = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(path, f"unreadable analysis summary ({exc})") from None
        if not isinstance(summary, dict) or summary.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(path, "written by an older probe (its tables have another layout): run `probe analyse` "
                                    "on its runs again")
        return summary


def run_setting(summary: dict[str, Any]) -> str:
    """A run summary's probe setting (the AE, a probe, a processed folder)."""
    return str(summary["setting"])


def record_command(argv: list[str]) -> None:
    """Remember the `probe` command line this process runs (the CLI calls this), for every provenance record."""
    global _command
    _command = list(argv)


def current_command() -> str | None:
    """The shell command this process runs, quoted so that it pastes back into a shell; None for a library call."""
    import shlex

    return None if _command is None else shlex.join(["probe", *_command])


def provenance(inputs: dict[str, str | None]) -> dict[str, Any]:
    """Package versions, platform, git SHA, the command line and its folder, and the SHA-256 of each input file."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_sha": _git_sha(),
        "command": current_command(),
        "cwd": os.getcwd(),
        "inputs": {key: {"path": value, "sha256": sha256_file(value) if value and Path(value).is_file() else None}
                   for key, value in inputs.items()},
    }


def _git_sha() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None
