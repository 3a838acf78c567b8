"""The analysis registry: each analysis is one function that turns an opened run (or all runs) into named tables.

    @register_analysis("my_question", tables=("my_table",), reads=("band_shift_per_clip",))
    def my_question(context: RunContext) -> None:
        context.tables["my_table"] = pd.DataFrame(...)      # a tidy table, written as parquet and CSV
        context.summary["my_question"] = {...}              # optional: JSON-able numbers for the report

Per-run analyses run on every run (`RunContext`); comparison analyses (`scope="comparison"`) run
once on all of them (`ComparisonContext`), after every run's. An analysis declares what it reads
(tables, or other named outputs such as `summary:bands`) and what it writes besides its tables; the
runner orders each scope by these and refuses a read that no analysis writes. Each analysis draws
from its own generator, seeded by --seed, so its numbers do not depend on which others ran.
The runner (`analyse.py`) writes every declared table and records in summary.json which analysis
wrote which table, so the report asks for tables by their registered names. A new analysis is one
new module (in this package, or a plugin: see `probe.plugins`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np
import pandas as pd

from probe.analyses.schema import TableSchema, with_identity
from probe.progress import Progress
from probe.registries import Registry

if TYPE_CHECKING:
    import torch

    from probe.analyses.runs import RunOutputs
    from probe.analyses.store import AttributionStore

AnalyseConfig = Any  # probe.analyses.config.AnalyseConfig, which names PlantedTruth from an analysis module

Scope = Literal["run", "comparison"]


@dataclass
class RunContext:
    """One run being analysed: its outputs, its classifier, the settings, and what earlier analyses produced."""

    run: "RunOutputs"
    classifier: Any
    """The run's classifier (None in a compare without one)."""
    folder: Path
    config: "AnalyseConfig"
    device: "torch.device"
    say: Progress
    rng: np.random.Generator
    """The running analysis's generator, seeded by --seed (the runner gives each analysis a fresh one)."""
    store: "AttributionStore"
    """What the attributions cost, kept by what it depends on: shared by the runs behind one classifier, and by
    later analyses that name the same store."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    memos: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per run: what several analyses derive alike from the run (its spectra, its mel maps),
        whichever asks first. A memo holds a pure function's value, never one analysis's result for another."""
        if key not in self.memos:
            self.memos[key] = compute()
        return self.memos[key]


@dataclass
class RunResult:
    """What the per-run analyses left of one run, for the comparison analyses."""

    run: "RunOutputs"
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]

    @property
    def setting(self) -> str:
        return self.summary["setting"]


@dataclass
class ComparisonContext:
    results: list[RunResult]
    classifiers: dict[str, Any]
    """Run label -> its classifier (or None)."""
    config: "AnalyseConfig"
    device: "torch.device"
    say: Progress
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    name: str
    scope: Scope
    tables: tuple[str, ...]
    """The names of the tables it may write (a run's folder, or comparison/)."""
    function: Callable[[Any], None]
    enabled: Callable[["AnalyseConfig"], bool] = lambda config: True
    description: str = ""
    reads: tuple[str, ...] = ()
    """What it reads that other analyses write: table names, or named outputs (`summary:bands`). A comparison
    analysis may read the per-run analyses' outputs, which are all written before it runs."""
    writes: tuple[str, ...] = ()
    """What it writes besides its tables (`summary:bands`, `summary:answer`), for the analyses that read it."""
    schemas: tuple[TableSchema, ...] = ()
    """The declared columns of its tables (`probe.analyses.schema`); a plugin's table may have none."""

    @property
    def outputs(self) -> tuple[str, ...]:
        return (*self.tables, *self.writes)


ANALYSES: Registry[Analysis] = Registry("analysis", builtins="probe.analyses")


def register_analysis(name: str, tables: tuple[str | TableSchema, ...], scope: Scope = "run",
                      enabled: Callable[["AnalyseConfig"], bool] | None = None, reads: tuple[str, ...] = (),
                      writes: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator: register `function(context)` as an analysis that writes `tables` (each a name, or a `TableSchema`
    that declares its columns) and `writes`, reading `reads`."""

    def decorate(function: Callable) -> Callable:
        doc = (function.__doc__ or "").strip().splitlines()
        names = tuple(table.name if isinstance(table, TableSchema) else table for table in tables)
        schemas = tuple(with_identity(table) if scope == "run" else table  # written with the run's identity in front
                        for table in tables if isinstance(table, TableSchema))
        ANALYSES.register(name, Analysis(name, scope, names, function, enabled or (lambda config: True),
                                         doc[0] if doc else "", tuple(reads), tuple(writes), schemas))
        return function

    return decorate


def table_schemas() -> dict[str, TableSchema]:
    """Every declared table schema by table name, built-ins and plugins'."""
    return {schema.name: schema for analysis in ANALYSES.entries() for schema in analysis.schemas}


def analyses(scope: Scope) -> list[Analysis]:
    """The registered analyses of one scope, in an order where each runs after what it reads (ties: as registered).

    A read that no analysis writes, or analyses that read each other's outputs, is a ConfigError."""
    from probe.errors import ConfigError

    everything = list(ANALYSES.entries())
    writers: dict[str, list[Analysis]] = {}
    for analysis in everything:
        for output in analysis.outputs:
            writers.setdefault(output, []).append(analysis)
    chosen = [analysis for analysis in everything if analysis.scope == scope]
    for analysis in chosen:
        unwritten = [read for read in analysis.reads if read not in writers]
        if unwritten:
            raise ConfigError(None, f"analysis {analysis.name!r} reads {', '.join(unwritten)}, which no analysis writes")
    ordered: list[Analysis] = []
    waiting = list(chosen)
    while waiting:
        ready = next((a for a in waiting if not any(w in waiting and w is not a for read in a.reads
                                                      for w in writers[read])), None)
        if ready is None:
            raise ConfigError(None, "analyses that read each other's outputs: " + ", ".join(a.name for a in waiting))
        ordered.append(ready)
        waiting.remove(ready)
    return ordered
