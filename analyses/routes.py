"""Three routes to what a classifier listens to, compared on one frequency axis.

Each finetuned probe says it by what finetuning changed per band against its control (the contrast; for
the spectral-gain probe this is its gain curve as heard through the signal), attributions say it by
where their mass lies. On the classifier's own mel bands every route is a profile per clip; Spearman's
rho between two routes' mean profiles says whether they order the bands alike (positive: they agree),
with a bootstrap interval over the clips. There is no parametric p: adjacent mel bands overlap and are
not independent samples.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from probe.analyses.bands import input_band_set
from probe.analyses.pooled import by_fold, fold_tables
from probe.analyses.registry import ComparisonContext, register_analysis
from probe.analyses.schema import TableSchema, col, interval
from probe.analyses.stats import rank_correlation_ci
from probe.rundir import AFTER, Tables
from probe.seeding import derive_seed

ATTRIBUTION = "attribution"
PROBE = "probe"
"""The two kinds of route, in the table's `kind_a` and `kind_b` columns."""


def contrast_per_clip(tables: dict[str, pd.DataFrame], band_set: str | None = None) -> pd.DataFrame:
    """(clip, band) of what finetuning changed against the control, in dB, on one band set (None: the classifier's
    input bands, where its attributions land); bands near the noise
    floor or too narrow for a verdict left out. Empty without a contrast (a compare, a control-less run)."""
    band_set = band_set or input_band_set()
    per_clip = tables[Tables.BAND_SHIFT_PER_CLIP]
    contrast = tables.get(Tables.BAND_CONTRAST_VS_CONTROL)
    if "contrast_db" not in per_clip or contrast is None or not len(contrast):
        return pd.DataFrame()
    rows = per_clip[(per_clip.band_set == band_set) & (per_clip.condition == AFTER)]
    usable = contrast[(contrast.band_set == band_set) & ~contrast.verdict.isin(["noise floor", "too narrow"])]
    frame = rows.pivot(index="clip_id", columns="band_index", values="contrast_db")
    return frame.loc[:, frame.columns.isin(usable.band_index)]


def attribution_per_clip(tables: dict[str, pd.DataFrame], method: str) -> pd.DataFrame:
    """(clip, mel bin) attribution mass of one method on the originals."""
    mass = tables.get(Tables.ATTRIBUTION_BAND_MASS)
    if mass is None or not len(mass):
        return pd.DataFrame()
    rows = mass[(mass.method == method) & (mass.condition == "original")]
    return rows.pivot(index="clip_id", columns="mel_bin", values="mass")


def mel_routes(setting: str, tables: dict[str, pd.DataFrame]) -> dict[str, tuple[str, pd.DataFrame]]:
    """One run's routes on its classifier's mel bands, name -> (kind, clips x bands): its contrast against the
    control, and attribution mass per method on the originals."""
    routes = {}
    contrast = contrast_per_clip(tables)
    if len(contrast):
        routes[f"{setting} (contrast)"] = (PROBE, contrast)
    mass = tables.get(Tables.ATTRIBUTION_BAND_MASS)
    if mass is not None and len(mass):
        for method in mass.method.unique():
            routes[f"{method.replace('_', ' ')} ({ATTRIBUTION})"] = (ATTRIBUTION, attribution_per_clip(tables, method))
    return routes


def correlate(first: pd.DataFrame, second: pd.DataFrame, units: pd.Series | None, level: float, n_boot: int,
              rng: np.random.Generator) -> dict[str, float]:
    """rho of two routes (clips x bands frames) over their common bands, resampling the union of their clips."""
    bands = first.columns.intersection(second.columns)
    clips = first.index.union(second.index)
    a = first.reindex(index=clips, columns=bands).to_numpy()
    b = second.reindex(index=clips, columns=bands).to_numpy()
    groups = units.reindex(clips).fillna(pd.Series(clips, index=clips)).to_numpy() if units is not None else None
    return rank_correlation_ci(a, b, level, n_boot, rng, groups)


