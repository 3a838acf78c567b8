"""Cross-classifier comparison: one classifier's finetuned AE judged by another classifier (Palacio et al.'s transfer test)."""
from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import torch

from probe.analyses.bands import answer_band_set, fixed_band_sets
from probe.analyses.bandshift import BAND, SHIFT_SUMMARY, ShiftSettings, assign_verdicts, summarise_per_band
from probe.analyses.pooled import pooled_per_clip
from probe.analyses.registry import ComparisonContext, register_analysis
from probe.analyses.runs import RunOutputs, scored_against_labels
from probe.analyses.schema import TableSchema, col
from probe.audio import resample
from probe.models.base import WaveformClassifier
from probe.rundir import Tables

log = logging.getLogger(__name__)


@torch.no_grad()
def classifier_logits(classifier: WaveformClassifier, waveforms: np.ndarray, sample_rate: int, device: torch.device,
                      batch: int = 16) -> np.ndarray:
    """Logits of a frozen classifier over waveforms at `sample_rate` (resampled to the classifier's rate)."""

    out = []
    for start in range(0, len(waveforms), batch):
        x = torch.tensor(np.asarray(waveforms[start : start + batch]), dtype=torch.float32, device=device)
        if sample_rate != classifier.sample_rate:
            x = resample(x, sample_rate, classifier.sample_rate)
        out.append(classifier(x).float().cpu().numpy())
    return np.concatenate(out)


