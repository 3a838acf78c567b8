"""The answer: per classifier, which bands it needs and which it can do without, every word measured.

A probe proposes; removal confirms. The sentence is built in three steps, all fixed before any result was seen:

1. **The probe.** Only the kinds the planted validation showed to recover a planted band are read (`ANSWER_PROBES`:
   the spectral gain, and the energy-penalised AE from a pretrained start); a classifier with neither gets no
   answer. Their replicates are the runs of one (classifier, setting, fold) that differ only in their seed.
2. **The replicates.** Per octave band, each replicate's clip-mean contrast against its control and its verdict.
   A band is *dropped* when at least ceil(0.8 K) of the K replicates say suppressed (or not needed) and the
   across-replicate upper bound (t with K - 1 degrees of freedom, one-sided 95 %) lies below -T; *kept* when as many
   say preserved or boosted and the across-replicate interval lies above -T. With one replicate there is no
   word: the training-to-training spread is unknown.
3. **Removal.** The dropped ranges are cut from the original clips together (`removal.py`); if the classifier
   loses less than the margin, every one reads "can do without". Otherwise they are added one at a time, most
   dropped first, and a range whose addition costs more than the margin reads "not confirmed". A kept range
   whose removal alone costs more than the margin reads "needs"; two kept ranges neither of which alone does,
   but which together do, read "needs one of" (either suffices). Each removal is one classifier pass over the
   clips; at most `RemovalSettings.max_sets` are made.

The level check: the clips 20 dB quieter. A classifier that loses less than the margin then (a level-invariant
one: many normalise each frame) gives a gain probe a free, uniform way down; its replicates' contrasts are then
read relative to their own mean over the bands, and the page says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from probe.analyses.bands import answer_band_set
from probe.analyses.config import RemovalSettings
from probe.analyses.registry import ComparisonContext, register_analysis
from probe.analyses.removal import decide, paired_drop, remove_bands
from probe.analyses.runs import scored_against_labels
from probe.analyses.schema import TableSchema, col
from probe.analyses.transfer import classifier_logits
from probe.probes import run_kind
from probe.progress import Ticker
from probe.rundir import Tables
from probe.sizing import MIN_INTERVAL_UNITS, smallest_upper_bound
from probe.units import format_hz

DROPPED = ("suppressed", "not needed")
KEPT = ("preserved", "boosted")
SPREAD_NOTE = ("one trained probe: its training-to-training spread is unknown (over five seeds of the planted "
               "experiment the spectral gain's per-seed means spread by 4-5 dB, the plain AE's by 9 dB)")


def answer_probe(summary: dict[str, Any]) -> str | None:
    """The kind of answer probe a run is, or None (a control, another probe, a per-class curve, a random start)."""
    if summary.get("control") or summary.get("per_class") or summary.get("bands", {}).get("headline") != "contrast":
        return None
    kind = run_kind(summary)
    return kind if kind in ANSWER_PROBES else None


ANSWER_PROBES = ("spectral gain", "energy-penalised AE")
"""In order of preference: the spectral gain recovered both planted bands on every seed, the energy-penalised AE
on all but one."""


@dataclass
class Replicates:
    """One (classifier, setting, fold)'s runs that differ only in their seed."""

    classifier: str
    setting: str
    kind: str
    results: list[Any] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.results)


def replicate_groups(results: list[Any]) -> dict[str, Replicates]:
    """Per classifier, the replicates of its preferred answer probe (the first fold where it has several)."""
    groups: dict[tuple[str, str, int], Replicates] = {}
    for result in results:
        kind = answer_probe(result.summary)
        if kind is None:
            continue
        setting = result.summary.get("setting_base", result.setting)
        key = (result.run.judge, setting, int(result.summary.get("fold", 1)))
        groups.setdefault(key, Replicates(result.run.judge, setting, kind)).results.append(result)
    chosen: dict[str, Replicates] = {}
    for (classifier, _, _), group in sorted(groups.items(), key=lambda item: (ANSWER_PROBES.index(item[1].kind),
                                                                              -item[1].count, item[0])):
        chosen.setdefault(classifier, group)
    return chosen


