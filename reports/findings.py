"""The report's main findings, as plain sentences generated from the analysis numbers."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from probe.reports.data import Analysis, AnalysedRun
from probe.rundir import Tables


def findings(analysis: Analysis, band_set: str) -> list[dict[str, Any]]:
    """The index's findings, grouped: one group per classifier (a sentence per probe setting, then what its
    information, routes and attribution checks say), then one across classifiers. All on `band_set`."""
    information, routes = _information(analysis), _route_agreement(analysis)
    groups = []
    for classifier, runs in analysis.by_classifier().items():
        sentences = [sentence for run in runs if (sentence := _run_sentence(run, band_set))]
        sentences += [s for s in (information.get(classifier), routes.get(classifier)) if s]
        sentences += cautions(runs)
        groups.append({"title": classifier, "sentences": sentences})
    across = _largest_band_difference(analysis, band_set) + _transfer(analysis)
    divergent = analysis.comparison_tables.get(Tables.CLASS_DIVERGENCE)
    if divergent is not None and len(divergent):
        top = divergent.iloc[0]
        across.append(f"Descriptive, untested: the class whose probes' contrasts differ most is {top['class']}, by "
                      f"{top.rms_difference_db:.1f} dB (RMS over octave bands) between {top.most_different}; the "
                      f"largest of many differences over classes of {int(top.clips)} clips or more, with no interval.")
    if across:
        groups.append({"title": "Across classifiers", "sentences": across})
    return groups


def _run_sentence(run: AnalysedRun, band_set: str) -> str:
    """One probe setting: its accuracy through the chain and what finetuning changed against its control."""
    accuracy = run.summary["accuracy"]
    top1 = {c: accuracy.get(c, {}).get("top1") for c in ("original", "before", "after")}
    shown = " → ".join(f"{top1[c]:.3f}" for c in ("original", "before", "after") if top1[c] is not None)
    headline = run.headline(band_set)
    if not headline and not shown:
        return ""
    return f"{run.setting} ({run.accuracy_word} {shown}): {headline or 'no band analysis'}."


def cautions(runs: list[AnalysedRun]) -> list[str]:
    """The classifier's cautions, each once, saying what it means and what to do: a suspected fold leakage, and each
    attribution method that fails the randomisation check (attributions belong to the classifier: the runs behind it
    share one check)."""
    sentences, cautioned = [], set()
    leak = next((run.summary["possible_leakage"] for run in runs if run.summary.get("possible_leakage")), None)
    if leak:  # the classifier's, not the setting's: said once
        sentences.append(f"Caution, possible fold leakage: {leak}. Check which folds its checkpoints were trained and "
                         "selected on, or give per-fold checkpoints (a {fold} template).")
    for run in runs:
        for method, check in run.summary.get("attributions", {}).get("randomisation_check", {}).items():
            if check["passed"] or (run.classifier, method) in cautioned:
                continue
            cautioned.add((run.classifier, method))
            name = method.replace("_", " ")
            no_interval = not all(isinstance(check.get(k), (int, float)) and np.isfinite(check[k])
                                  for k in ("spearman_abs_high", "spearman_signed_high"))
            if no_interval:
                advice = f"too few clips ({check['clips']}) to show a difference: attribute more clips to decide"
            elif check["spearman_signed_high"] < check["max_similarity"]:
                advice = ("the signed maps do change, the magnitudes do not: where the mass lies says more about the "
                          "input than about the classifier, so lean on the probes' contrasts and on the signs")
            else:
                advice = "the maps do not depend on the weights: do not read them as what the classifier uses"
            sentences.append(
                f"Caution: {run.classifier}'s {name} maps fail the randomisation check (with every weight randomised, "
                f"mean Spearman {check['spearman_signed']:.2f} signed and {check['spearman_abs']:.2f} absolute against "
                f"the trained network's maps; a pass needs both 95 % upper bounds below {check['max_similarity']:.2f}): "
                f"{advice}.")
    return sentences


def verdict_rule(runs: list[AnalysedRun]) -> str:
    """What the verdict words mean, with the threshold, the test and the family: stated on every page."""
    bands = next((run.summary.get("bands", {}) for run in runs if "threshold_db" in run.summary.get("bands", {})), None)
    if bands is None:
        return ""
    threshold, alpha = bands["threshold_db"], bands["alpha"]
    family = ", ".join(f"{count} on {name.replace('_', '-')} bands" for name, count in bands.get("family_tests", {}).items())
    return (f"Verdicts: 'suppressed' (or 'boosted') means the mean change over clips is shown to lie below −{threshold:g} dB "
            f"(above +{threshold:g} dB) by a one-sided t-test; 'preserved' means it is shown to lie within ±{threshold:g} dB "
            f"(two one-sided tests); anything else is 'inconclusive'. Tests at α = {alpha:g}, {bands['correction']}-corrected "
            f"over every claim of a run's band set (tests per run: {family}). No interval or verdict from fewer than "
            f"{bands['min_units']} independent clips (clips cut from one recording count once).")


def _largest_band_difference(analysis: Analysis, band_set: str) -> list[str]:
    profiles = {}
    for run in analysis.runs:
        rows = run.overall(band_set, run.headline_condition).sort_values("band_index")
        if len(rows) and "verdict" in rows:  # bands without a verdict of their own hold no finding to compare
            rows = rows[~rows.verdict.isin(["noise floor", "too few clips", "too narrow"])]
        if len(rows) and not run.summary.get("control"):
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
    return [f"The runs differ most in the {band} band: finetuning changes its level by {a:+.1f} dB in {first} and "
            f"{b:+.1f} dB in {second} (against each run's control; the largest of {len(profiles) * (len(profiles) - 1) // 2} "
            "pairs of runs, a description, not a test)."]


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


def _information(analysis: Analysis) -> dict[str, str]:
    """Per classifier: the range of information its finetuned probes keep (Palacio's NMI), against chance; and any
    probe whose reconstructions resemble each other more than their inputs do (Palacio's inter NMI)."""
    sentences = {}
    for classifier, runs in analysis.by_classifier().items():
        kept = {run.setting: run.summary["information"]["after"] for run in runs
                if "after" in run.summary.get("information", {}) and not run.summary.get("control")}
        if not kept:
            continue
        least, most = min(kept, key=lambda k: kept[k]["nmi_intra"]), max(kept, key=lambda k: kept[k]["nmi_intra"])
        chances = [v.get("nmi_chance", np.nan) for v in kept.values()]
        chance = max((c for c in chances if c == c), default=None)
        span = (f"{kept[least]['nmi_intra']:.2f} ({least})" if least == most else
                f"between {kept[least]['nmi_intra']:.2f} ({least}) and {kept[most]['nmi_intra']:.2f} ({most})")
        against = f"; chance level (another clip's reconstruction) up to {chance:.2f}" if chance is not None else ""
        sentence = (f"The finetuned probes keep {span} of the original's time-frequency pattern "
                    f"(normalised mutual information; rank-based NMI: blind to level changes{against}).")
        for setting, v in kept.items():  # Palacio's inter: reconstructions of different inputs, against those inputs
            inter, originals = v.get("nmi_inter", np.nan), v.get("nmi_inter_originals", np.nan)
            if inter - originals > 0.1:
                sentence += (f" {setting}: its reconstructions resemble each other more than the inputs do (NMI "
                             f"{inter:.2f} against {originals:.2f}): a pattern imposed whatever the input.")
        sentences[classifier] = sentence
    return sentences


def _route_agreement(analysis: Analysis) -> dict[str, str]:
    """Per classifier: how well the best-agreeing probe and attribution method rank the mel bands alike."""
    table = analysis.comparison_tables.get(Tables.ROUTE_CORRELATIONS)
    if table is None or not len(table) or "kind_a" not in table:  # absent, or from an analysis before route kinds
        return {}
    mixed = table[(table.kind_a != table.kind_b) & table.spearman_rho.notna()]  # a probe against an attribution method
    sentences = {}
    for classifier, rows in mixed.groupby("classifier", sort=False):
        best = rows.loc[rows.spearman_rho.idxmax()]
        interval = (f", 95 % interval over clips {best.ci_low:+.2f} to {best.ci_high:+.2f}"
                    if "ci_low" in best and np.isfinite(best.ci_low) else ", too few clips for an interval")
        sentences[classifier] = (f"Of {len(rows)} probe–attribution pairs compared, {best.route_a} and {best.route_b} "
                                 f"rank the mel bands most alike (Spearman ρ = {best.spearman_rho:+.2f}{interval}; the "
                                 "best of several pairs is an optimistic pick).")
    return sentences


def attribution_checks(runs: list[AnalysedRun]) -> list[str]:
    """What the classifier's attribution maps were checked for, once per classifier (the runs behind it share the
    checks): integrated gradients' steps and completeness error, and the randomisation check's outcome per method
    (or why it did not run)."""
    attributed = [run.summary["attributions"] for run in runs if run.summary.get("attributions", {}).get("methods")]
    if not attributed:
        return []
    first, sentences = attributed[0], []
    completeness = first.get("completeness")
    if completeness:
        error, steps = completeness["median_relative_error"], completeness["steps"]
        if error is None:
            how = "the default: the error cannot be measured, the target's output for these clips being silence's"
        else:
            how = "chosen by completeness" if completeness["sized"] else "fixed, not chosen by completeness"
        measured = "" if error is None else (
            f"; the median relative completeness error (how far a clip's attributions fall short of summing to its "
            f"output minus silence's: a small one is necessary for exact maps, not sufficient) is {100 * error:.1f} % "
            f"on {completeness['clips_judged']} clips, against a bound of {100 * completeness['max_relative_error']:g} %")
        if completeness["within_bound"] is False:
            measured += (", not met at the most steps tried" if completeness["sized"] else
                         f", not met at the fixed {steps} steps") + ": read the integrated-gradient maps as approximate"
        sentences.append(f"Integrated gradients: {steps} steps ({how}){measured}.")
    check, settings = first.get("randomisation_check") or {}, first.get("randomisation_settings") or {}
    if first.get("randomisation_not_run"):
        sentences.append(f"Randomisation check {first['randomisation_not_run']}.")
    elif check:
        def outcome(method: str, c: dict) -> str:
            decided = all(isinstance(c.get(k), (int, float)) and np.isfinite(c[k])
                          for k in ("spearman_abs_high", "spearman_signed_high"))
            word = ("passes" if c["passed"] else "fails") if decided else "has no verdict (too few clips with ranks)"
            return (f"{method.replace('_', ' ')} {word} (Spearman {c['spearman_signed']:.2f} signed, "
                    f"{c['spearman_abs']:.2f} absolute)")

        bound = next(iter(check.values()))["max_similarity"]
        sentences.append(
            f"Randomisation check on {settings.get('clips', next(iter(check.values()))['clips'])} clips, every layer's "
            f"weights re-drawn from the output back in {settings.get('stages', '?')} cascading stages (BatchNorm's "
            f"running statistics kept), with the analysis's own settings: "
            + "; ".join(outcome(method, c) for method, c in check.items())
            + f". A pass needs both 95 % upper bounds below {bound:.2f}: necessary for reading the maps as the "
              "classifier's, not a proof of it.")
    return sentences