def transfer_table(runs: list[RunOutputs], judges: dict[tuple[str, int], tuple[WaveformClassifier, list[str]]],
                   device: torch.device) -> pd.DataFrame:
    """Accuracy of every distinct classifier (`judges`: (label, fold) -> (classifier, class names)) on the clips of
    every run of its own fold.

    A classifier judges only runs validated on its own fold: in a cross-validated grid each fold's classifier
    trained (or was selected) on the other folds' clips, so judging their runs would score it on what it learned
    from. Rows: the run whose AE made the reconstructions; `classifier_of`: the judging classifier; `own`: whether
    the judge is the classifier that run was finetuned for. Logits on the originals are computed once per judge
    and clip set.
    """
    rows, on_originals = [], {}
    for ae_run, ((judge_label, fold), (classifier, class_names)) in itertools.product(runs, judges.items()):
        if fold != ae_run.fold:
            continue
        if ae_run.class_names != class_names:
            log.warning("transfer: %s and %s have different classes; skipped", ae_run.label, judge_label)
            continue
        row = {"autoencoder_of": ae_run.label, "classifier_of": judge_label, "fold": fold,
               "own": ae_run.judge == judge_label, "clips": len(ae_run.targets)}
        for condition in ("original", "before", "after"):
            key = (judge_label, fold, tuple(ae_run.clip_ids))
            if condition == "original" and key in on_originals:
                logits = on_originals[key]
            else:
                logits = classifier_logits(classifier, ae_run.waveforms(condition), ae_run.sample_rate, device)
                if condition == "original":
                    on_originals[key] = logits
            row[f"accuracy_{condition}"] = float((logits.argmax(1) == ae_run.targets).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def profile_divergence(per_group: pd.DataFrame, key: str, band_set: str | None = None,
                       condition: str = "contrast") -> pd.DataFrame:
    """Per class (or category): the largest RMS difference in dB between two runs' band profiles of `condition`
    (default: each probe's contrast against its control) on `band_set` (default: the answer's). Descriptive: no
    interval, no test."""
    frame = per_group[(per_group.band_set == (band_set or answer_band_set())) & (per_group.condition == condition)]
    rows = []
    for group, members in frame.groupby(key, sort=False):
        profiles = {run: part.sort_values("band_index").mean_shift_db.to_numpy() for run, part in members.groupby("run")}
        if len(profiles) < 2:
            continue
        pairs = [(np.sqrt(np.mean((profiles[a] - profiles[b]) ** 2)), a, b) for a, b in itertools.combinations(profiles, 2)]
        distance, first, second = max(pairs)
        rows.append({key: group, "rms_difference_db": float(distance), "most_different": f"{first} vs {second}",
                     "clips": int(members[members.run.isin((first, second))].groupby("run").clips.max().min())})
    return pd.DataFrame(rows).sort_values("rms_difference_db", ascending=False, ignore_index=True) if rows else pd.DataFrame()


def classifier_contrasts(per_clip: dict[tuple[str, str], pd.DataFrame], settings: ShiftSettings, rng: np.random.Generator,
                         band_sets: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Classifier A minus classifier B, for the same probe setting on the same clips: per band, the paired per-clip
    difference of their finetuned band shifts (dB), with a bootstrap interval over the clips' units and verdicts
    (each pair and band set one family).

    `per_clip`: (classifier, setting) -> that run's `band_shift_per_clip` table. Positive: A's probe keeps more of
    the band than B's.
    """
    rows = []
    for (a, setting_a), (b, setting_b) in itertools.combinations(per_clip, 2):
        if setting_a != setting_b or a == b:
            continue
        for band_set in band_sets or fixed_band_sets():
            pivots = []
            for key in ((a, setting_a), (b, setting_b)):
                table = per_clip[key]
                table = table[(table.band_set == band_set) & (table.condition == "after")]
                pivots.append(table.pivot(index="clip_id", columns="band_index", values="shift_db"))
            first, second = pivots
            if not len(first) or set(first.index) != set(second.index) or list(first.columns) != list(second.columns):
                continue  # other clips or other bands: nothing to pair
            difference = (first - second.loc[first.index]).to_numpy()
            table = per_clip[(a, setting_a)]
            units = None
            if "unit" in table:
                units = table.drop_duplicates("clip_id").set_index("clip_id").unit.loc[first.index].to_numpy()
            bands = table[(table.band_set == band_set)].drop_duplicates("band_index").set_index("band_index").loc[first.columns]
            rows += assign_verdicts([pd.DataFrame({
                "setting": setting_a, "classifier_a": a, "classifier_b": b, "band_set": band_set,
                "band_index": first.columns, "band": bands.band.to_numpy(), "centre_hz": bands.centre_hz.to_numpy(),
                **summarise_per_band(difference, settings, rng, units)})], settings)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


CLASSIFIER_CONTRASTS = TableSchema(
    Tables.CLASSIFIER_CONTRASTS, "probe setting x pair of classifiers x band: classifier A's finetuned band shift minus "
                                 "B's, paired per clip on the same clips, with its test (positive: A's probe keeps more)",
    (col("setting", "str", "the probe setting both ran"), col("classifier_a", "str", "classifier A"),
     col("classifier_b", "str", "classifier B"), *BAND, col("centre_hz", "float", "the band's centre", "Hz"),
     *(c for c in SHIFT_SUMMARY if c.name != "near_noise_floor")))


def _divergence(key: str) -> TableSchema:
    return TableSchema(
        f"{key}_divergence", f"{key}: the largest RMS difference between two finetuned probes' contrast profiles "
                             "(octave bands); descriptive, with no interval and no test",
        (col(key, "str", f"the {key}"), col("rms_difference_db", "float", "RMS over the bands of the difference", "dB"),
         col("most_different", "str", "the two runs, 'A vs B'"),
         col("clips", "int", f"the {key}'s clips in the smaller of the two runs")))


TRANSFER = TableSchema(
    Tables.TRANSFER, "run x judging classifier: Palacio et al.'s transfer test, every classifier on every run's "
                     "reconstructions of its own scored fold",
    (col("autoencoder_of", "str", "the run whose probe made the reconstructions"),
     col("classifier_of", "str", "the judging classifier"), col("fold", "int", "the scored fold"),
     col("own", "bool", "the judge is the classifier the run was finetuned for"), col("clips", "int", "clips scored"),
     *(col(f"accuracy_{c}", "float", f"the judge's top-1 accuracy on the {c} clips", "fraction")
       for c in ("original", "before", "after"))))


@register_analysis(Tables.CLASSIFIER_CONTRASTS, tables=(CLASSIFIER_CONTRASTS,), scope="comparison",
                   reads=(Tables.BAND_SHIFT_PER_CLIP,))
def classifier_contrast_analysis(context: ComparisonContext) -> None:
    """Classifier against classifier for the same probe setting on the same clips."""

    per_clip = pooled_per_clip(context.results, Tables.BAND_SHIFT_PER_CLIP)  # every fold's clips, not only one fold's
    contrasts = classifier_contrasts(per_clip, context.config.shifts, np.random.default_rng(context.config.seed))
    if len(contrasts):
        context.tables[Tables.CLASSIFIER_CONTRASTS] = contrasts


@register_analysis("divergence", tables=(_divergence("class"), _divergence("category")), scope="comparison",
                   reads=(Tables.BAND_SHIFT_PER_CLASS, Tables.BAND_SHIFT_PER_CATEGORY, "summary:bands"))
def divergence_analysis(context: ComparisonContext) -> None:
    """The classes and categories whose band profiles differ most between two finetuned probes (their contrasts against
    their controls; controls and random starts left out). Descriptive: the largest of many differences over classes of
    a few clips each, with no interval and no test."""
    probes = [r for r in context.results if not r.summary.get("control")
              and r.summary.get("bands", {}).get("headline") == "contrast"
              and not r.summary.get("bands", {}).get("random_start")]
    if len(probes) < 2:
        return
    for key in ("class", "category"):
        frames = [r.tables[f"band_shift_per_{key}"].assign(run=r.run.label) for r in probes]
        divergence = profile_divergence(pd.concat(frames, ignore_index=True), key)
        context.tables[f"{key}_divergence"] = divergence
        context.summary[f"most_divergent_{key}"] = divergence.head(5).to_dict("records")


@register_analysis("transfer", tables=(TRANSFER,), scope="comparison", enabled=lambda config: config.transfer)
def transfer_analysis(context: ComparisonContext) -> None:
    """Every distinct classifier on every run's reconstructions (Palacio et al.'s transfer test), scored against the
    labels: runs trained without them (their targets are their own classifier's decisions) are left out."""
    runs = [r.run for r in context.results if scored_against_labels(r.run)]
    judges = {(run.judge, run.fold): (context.classifiers[run.label], run.class_names) for run in runs
              if context.classifiers.get(run.label) is not None}
    if not judges:
        return
    context.say("transfer: every classifier on every run's reconstructions")
    table = transfer_table(runs, judges, context.device)
    context.tables[Tables.TRANSFER] = table
    context.summary["transfer"] = table.to_dict("records")