def replicate_bands(group: Replicates, threshold_db: float, level_invariant: bool) -> pd.DataFrame:
    """Per octave band: each replicate's contrast and verdict, the across-replicate mean and one-sided bounds, and
    how many replicates drop or keep it; `word`: dropped, kept or none."""
    from scipy.stats import t as student

    frames = []
    for index, result in enumerate(group.results):
        table = result.tables["band_contrast_vs_control"]
        rows = table[table.band_set == answer_band_set()].sort_values("band_index")
        frames.append(rows.assign(replicate=index))
    rows = pd.concat(frames, ignore_index=True)
    values = rows.pivot(index="band_index", columns="replicate", values="mean_shift_db")
    verdicts = rows.pivot(index="band_index", columns="replicate", values="verdict")
    floor = rows.groupby("band_index").near_noise_floor.any()
    if level_invariant:  # a uniform drop costs such a classifier nothing: read each replicate against its own mean
        values = values - values[~floor.reindex(values.index)].mean(0)
    bands = rows.drop_duplicates("band_index").set_index("band_index").loc[values.index]
    k = values.shape[1]
    mean = values.mean(1)
    sd = values.std(1, ddof=1) if k > 1 else pd.Series(np.nan, index=values.index)
    half = student.ppf(0.95, k - 1) * sd / math.sqrt(k) if k > 1 else pd.Series(np.nan, index=values.index)
    if level_invariant:
        dropped_votes = (values < -threshold_db).sum(1)
        kept_votes = (values.abs() <= threshold_db).sum(1) + (values > threshold_db).sum(1)
    else:
        dropped_votes = verdicts.isin(DROPPED).sum(1)
        kept_votes = verdicts.isin(KEPT).sum(1)
    needed = math.ceil(0.8 * k)
    word = np.where(floor.reindex(values.index).to_numpy() | (k < 2), "none",
                    np.where((dropped_votes >= needed) & (mean + half < -threshold_db), "dropped",
                             np.where((kept_votes >= needed) & (mean - half > -threshold_db), "kept", "none")))
    return pd.DataFrame({"band": bands.band, "low_hz": bands.low_hz, "high_hz": bands.high_hz,
                         "contrast_db": mean, "contrast_low_db": mean - half, "contrast_high_db": mean + half,
                         "dropped_votes": dropped_votes, "kept_votes": kept_votes, "replicates": k,
                         "near_noise_floor": floor.reindex(values.index), "word": word,
                         "proposed": np.where(dropped_votes * 2 > k, "dropped", np.where(kept_votes * 2 > k, "kept", ""))})


def contiguous(bands: pd.DataFrame, mask: np.ndarray) -> list[pd.DataFrame]:
    """The runs of adjacent bands where `mask` holds, each as its rows."""
    runs, current = [], []
    for position, keep in enumerate(mask):
        if keep:
            current.append(position)
        elif current:
            runs.append(bands.iloc[current])
            current = []
    if current:
        runs.append(bands.iloc[current])
    return runs


def span(rows: pd.DataFrame) -> tuple[float, float]:
    return float(rows.low_hz.min()), float(rows.high_hz.max())


class Remover:
    """Scores the classifier on its run's originals with ranges removed, one classifier pass per distinct set, at most
    `settings.max_sets` of them."""

    def __init__(self, run: Any, classifier: Any, targets: np.ndarray, device: Any, settings: RemovalSettings) -> None:
        self.run, self.classifier, self.targets, self.device, self.settings = run, classifier, targets, device, settings
        self.originals = np.asarray(run.originals)
        self.before = run.logits["original"].argmax(1) == targets
        self.cache: dict[tuple, tuple[float, float, float]] = {}
        self.ticker = Ticker(f"removal checks of {run.label}: passes", settings.max_sets, at_most=True)

    @property
    def passes(self) -> int:
        return len(self.cache)

    def score(self, waveforms: np.ndarray) -> np.ndarray:

        return classifier_logits(self.classifier, waveforms, self.run.sample_rate, self.device).argmax(1) == self.targets

    def drop(self, ranges: list[tuple[float, float]]) -> tuple[float, float, float] | None:
        key = tuple(sorted(ranges))
        if key not in self.cache:
            if len(self.cache) >= self.settings.max_sets:
                return None
            filtered = remove_bands(self.originals, self.run.sample_rate, list(key), self.settings)
            self.cache[key] = paired_drop(self.before, self.score(filtered), self.run.units, self.settings.alpha)
            self.ticker.advance()
        return self.cache[key]

    def quieter(self) -> tuple[float, float, float]:
        scale = 10 ** (-self.settings.quieter_db / 20)
        return paired_drop(self.before, self.score(self.originals * scale), self.run.units, self.settings.alpha)


