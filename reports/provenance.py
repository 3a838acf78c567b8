"""Where a report's numbers come from: the versions, checkpoints and seeds behind each page, and the command lines
that made the runs, the analyses and the report, in order (the index's "reproduce" block)."""
from __future__ import annotations

from typing import Any

from probe.reports.data import AnalysedRun, Analysis


def _short(sha: str | None) -> str | None:
    return sha[:12] if sha else None


def footer(analysis: Analysis, runs: list[AnalysedRun]) -> dict[str, Any]:
    """The provenance footer of a page showing `runs`: probe's version and git SHA, torch and captum, the seeds, and
    each run's checkpoint hashes."""
    made_by = analysis.provenances[0] if analysis.provenances else {}
    versions = made_by.get("versions", {})
    checkpoints = []
    for run in runs:
        inputs = run.summary.get("provenance", {}).get("inputs", {})
        for role, entry in inputs.items():
            if entry and entry.get("sha256"):
                checkpoints.append({"run": run.label, "role": role.replace("_", " "), "sha256": _short(entry["sha256"])})
    training_seeds = sorted({run.summary.get("provenance", {}).get("seed", run.summary.get("training_seed"))
                             for run in runs} - {None})
    return {"probe": versions.get("probe"), "git_sha": _short(made_by.get("git_sha")), "torch": versions.get("torch"),
            "captum": versions.get("captum"), "analysis_seed": made_by.get("seed"), "training_seeds": training_seeds,
            "checkpoints": checkpoints}


def reproduce(analysis: Analysis, report_command: str | None) -> list[str]:
    """The commands that made the runs, the analyses and this report, in that order, each once."""
    commands: list[str | None] = [run.summary.get("provenance", {}).get("command") for run in analysis.runs]
    commands += [made_by.get("command") for made_by in analysis.provenances]
    commands.append(report_command)
    ordered: list[str] = []
    for command in commands:
        line = command or "# (made by a Python call, not a probe command: no command line recorded)"
        if line not in ordered:
            ordered.append(line)
    return ordered
