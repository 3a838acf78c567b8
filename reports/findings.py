"""The report's main findings, as plain sentences generated from the analysis numbers."""
from __future__ import annotations

import itertools

import numpy as np

from probe.reports.data import Analysis
from probe.rundir import Tables


def findings(analysis: Analysis, band_set: str = "octave") -> list[str]:
    """Sentences for the index page, most important first."""
    sentences = []
    for run in analysis.runs:
        accuracy = run.summary["accuracy"]
        top1 = {c: accuracy.get(c, {}).get("top1") for c in ("original", "before", "after")}
        if top1["original"] is not None and top1["after"] is not None and top1["before"] is not None:
            sentences.append(f"{run.label}: accuracy {top1['original']:.3f} on the originals, {top1['before']:.3f} through "
                             f"the {run.condition_label('before')} and {top1['after']:.3f} through the "
                             f"{run.condition_label('after')}.")
        described = run.summary["bands"].get("after", {}).get(band_set)
        if described:
            sentences.append(f"{run.label}: the {run.condition_label('after')} {described['sentence']}.")
    sentences += _information(analysis)
    sentences += _route_agreement(analysis)
    sentences += _largest_band_difference(analysis, band_set)
    sentences += _transfer(analysis)
    divergent = analysis.comparison_tables.get(Tables.CLASS_DIVERGENCE)
    if divergent is not None and len(divergent):
        top = divergent.iloc[0]
        sentences.append(f"The class treated most differently is {top['class']}: its band profiles differ by "
                         f"{top.rms_difference_db:.1f} dB (RMS) between {top.most_different}.")
    cautioned = set()  # attributions belong to the classifier: one caution per classifier and method
    for run in analysis.runs:
        for method, check in run.summary.get("attributions", {}).get("randomisation_check", {}).items():
            if not check["passed"] and (run.classifier, method) not in cautioned:
                cautioned.add((run.classifier, method))
                sentences.append(f"Caution: {run.classifier}'s {method.replace('_', ' ')} maps barely change when its "
                                 f"weights are randomised (rank similarity {check['mean_rank_similarity']:.2f}).")
    return sentences


def _largest_band_difference(analysis: Analysis, band_set: str) -> list[str]:
    profiles = {}
    for run in analysis.runs:
        overall = run.table(Tables.BAND_SHIFT_OVERALL)
        rows = overall[(overall.band_set == band_set) & (overall.condition == "after")].sort_values("band_index")
        if len(rows):
            profiles[run.label] = rows.set_index("band").mean_shift_db
    if len(profiles) < 2:
        return []
    best = None
    for first, second in itertools.combinations(profiles, 2):
        shared = profiles[first].index.intersection(profiles[second].index)
        if not len(shared):
            continue
        gaps = (profiles[first][shared] - profiles[second][shared]).abs()
        band = gaps.idxmax()
        if best is None or gaps[band] > best[0]:
            best = (gaps[band], band, first, second)
    if best is None:
        return []
    _, band, first, second = best
    a, b = profiles[first][band], profiles[second][band]
    return [f"The classifiers differ most in the {band} band: {first}'s autoencoder changes its level by {a:+.1f} dB, "
            f"{second}'s by {b:+.1f} dB."]


def _transfer(analysis: Analysis) -> list[str]:
    """The largest drop from a classifier's own finetuned AE to another classifier's."""
    table = analysis.comparison_tables.get(Tables.TRANSFER)
    if table is None or table.classifier_of.nunique() < 2:
        return []
    own = table[table.own].groupby("classifier_of").accuracy_after.mean()
    foreign = table[~table.own]
    if not len(foreign):
        return []
    drops = foreign.assign(drop=[own.get(r.classifier_of, np.nan) - r.accuracy_after for r in foreign.itertuples()])
    worst = drops.sort_values("drop", ascending=False).iloc[0]
    return [f"Transfer: {worst.classifier_of} scores {worst.accuracy_after:.3f} on the reconstructions of {worst.autoencoder_of}, "
            f"against {own.get(worst.classifier_of, float('nan')):.3f} on those of the AEs finetuned for it."]


def _information(analysis: Analysis) -> list[str]:
    """Per classifier: the range of information its finetuned probes keep (Palacio's NMI), against chance."""
    sentences = []
    for classifier, runs in analysis.by_classifier().items():
        kept = {run.setting: run.summary["information"]["after"] for run in runs
                if "after" in run.summary.get("information", {}) and not run.summary.get("control")}
        if not kept:
            continue
        least, most = min(kept, key=lambda k: kept[k]["nmi_intra"]), max(kept, key=lambda k: kept[k]["nmi_intra"])
        chance = max((v["nmi_inter"] for v in kept.values() if v["nmi_inter"] == v["nmi_inter"]), default=None)
        span = (f"{kept[least]['nmi_intra']:.2f} ({least})" if least == most else
                f"between {kept[least]['nmi_intra']:.2f} ({least}) and {kept[most]['nmi_intra']:.2f} ({most})")
        against = f"; chance level up to {chance:.2f}" if chance is not None else ""
        sentences.append(f"{classifier}: the finetuned probes keep {span} of the original's time-frequency pattern "
                         f"(normalised mutual information{against}).")
    return sentences


def _route_agreement(analysis: Analysis) -> list[str]:
    """Per classifier: how well the best-agreeing probe and attribution method rank the mel bands alike."""
    table = analysis.comparison_tables.get(Tables.ROUTE_CORRELATIONS)
    if table is None or not len(table) or "kind_a" not in table:  # absent, or from an analysis before route kinds
        return []
    mixed = table[table.kind_a != table.kind_b]  # a probe against an attribution method
    sentences = []
    for classifier, rows in mixed.groupby("classifier", sort=False):
        best = rows.loc[rows.spearman_rho.idxmax()]
        sentences.append(f"{classifier}: of the probes and the attributions, {best.route_a} and {best.route_b} rank the "
                         f"mel bands most alike (Spearman ρ = {best.spearman_rho:+.2f}, p = {best.p_value:.2g}).")
    return sentences