def _row(classifier: str, claim: str, rows: pd.DataFrame, group_id: int | None, drop: tuple | None, confirmed: bool,
         metric: str, replicates: int, votes: int, note: str = "") -> dict[str, Any]:
    low, high = span(rows)
    return {"classifier": classifier, "claim": claim, "from_hz": low, "to_hz": high, "group": group_id,
            "replicates_agreeing": int(votes), "replicates": int(replicates),
            "contrast_db": float(rows.contrast_db.mean()), "removal_drop": drop[0] if drop else np.nan,
            "ci_low": drop[1] if drop else np.nan, "ci_high": drop[2] if drop else np.nan,
            "confirmed": bool(confirmed), "metric": metric, "note": note}


def answer_rows(group: Replicates, bands: pd.DataFrame, remover: Remover | None, settings: RemovalSettings,
                metric: str) -> list[dict[str, Any]]:
    """The claims of one classifier's answer (`answer.csv` rows), measured by removal where `remover` is given."""
    margin, name, k = settings.margin_points, group.classifier, group.count
    rows: list[dict[str, Any]] = []
    if k < 2:  # no word: the probe's proposals and what removing them costs, as data
        for proposal in ("dropped", "kept"):
            for run in contiguous(bands, (bands.proposed == proposal).to_numpy()):
                drop = remover.drop([span(run)]) if remover is not None else None
                rows.append(_row(name, "no_verdict", run, None, drop, False, metric, k,
                                 int(run[f"{proposal}_votes"].min()), f"one replicate; its probe {proposal} this range"))
        return rows
    dropped = contiguous(bands, (bands.word == "dropped").to_numpy())
    kept = contiguous(bands, (bands.word == "kept").to_numpy())
    confirmed_drops: list[tuple[float, float]] = []
    if dropped and remover is not None:
        together = remover.drop([span(r) for r in dropped])
        if together is not None and decide(together[1], together[2], margin) == "costs less":
            confirmed_drops = [span(r) for r in dropped]
        else:  # one range at a time, the most dropped first: a range that breaks the set is not confirmed
            for run in sorted(dropped, key=lambda r: r.contrast_db.mean()):
                trial = remover.drop(confirmed_drops + [span(run)])
                if trial is not None and decide(trial[1], trial[2], margin) == "costs less":
                    confirmed_drops.append(span(run))
    final_set = remover.drop(confirmed_drops) if confirmed_drops and remover is not None else None
    for run in dropped:
        ok = span(run) in confirmed_drops
        alone = remover.drop([span(run)]) if remover is not None and not ok else None
        note = ("removed together with every other range it can do without" if ok else
                "the probe dropped it, but removing it costs more than the margin, or cannot be shown to cost less")
        rows.append(_row(name, "can_do_without" if ok else "not_confirmed", run, None, final_set if ok else alone, ok,
                         metric, k, int(run.dropped_votes.min()), note))
    alone_costs: dict[tuple[float, float], tuple | None] = {}
    for run in kept:
        drop = remover.drop([span(run)]) if remover is not None else None
        alone_costs[span(run)] = drop
        if drop is not None and decide(drop[1], drop[2], margin) == "costs more":
            rows.append(_row(name, "needs", run, None, drop, True, metric, k, int(run.kept_votes.min())))
    open_kept = [run for run in kept if not any(r["claim"] == "needs" and (r["from_hz"], r["to_hz"]) == span(run)
                                                for r in rows)]
    group_id = 0
    paired: set[int] = set()
    for i in range(len(open_kept)):
        for j in range(i + 1, len(open_kept)):
            both = remover.drop([span(open_kept[i]), span(open_kept[j])]) if remover is not None else None
            if both is not None and decide(both[1], both[2], margin) == "costs more":
                group_id += 1
                for index in (i, j):
                    paired.add(index)
                    run = open_kept[index]
                    rows.append(_row(name, "needs_one_of", run, group_id, both, True, metric, k,
                                     int(run.kept_votes.min()), "either suffices: removing one alone costs less than "
                                     "removing both"))
    for index, run in enumerate(open_kept):
        if index not in paired:
            rows.append(_row(name, "no_verdict", run, None, alone_costs.get(span(run)), False, metric, k,
                             int(run.kept_votes.min()), "the probe kept it, but removing it alone costs no more than "
                             "the margin"))
    for run in contiguous(bands, (bands.word == "none").to_numpy()):
        rows.append(_row(name, "no_verdict", run, None, None, False, metric, k,
                         int(max(run.dropped_votes.min(), run.kept_votes.min())),
                         "near the noise floor" if run.near_noise_floor.all() else "the replicates do not agree"))
    return rows


