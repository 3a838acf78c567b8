"""`probe status GRID`: where every run of a grid (or any folder of runs) stands, read from the run directories alone.

A run is *done* (done.json), *training* (a live process holds its lock), *stopped* (a checkpoint and no process:
`--resume` continues it), or *not started* (a config and nothing trained yet).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probe.train.objectives import OBJECTIVES
from probe.errors import ConfigError
from probe.locks import LOCK_FILE, holder
from probe.rundir import RunDir

JOB_FILE = "job.json"
"""Written beside a run by a cluster launcher: the scheduler's job id of the task that trains it."""
COLUMNS = ("run", "state", "epoch", "best", "s/epoch", "job")


SCORE_KEYS = tuple(dict.fromkeys(objective.score_key(multi_label) for objective in OBJECTIVES.values()
                                  for multi_label in (True, False)))
"""The epoch-record keys that pick best.pt (`probe.train.objectives`): the first one a run has is its best score."""


def run_status(folder: Path) -> dict[str, Any]:
    """One run's state, epochs done of its total, best validation score, mean seconds per epoch, and job id."""
    run = RunDir(folder)
    config = json.loads(run.config.read_text()).get("config", {}) if run.config.is_file() else {}
    epochs = [r for r in run.read_metrics() if r.get("kind") == "epoch"]
    who = holder(run.path / LOCK_FILE)
    job = json.loads((run.path / JOB_FILE).read_text()).get("job_id") if (run.path / JOB_FILE).is_file() else None
    if run.is_complete():
        state = "done"
    elif who is not None:
        state, job = "training", who.get("job") or job
    elif run.latest.is_file():
        state = "stopped"
    else:
        state = "not started"
    score = next((key for key in SCORE_KEYS if any(key in r for r in epochs)), None)
    best = max((r[score] for r in epochs if score in r), default=None) if score else None
    if best is None:  # a pretraining run: its lowest validation loss
        best = min((r["val_loss"] for r in epochs if "val_loss" in r), default=None)
    seconds = [r["seconds"] for r in epochs if "seconds" in r]
    return {"run": str(folder), "state": state, "epoch": epochs[-1]["epoch"] if epochs else 0,
            "epochs": config.get("epochs"), "best": best, "seconds_per_epoch": sum(seconds) / len(seconds) if seconds
            else None, "job": job}


def grid_status(root: Path) -> list[dict[str, Any]]:
    """Every run directory at or beneath `root`, in path order."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(root, "no such folder")
    folders = sorted(folder for folder in {path.parent for path in root.rglob("config.json")} | {root}
                     if RunDir(folder).is_run())
    if not folders:
        raise ConfigError(root, "holds no run directories (no config.json beneath it)")
    rows = [run_status(folder) for folder in folders]
    for row in rows:
        row["run"] = str(Path(row["run"]).relative_to(root)) if Path(row["run"]) != root else root.name
    return rows


def format_status(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table, then a count per state."""
    cells = [(r["run"], r["state"], f"{r['epoch']}/{r['epochs'] if r['epochs'] is not None else '?'}",
              f"{r['best']:.4g}" if r["best"] is not None else "–",
              f"{r['seconds_per_epoch']:.1f}" if r["seconds_per_epoch"] is not None else "–", r["job"] or "–")
             for r in rows]
    widths = [max(len(str(c[i])) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [COLUMNS, *cells]]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return "\n".join(lines + ["", ", ".join(f"{n} {state}" for state, n in counts.items())])
