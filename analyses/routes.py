"""Three routes to what a classifier listens to, compared on one frequency axis.

Each finetuned probe says it by the energy it keeps per band (its band shift; for the spectral-gain
probe this is its gain curve as heard through the signal), attributions say it by where their mass
lies. On the classifier's own mel bands every route is a profile; the Spearman rank correlation of
two profiles says whether the routes order the bands alike (positive: they agree).
"""
from __future__ import annotations

import itertools

import pandas as pd

from probe.analyses.registry import ComparisonContext, register_analysis
from probe.rundir import Tables

ATTRIBUTION = "attribution"
PROBE = "probe"
"""The two kinds of route, in the table's `kind_a` and `kind_b` columns."""


def mel_profiles(setting: str, tables: dict[str, pd.DataFrame]) -> dict[str, tuple[str, pd.Series]]:
    """One run's routes on its classifier's mel bands, name -> (kind, profile): its band shift, and
    attribution mass per method on the originals."""
    shift = tables[Tables.BAND_SHIFT_OVERALL]
    shift = shift[(shift.band_set == "mel") & (shift.condition == "after")].set_index("band_index").sort_index()
    profiles = {f"{setting} (band shift)": (PROBE, shift.mean_shift_db.where(~shift.near_noise_floor))}
    attribution = tables.get(Tables.ATTRIBUTION_BAND_PROFILE)
    if attribution is not None and len(attribution):
        originals = attribution[attribution.condition == "original"]
        for method, part in originals.groupby("method", sort=False):
            profile = part.set_index("band_index")["mass"].sort_index()
            profiles[f"{method.replace('_', ' ')} ({ATTRIBUTION})"] = (ATTRIBUTION, profile)
    return profiles


COLUMNS = ["classifier", "route_a", "kind_a", "route_b", "kind_b", "spearman_rho", "p_value", "bands"]


def route_correlations(classifier: str, profiles: dict[str, tuple[str, pd.Series]]) -> pd.DataFrame:
    """Spearman rho (and its p-value) for every pair of routes, over the bands where both are defined.

    A constant profile (the identity control shifts nothing) has no ranks to correlate and is left out.
    """
    from scipy.stats import spearmanr

    varied = {name: (kind, p.dropna()) for name, (kind, p) in profiles.items() if p.dropna().nunique() > 1}
    rows = []
    for (name_a, (kind_a, a)), (name_b, (kind_b, b)) in itertools.combinations(varied.items(), 2):
        common = a.index.intersection(b.index)
        if len(common) < 3:
            continue
        rho, p_value = spearmanr(a.loc[common].to_numpy(), b.loc[common].to_numpy())
        rows.append({"classifier": classifier, "route_a": name_a, "kind_a": kind_a, "route_b": name_b, "kind_b": kind_b,
                     "spearman_rho": float(rho), "p_value": float(p_value), "bands": int(len(common))})
    return pd.DataFrame(rows, columns=COLUMNS)


def all_route_correlations(runs: list[tuple[str, str, dict[str, pd.DataFrame]]]) -> pd.DataFrame:
    """`runs`: (classifier label, setting, tables) per run; the correlations of every classifier's routes."""
    by_classifier: dict[str, dict[str, tuple[str, pd.Series]]] = {}
    for classifier, setting, tables in runs:
        profiles = by_classifier.setdefault(classifier, {})
        for name, route in mel_profiles(setting, tables).items():
            profiles.setdefault(name, route)  # attributions belong to the classifier: the first run's stand
    frames = [route_correlations(classifier, profiles) for classifier, profiles in by_classifier.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


@register_analysis(Tables.ROUTE_CORRELATIONS, tables=(Tables.ROUTE_CORRELATIONS,), scope="comparison")
def route_correlation_analysis(context: ComparisonContext) -> None:
    """Rank correlations between every pair of routes (probe band shifts, attribution mass) per classifier."""
    correlations = all_route_correlations([(r.run.judge, r.setting, r.tables) for r in context.results])
    if len(correlations):
        context.tables[Tables.ROUTE_CORRELATIONS] = correlations
        context.summary["route_correlations"] = correlations.to_dict("records")
