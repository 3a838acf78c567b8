"""The analysis registry: each analysis is one function that turns an opened run (or all runs) into named tables.

    @register_analysis("my_question", tables=("my_table",))
    def my_question(context: RunContext) -> None:
        context.tables["my_table"] = pd.DataFrame(...)      # a tidy table, written as parquet and CSV
        context.summary["my_question"] = {...}              # optional: JSON-able numbers for the report

Per-run analyses run in registration order on every run (`RunContext`); comparison analyses
(`scope="comparison"`) run once on all of them (`ComparisonContext`). The runner (`analyse.py`)
writes every declared table and records in summary.json which analysis wrote which table, so
the report asks for tables by their registered names. A new analysis is one new module (in this
package, listed in BUILTIN_MODULES, or a plugin: see `probe.plugins`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np
import pandas as pd

from probe.plugins import loader
from probe.progress import Progress
from probe.registries import Registry

if TYPE_CHECKING:
    import torch

    from probe.analyses.runs import RunOutputs

AnalyseConfig = Any  # probe.analyses.config.AnalyseConfig, which names PlantedTruth from an analysis module

Scope = Literal["run", "comparison"]
BUILTIN_MODULES = ("accuracy", "bandshift", "spectral", "information", "attribution", "randomisation", "examples", "routes",
                   "transfer", "pooled", "answer", "planted")
"""The modules whose analyses come with probe, in the order they run (later ones read earlier ones' tables)."""


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
    """One generator per run, seeded by --seed, drawn from in the analyses' order."""
    shared: dict[tuple, Any]
    """Results reused across runs (attribution maps of the originals, for runs that share a classifier)."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    """Intermediate results one analysis computes and a later one reuses (spectra, mel maps)."""


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


ANALYSES: Registry[Analysis] = Registry("analysis", load=loader("probe.analyses", BUILTIN_MODULES))


def register_analysis(name: str, tables: tuple[str, ...], scope: Scope = "run",
                      enabled: Callable[["AnalyseConfig"], bool] | None = None) -> Callable[[Callable], Callable]:
    """Decorator: register `function(context)` as an analysis that writes `tables`."""

    def decorate(function: Callable) -> Callable:
        doc = (function.__doc__ or "").strip().splitlines()
        ANALYSES.register(name)(Analysis(name, scope, tuple(tables), function, enabled or (lambda config: True),
                                         doc[0] if doc else ""))
        return function

    return decorate


def _position(analysis: Analysis) -> int:
    module = analysis.function.__module__.rpartition(".")[2]
    builtin = analysis.function.__module__.startswith("probe.analyses.") and module in BUILTIN_MODULES
    return BUILTIN_MODULES.index(module) if builtin else len(BUILTIN_MODULES)


def analyses(scope: Scope) -> list[Analysis]:
    """The registered analyses of one scope, in the order they run: the built-in modules in BUILTIN_MODULES'
    order (whatever order they were imported in), then the plugins'; within a module, as registered."""
    chosen = [analysis for analysis in ANALYSES.ensure_loaded().values() if analysis.scope == scope]
    return sorted(chosen, key=_position)
