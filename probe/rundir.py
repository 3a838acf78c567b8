"""The run directory: the contract between training and the analyses.

    RUNDIR/config.json       the resolved config, package versions, input checkpoint hashes, git SHA
    RUNDIR/metrics.jsonl     one JSON record per line (per step and per epoch)
    RUNDIR/latest.pt         everything needed to resume exactly (atomic writes)
    RUNDIR/best.pt           the best epoch by validation accuracy
    RUNDIR/outputs/          what the analyses read: originals.npy, targets.npy, clip_ids.json, classes.json,
                             reconstructions_{before,after}.npy, logits_{original,before,after}.npy
    RUNDIR/done.json         written last; a run without it is incomplete
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from probe.fileio import atomic_write, sha256_file, write_json

TRACKED_PACKAGES = ("probe", "torch", "torchaudio", "numpy", "hear21passt", "audio-encoders-pytorch", "archisound")


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

    def is_complete(self) -> bool:
        return self.done.is_file()

    def write_config(self, config: dict[str, Any], inputs: dict[str, str | None]) -> None:
        """Write the config with provenance: versions, platform, git SHA and the inputs' SHA-256."""
        write_json(self.config, {"config": config, "provenance": provenance(inputs)})

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one record and fsync; a torn last line is dropped by `read_metrics`."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a") as handle:
            handle.write(json.dumps(record) + "\n")
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


def provenance(inputs: dict[str, str | None]) -> dict[str, Any]:
    """Package versions, platform, git SHA, and the SHA-256 of each input file."""
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
