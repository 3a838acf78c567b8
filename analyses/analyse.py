"""`probe analyse`: every registered analysis (`registry.py`) over finetune run directories, written atomically
into an analysis folder (its layout: `probe.rundir.AnalysisDir`)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probe.analyses import registry
from probe.analyses.attribution import ATTRIBUTION_METHODS
from probe.analyses.bands import band_sets_for, fixed_band_sets, answer_band_set, fine_band_set, input_band_set
from probe.analyses.config import AnalyseConfig, AttributionSettings, ShiftSettings
from probe.analyses.registry import ComparisonContext
from probe.analyses.schema import SCHEMA_VERSION, check_table
from probe.analyses.runs import (
    RunOutputs,
    classifier_label,
    label_mark,
    expand_runs,
    load_run,
    objective_record,
    run_cautions,
    setting_label,
    unique_labels,
)
from probe.analyses.plan import attribution_plan, describe_plan
from probe.analyses.stats import CORRECTIONS
from probe.analyses.store import AttributionStore
from probe.analyses.tables import identity_columns, with_identity
from probe.fileio import atomic_write, write_json, write_text
from probe.outputs import check_output, staged_directory
from probe.probes import probe_of_run
from probe.progress import Progress, reporting
from probe.rundir import AnalysisDir, RunDir, provenance
from probe.seeding import derive_seed, seeded

__all__ = ["AnalyseConfig", "AttributionSettings", "ShiftSettings", "analyse", "analyse_run", "check_names",
           "write_analysis", "write_table"]


def write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """A table as parquet (typed) and CSV (for anything else), each written atomically, checked against its
    declared schema (`probe.analyses.schema`)."""
    check_table(registry.table_schemas().get(name), frame)
    with atomic_write(AnalysisDir.table_file(folder, name)) as handle:
        frame.to_parquet(handle, index=False)
    write_text(AnalysisDir.table_file(folder, name, ".csv"), frame.to_csv(index=False))


def check_names(config: AnalyseConfig) -> None:
    """The config's settings and its names of corrections, attribution methods and band sets; a ConfigError names
    the unknown one and lists the known."""
    config.validate()
    CORRECTIONS.lookup(config.shifts.correction)
    for method in config.attributions.methods:
        ATTRIBUTION_METHODS.lookup(method)
    band_sets_for(config.band_sets, 32000)  # raises on unknown names


def analyse(config: AnalyseConfig) -> Path:
    """Analyse every run, compare them, and write ANALYSISDIR atomically; returns its path.

    Everything random draws from `config.seed`, and the global generators are as they were afterwards (building a
    classifier before its weights load draws from torch's, for one)."""
    check_names(config)
    check_output(config.out, "analysis", config.runs)
    with seeded(derive_seed(config.seed, "analyse")):
        return _analyse(config)


def plan(config: AnalyseConfig) -> list[str]:
    """What `analyse(config)` would attribute and how long that should take (`probe analyse --dry-run`), writing
    nothing."""
    check_names(config)
    with seeded(derive_seed(config.seed, "analyse")):
        runs, classifiers, device = _load(config, Progress(config.progress))
        store = AttributionStore(config.store_folder())
        return describe_plan(attribution_plan(runs, classifiers, config, device, store), config.budget_minutes)


def _analyse(config: AnalyseConfig) -> Path:
    say = Progress(config.progress)
    with reporting(say):  # long loops (attributions, the completeness walk, removals) say how far they are
        return _analyse_with(config, say)


def _analyse_with(config: AnalyseConfig, say: Progress) -> Path:
    runs, classifiers, device = _load(config, say)
    store = AttributionStore(config.store_folder())
    if config.attributions.methods and any(c is not None for c in classifiers.values()):
        for line in describe_plan(attribution_plan(runs, classifiers, config, device, store), config.budget_minutes):
            say(line)
    return write_analysis(runs, classifiers, config, device, say, store)


def _load(config: AnalyseConfig, say: Progress) -> tuple[list[RunOutputs], dict[str, Any], torch.device]:
    """The runs, and one classifier instance per distinct classifier (run label -> it), on the chosen device."""
    from probe.devices import pick_device
    from probe.models.classifiers import load_classifier, require_trained

    device = pick_device(config.device)
    runs = [load_run(path) for path in expand_runs(config.runs)]
    unique_labels(runs)
    loaded: dict[tuple, Any] = {}  # one instance per distinct classifier, shared by the runs behind it
    classifiers = {}
    for run in runs:
        key = run.classifier_key()
        if key not in loaded:
            say(f"{run.label}: loading classifier {run.config.get('classifier')}")
            loaded[key] = load_classifier(
                run.config["classifier"], run.classifier_weights(), len(run.class_names), class_names=run.class_names,
                device=device, **run.config.get("classifier_options", {}))
            require_trained(loaded[key], config.allow_untrained, where=run.path)
        classifiers[run.label] = loaded[key]
    return runs, classifiers, device


def write_analysis(runs: list[RunOutputs], classifiers: dict[str, Any], config: AnalyseConfig, device: torch.device,
                   say: Progress, store: AttributionStore | None = None) -> Path:
    """Run every registered analysis on prepared runs (`classifiers`: run label -> classifier or None) into
    config.out, atomically: the per-run analyses on each run, then the comparison analyses on all of them."""
    store = AttributionStore(config.store_folder()) if store is None else store
    with staged_directory(config.out, "analysis", config.runs) as staging:
        folder = AnalysisDir(staging)
        results = [analyse_run(run, classifiers[run.label], folder.run_folder(run.label), config, device, say, store)
                   for run in runs]
        folder.comparison.mkdir()
        context = ComparisonContext(results, classifiers, config, device, say)
        written = _run_analyses(registry.analyses("comparison"), context, config)
        for name, frame in context.tables.items():
            write_table(folder.comparison, name, frame)
        write_json(folder.summary, {
            "schema_version": SCHEMA_VERSION, "runs": [{"label": r.run.label, "path": r.summary["path"], "folder": r.run.label} for r in results],
            "timings": context.summary.pop("timings", {}), "comparison": context.summary,
            "comparison_tables": written, "config": _jsonable(config),
            "provenance": {**provenance({}), "seed": config.seed},
        })
    say(f"done: {config.out}")
    return Path(config.out)


def _run_analyses(chosen: list[registry.Analysis], context, config: AnalyseConfig) -> dict[str, str]:
    """Run the enabled analyses in order; returns table name -> the analysis that wrote it, and records timings."""
    written: dict[str, str] = {}
    for analysis in chosen:
        if not analysis.enabled(config):
            continue
        before = set(context.tables)
        started = time.perf_counter()
        if isinstance(context, registry.RunContext):
            context.rng = np.random.default_rng(config.seed)  # its own draws, whichever analyses ran before it
        analysis.function(context)
        context.summary.setdefault("timings", {})[f"{analysis.name}_s"] = time.perf_counter() - started
        new = set(context.tables) - before
        undeclared = new - set(analysis.tables)
        if undeclared:
            raise RuntimeError(f"analysis {analysis.name!r} wrote tables it does not declare: {sorted(undeclared)}")
        written.update({name: analysis.name for name in analysis.tables if name in context.tables})
    return written


def analyse_run(run: RunOutputs, classifier, folder: Path, config: AnalyseConfig, device: torch.device,
                say: Progress, store: AttributionStore | None = None) -> registry.RunResult:
    """Every registered per-run analysis of one run into `folder`; returns its summary and tables."""
    folder.mkdir(parents=True)
    spec = probe_of_run(run.config)
    objective = objective_record(run)
    mark = label_mark(run.path, run.config)
    context = registry.RunContext(run, classifier, folder, config, device, say, np.random.default_rng(config.seed),
                                  AttributionStore() if store is None else store)
    context.summary.update({
        "schema_version": SCHEMA_VERSION, "label": run.label, "path": str(run.path), "fold": int(run.config.get("fold", 1)),
        "classifier": classifier_label(run.config),
        "setting": setting_label(run.config, mark=mark),
        "setting_base": setting_label(run.config, replicate=False, mark=mark),
        "probe": spec.name,
        "objective": objective.get("objective") or "cross-entropy",
        "penalty": float(objective.get("penalty") or 0.0), "control": spec.control,
        "per_class": bool(objective.get("per_class")), "seed": run.config.get("seed"),
        "replicate": run.config.get("replicate"),
        "clips": len(run.targets), "sample_rate": run.sample_rate, "class_names": run.class_names,
        "category_names": run.category_names, "class_categories": run.class_categories,
        "condition_labels": run.condition_labels, "settings": {"shifts": asdict(config.shifts), "seed": config.seed},
        "band_sets": {"fixed": list(fixed_band_sets()), "answer": answer_band_set(), "fine": fine_band_set(), "classifier_input": input_band_set()},
        "provenance": {**run.provenance, "seed": run.config.get("seed")},
        "possible_leakage": _possible_leakage(RunDir(run.path)),
        "cautions": run_cautions(run, classifier),
        "timings": {},
    })
    context.summary["tables"] = _run_analyses(registry.analyses("run"), context, config)
    identity = identity_columns(context.summary)
    for name, frame in context.tables.items():
        write_table(folder, name, with_identity(frame, identity))
    with atomic_write(folder / AnalysisDir.ARRAYS) as handle:
        np.savez_compressed(handle, **context.arrays)
    write_json(folder / AnalysisDir.SUMMARY, context.summary)
    return registry.RunResult(run, context.summary, context.tables)


def _possible_leakage(run: RunDir) -> str | None:
    """The training run's leakage flag (`probe.folds.suspected_leak`); none for a compare's processed folder."""
    return json.loads(run.done.read_text()).get("possible_leakage") if run.done.is_file() else None


def _jsonable(config: AnalyseConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(config).items() if k not in ("progress", "planted")}