COLUMNS = ["classifier", "route_a", "kind_a", "route_b", "kind_b", "spearman_rho", "ci_low", "ci_high", "bands",
           "pairs_compared"]


def route_correlations(classifier: str, routes: dict[str, tuple[str, pd.DataFrame]], units: pd.Series | None,
                       level: float = 0.95, n_boot: int = 1000, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """rho with its bootstrap interval for every pair of routes. A route whose mean profile is constant (the identity
    control changes nothing) has no ranks to correlate and is left out."""
    rng = rng or np.random.default_rng(0)
    varied = {name: route for name, route in routes.items() if route[1].mean().dropna().nunique() > 1}
    rows = []
    for (name_a, (kind_a, a)), (name_b, (kind_b, b)) in itertools.combinations(varied.items(), 2):
        result = correlate(a, b, units, level, n_boot, rng)
        if result["bands"] >= 3:
            rows.append({"classifier": classifier, "route_a": name_a, "kind_a": kind_a, "route_b": name_b,
                         "kind_b": kind_b, **result})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["pairs_compared"] = len(table)
    return table


def all_route_correlations(runs: list[tuple[str, str, dict[str, pd.DataFrame], pd.Series]], level: float = 0.95,
                           n_boot: int = 1000, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """`runs`: (classifier label, setting, tables, clip -> unit) per run; the correlations of every classifier's routes."""
    by_classifier: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
    units: dict[str, pd.Series] = {}
    for classifier, setting, tables, clip_units in runs:
        routes = by_classifier.setdefault(classifier, {})
        units.setdefault(classifier, clip_units)
        for name, route in mel_routes(setting, tables).items():
            routes.setdefault(name, route)  # attributions belong to the classifier: the first run's stand
    frames = [route_correlations(classifier, routes, units[classifier], level, n_boot, rng)
              for classifier, routes in by_classifier.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


ROUTE_TABLES = (Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_CONTRAST_VS_CONTROL, Tables.ATTRIBUTION_BAND_MASS)
"""The tables the routes read."""


ROUTES = TableSchema(
    Tables.ROUTE_CORRELATIONS, "classifier x pair of routes: Spearman's rho between two routes' mean profiles over the "
                               "classifier's mel bands (a probe's contrast against its control, an attribution method's "
                               "mass), with a bootstrap interval over the clips; no p-value (adjacent mel bands overlap)",
    (col("classifier", "str", "the classifier"), col("route_a", "str", "the first route"),
     col("kind_a", "str", "what it is", values=(PROBE, ATTRIBUTION)), col("route_b", "str", "the second route"),
     col("kind_b", "str", "what it is", values=(PROBE, ATTRIBUTION)),
     col("spearman_rho", "float", "rank correlation of the two mean profiles"), *interval(of="rho"),
     col("bands", "int", "mel bands compared"), col("pairs_compared", "int", "clips both routes cover")))


@register_analysis(Tables.ROUTE_CORRELATIONS, tables=(ROUTES,), scope="comparison",
                   reads=(Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_CONTRAST_VS_CONTROL, Tables.ATTRIBUTION_BAND_MASS))
def route_correlation_analysis(context: ComparisonContext) -> None:
    """Rank correlations, with bootstrap intervals over clips, between every pair of routes (probe contrasts,
    attribution mass) per classifier."""
    shifts = context.config.shifts

    runs = []  # per (classifier, setting): its folds' tables together, clips of every fold (one run per fold)
    for (judge, setting), folds in by_fold(context.results).items():
        units = pd.concat([pd.Series(folds[f].run.units, index=folds[f].run.clip_ids) for f in sorted(folds)])
        runs.append((judge, setting, fold_tables(folds, ROUTE_TABLES), units))
    correlations = all_route_correlations(runs, shifts.level, min(shifts.n_boot, 1000),
                                          np.random.default_rng(derive_seed(context.config.seed, "routes")))
    if len(correlations):
        context.tables[Tables.ROUTE_CORRELATIONS] = correlations
        context.summary["route_correlations"] = correlations.to_dict("records")