def answer_sentence(classifier: str, rows: pd.DataFrame, group: Replicates, level_invariant: bool,
                    settings: RemovalSettings, units: int) -> str:
    """The plain sentence of one classifier's claims."""

    def spans(frame: pd.DataFrame) -> str:
        return ", ".join(f"{format_hz(r.from_hz)}–{format_hz(r.to_hz)}" for r in frame.sort_values("from_hz").itertuples())

    parts = []
    needs = rows[rows.claim == "needs"]
    if len(needs):
        parts.append(f"needs {spans(needs)}")
    for _, members in rows[rows.claim == "needs_one_of"].groupby("group"):
        parts.append(f"needs {' or '.join(spans(members.iloc[[i]]) for i in range(len(members)))} (either suffices)")
    without = rows[rows.claim == "can_do_without"]
    if len(without):
        parts.append(f"can do without {spans(without)}")
    said = " and ".join(parts) if parts else "has no confirmed word"
    extra = []
    measured = lambda r: f"{r.removal_drop:+.0f} points [{r.ci_low:+.0f}, {r.ci_high:+.0f}]"  # noqa: E731
    if group.count < 2:  # no words: what the one probe proposed, and what removing it costs
        said = "gets no verdict word"
        for proposal in ("kept", "dropped"):
            proposed = rows[rows.note.str.endswith(f"{proposal} this range")].sort_values("from_hz")
            if len(proposed):
                extra.append(f"its probe {proposal} " + ", ".join(
                    f"{format_hz(r.from_hz)}–{format_hz(r.to_hz)}"
                    + (f" (removing it costs {measured(r)})" if not math.isnan(r.removal_drop) else "")
                    for r in proposed.itertuples()))
    for row in rows[rows.claim == "not_confirmed"].itertuples():
        why = ("more than the margin" if row.ci_low > settings.margin_points
               else f"not shown below the {settings.margin_points:g}-point margin")
        extra.append(f"the probe dropped {format_hz(row.from_hz)}–{format_hz(row.to_hz)}, but removing it costs "
                     f"{row.removal_drop:+.0f} points [{row.ci_low:+.0f}, {row.ci_high:+.0f}], {why}: "
                     "not confirmed")
    if group.count < 2:
        extra.append(f"no word from {SPREAD_NOTE}")
    floor = smallest_upper_bound(units, settings.alpha)
    if floor >= settings.margin_points:
        extra.append(f"with {units} independent clips a removal that changes no decision is bounded only below "
                     f"{floor:.1f} points, above the {settings.margin_points:g}-point margin: more clips, or a wider "
                     "margin, are needed to show 'can do without'")
    if level_invariant:
        extra.append("it loses less than the margin on clips 20 dB quieter (level-invariant): the probe's contrasts "
                     "are read relative to their own mean over the bands")
    source = f"{group.setting}, {group.count} replicate{'s' if group.count != 1 else ''}"
    return f"{classifier} {said}" + (f"; {'; '.join(extra)}" if extra else "") + f" (from {source}; every word " \
        f"checked by removing the range from the originals, margin {settings.margin_points:g} points)."


