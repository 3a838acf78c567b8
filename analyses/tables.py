"""An analysis folder read back as pandas tables: each table combined across the folder's runs, every row saying
which run, classifier, probe setting, fold and seed it comes from."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from probe.analyses.schema import IDENTITY_COLUMNS
from probe.errors import ConfigError
from probe.rundir import AnalysisDir

IDENTITY = tuple(column.name for column in IDENTITY_COLUMNS)
"""The columns that name a row's run in every per-run table."""


def identity_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's identity columns from its analysis summary."""
    return {"run": summary["label"], "classifier": summary["classifier"], "setting": summary["setting"],
            "fold": int(summary["fold"]), "seed": summary.get("seed")}


def with_identity(frame: pd.DataFrame, identity: dict[str, Any]) -> pd.DataFrame:
    """`frame` with the identity columns in front (a column the table already has keeps its own values)."""
    missing = {name: value for name, value in identity.items() if name not in frame.columns}
    if not missing or frame.columns.empty:
        return frame
    front = pd.DataFrame({name: [value] * len(frame) for name, value in missing.items()}, index=frame.index)
    return pd.concat([front, frame], axis=1)


def load(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of an analysis folder by name: the per-run tables each combined across runs (with `IDENTITY`
    columns), and the comparison tables as written.

        tables = probe.analyses.load("analysis")
        tables["band_contrast_vs_control"].groupby(["classifier", "setting", "band"]).mean_shift_db.mean()
    """
    folder = Path(folder)
    analysis = AnalysisDir(folder)
    if not analysis.summary.is_file():
        raise ConfigError(folder, "not an analysis folder (no summary.json): run `probe analyse` first")
    summary = json.loads(analysis.summary.read_text())
    parts: dict[str, list[pd.DataFrame]] = {}
    for entry in summary.get("runs", []):
        run_folder = analysis.run_folder(entry["folder"])
        run_summary = analysis.run_summary(entry["folder"])
        for name in run_summary["tables"]:
            path = AnalysisDir.table_file(run_folder, name)
            if path.is_file():
                parts.setdefault(name, []).append(with_identity(pd.read_parquet(path), identity_columns(run_summary)))
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    for path in sorted(analysis.comparison.glob("*.parquet")):
        tables[path.stem] = pd.read_parquet(path)
    return tables
