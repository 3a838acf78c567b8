"""Palacio et al.'s measure: normalised mutual information between originals and reconstructions.

Computed on log-mel maps. Each map is floored 80 dB below its peak and quantised into equal-population
bins of its own values, so the measure ignores a change of level (a gain, i.e. a dB offset) and counts
only how much of the original's time-frequency pattern the reconstruction still carries: 1 for an identical pattern,
near 0 for an unrelated one. Intra pairs a clip with its own reconstruction; inter pairs it with
another clip's reconstruction, the chance level that intra must be read against.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.stats import bootstrap_mean_ci
from probe.rundir import Tables

NMI_BINS = 32
DYNAMIC_RANGE_DB = 80.0
"""Values more than this below a map's peak are one floor: near-silence carries no pattern, only numerical noise."""


def quantise(values: np.ndarray, bins: int = NMI_BINS, dynamic_range_db: float = DYNAMIC_RANGE_DB) -> np.ndarray:
    """Equal-population bin indices 0..bins-1 of a flat dB array, floored `dynamic_range_db` below its peak (ties share a bin)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = np.maximum(flat, flat.max() - dynamic_range_db)
    edges = np.unique(np.quantile(flat, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, flat, side="right")


def normalised_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = NMI_BINS) -> float:
    """NMI = 2 I(A; B) / (H(A) + H(B)) of two equally shaped maps, after quantising each; 0 when either is constant."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps differ in shape: {np.shape(a)} and {np.shape(b)}")
    x, y = quantise(a, bins), quantise(b, bins)
    joint = np.bincount(x * bins + y, minlength=bins * bins).reshape(bins, bins).astype(np.float64)
    joint /= joint.sum()
    px, py = joint.sum(1), joint.sum(0)
    entropy = lambda p: float(-(p[p > 0] * np.log(p[p > 0])).sum())  # noqa: E731
    hx, hy, hxy = entropy(px), entropy(py), entropy(joint.ravel())
    if hx + hy == 0:
        return 0.0
    return max(0.0, 2 * (hx + hy - hxy) / (hx + hy))


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (each clip paired with another); identity for n < 2."""
    if n < 2:
        return np.arange(n)
    while True:  # a random permutation is a derangement with probability about 1/e
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def nmi_per_clip(maps: dict[str, np.ndarray], clip_ids: list[str], class_names: list[str], targets: np.ndarray,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Per clip and reconstruction condition: NMI with its own original (intra) and with another clip's (inter)."""
    others = derangement(len(clip_ids), rng)
    original = maps["original"]
    rows = []
    for condition, reconstructed in maps.items():
        if condition == "original":
            continue
        for i, clip_id in enumerate(clip_ids):
            rows.append({"clip_id": clip_id, "class": class_names[int(targets[i])], "condition": condition,
                         "nmi_intra": normalised_mutual_information(original[i], reconstructed[i]),
                         "nmi_inter": normalised_mutual_information(original[i], reconstructed[others[i]])
                         if len(clip_ids) > 1 else float("nan")})  # one clip has no other to pair with
    return pd.DataFrame(rows)


def nmi_summary(per_clip: pd.DataFrame, class_categories: list[int], class_names: list[str], category_names: list[str],
                level: float, n_boot: int, rng: np.random.Generator) -> pd.DataFrame:
    """Mean intra and inter NMI with bootstrap CIs: overall, per category and per class, for each condition."""
    category_of = {name: category_names[class_categories[i]] for i, name in enumerate(class_names)}
    frame = per_clip.assign(category=per_clip["class"].map(category_of))
    rows = []
    for condition, by_condition in frame.groupby("condition", sort=False):
        groups = [("overall", "all", by_condition)]
        groups += [("category", name, part) for name, part in by_condition.groupby("category", sort=False)]
        groups += [("class", name, part) for name, part in by_condition.groupby("class", sort=False)]
        for scope, name, part in groups:
            values = part[["nmi_intra", "nmi_inter"]].to_numpy()
            mean, low, high = bootstrap_mean_ci(values, level, n_boot, rng)
            rows.append({"condition": condition, "scope": scope, "group": name, "clips": len(part),
                         "nmi_intra": mean[0], "intra_ci_low": low[0], "intra_ci_high": high[0],
                         "nmi_inter": mean[1], "inter_ci_low": low[1], "inter_ci_high": high[1]})
    return pd.DataFrame(rows)


@register_analysis("information", tables=(Tables.NMI_PER_CLIP, Tables.NMI_SUMMARY))
def information_analysis(context: RunContext) -> None:
    """Palacio's NMI of each clip's log-mel map with its reconstruction's, against the chance level."""
    run, shifts = context.run, context.config.shifts
    context.say(f"{run.label}: normalised mutual information (Palacio et al.) on the mel maps")
    maps = context.cache.get("mel_maps")
    if maps is None:
        from probe.analyses.spectral import mel_maps

        maps = {c: mel_maps(run.waveforms(c), run.sample_rate) for c in run.conditions}
    per_clip = nmi_per_clip(maps, run.clip_ids, run.class_names, run.targets, context.rng)
    summary = nmi_summary(per_clip, run.class_categories, run.class_names, run.category_names, shifts.level, shifts.n_boot,
                          context.rng)
    context.tables.update(nmi_per_clip=per_clip, nmi_summary=summary)
    overall = summary[summary.scope == "overall"].drop(columns=["scope", "group"]).set_index("condition")
    context.summary["information"] = {
        "measure": "normalised mutual information of quantised log-mel maps (Palacio et al.)",
        **{condition: {k: float(v) for k, v in row.items()} for condition, row in overall.iterrows()}}