def no_claim_sentence(classifier: str, group: Replicates, units: int) -> str:
    """The sentence of an answer without any claim, by what it lacks: replicates that agree, or units enough for a
    verdict; else no range was proposed."""
    reasons = []
    if group.count < 2:
        reasons.append(f"a word needs at least 2 replicates that agree, and it has {group.count} (train them with "
                       "--replicates)")
    if units < MIN_INTERVAL_UNITS:
        reasons.append(f"its {units} independent clips in the scored fold are too few for a verdict (at least "
                       f"{MIN_INTERVAL_UNITS})")
    source = f"from {group.setting}, {group.count} replicate{'s' if group.count != 1 else ''}"
    return f"{classifier}: no answer: {'; '.join(reasons) or 'its replicates proposed no range'} ({source})."


ANSWER_SCHEMA = TableSchema(
    Tables.ANSWER, "classifier x claim: the answer's words, each proposed by the answer probe's replicates and measured "
                   "by removing the range from the original clips (answer.csv)",
    (col("classifier", "str", "the classifier"),
     col("claim", "str", "can_do_without: removing every such range together costs less than the margin; needs: "
                         "removing it alone costs more; needs_one_of: neither alone does, both together do; "
                         "not_confirmed: dropped by the probe, but removing it costs more; no_verdict: nothing shown",
         values=("can_do_without", "needs", "needs_one_of", "not_confirmed", "no_verdict")),
     col("from_hz", "float", "the range's lower edge", "Hz"), col("to_hz", "float", "the range's upper edge", "Hz"),
     col("group", "int", "the ranges of one needs_one_of claim share a group (empty otherwise)"),
     col("replicates_agreeing", "int", "replicates that proposed the range"), col("replicates", "int", "replicates"),
     col("contrast_db", "float", "the range's mean contrast against the control over its bands and the replicates",
         "dB"),
     col("removal_drop", "float", "what removing the range (with its claim's other ranges) costs: accuracy, or "
                                  "agreement without labels, in points", "points"),
     col("ci_low", "float", "the drop's one-sided 95 % lower bound (what 'needs' is read against)", "points"),
     col("ci_high", "float", "the drop's one-sided 95 % upper bound (what 'can do without' is read against)", "points"),
     col("confirmed", "bool", "the removal confirms the claim"),
     col("metric", "str", "what a point is of", values=("accuracy", "agreement")),
     col("note", "str", "what the reader must know about this claim")))


@register_analysis("answer", tables=(ANSWER_SCHEMA,), scope="comparison",
                   enabled=lambda config: config.removal is not None,
                   reads=(Tables.BAND_CONTRAST_VS_CONTROL, "summary:bands"), writes=("summary:answer",))
def answer_analysis(context: ComparisonContext) -> None:
    """Per classifier, the claims of its answer (`answer`): its answer probe's replicates propose, removing the ranges
    from the originals confirms."""

    settings = context.config.removal
    rows: list[dict[str, Any]] = []
    said: dict[str, Any] = {}
    for classifier, group in replicate_groups(context.results).items():
        run = group.results[0].run
        model = context.classifiers.get(run.label)
        metric = "accuracy" if scored_against_labels(run) else "agreement"
        remover = Remover(run, model, run.targets, context.device, settings) if model is not None else None
        context.say(f"answer: {classifier}: {group.count} replicate(s) of {group.setting}; removal checks")
        quieter = remover.quieter() if remover is not None else None
        invariant = quieter is not None and decide(quieter[1], quieter[2], settings.margin_points) == "costs less"
        bands = replicate_bands(group, context.config.shifts.threshold_db, invariant)
        claims = answer_rows(group, bands, remover, settings, metric)
        units = len(np.unique(run.units))
        frame = pd.DataFrame(claims)
        said[classifier] = {
            "sentence": answer_sentence(classifier, frame, group, invariant, settings, units) if len(frame) else
            no_claim_sentence(classifier, group, units),
            "setting": group.setting, "kind": group.kind, "replicates": group.count,
            "runs": [r.run.label for r in group.results], "metric": metric, "margin_points": settings.margin_points,
            "smallest_upper_bound_points": smallest_upper_bound(units, settings.alpha), "units": units,
            "level_invariant": bool(invariant), "quieter_drop": list(quieter) if quieter else None,
            "removal_passes": remover.passes + 1 if remover is not None else 0,  # the level check is one more
        }
        rows += claims
    if rows:
        context.tables[Tables.ANSWER] = pd.DataFrame(rows)
    context.summary["answer"] = said
