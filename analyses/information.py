"""Palacio et al.'s measure: normalised mutual information between originals and reconstructions.

Palacio, Folz, Hees, Raue, Borth and Dengel, "What do deep networks like to see?", CVPR 2018. Computed on
log-mel maps, per clip and reconstruction condition, with a derangement pairing each clip i with another clip j:

- `nmi_intra`: NMI(original_i, reconstruction_i), how much of the original's time-frequency pattern the
  reconstruction still carries: 1 for an identical pattern, near 0 for an unrelated one. Each map is floored
  80 dB below its peak and quantised into equal-population bins of its own values (its ranks), so the measure
  is blind to every monotone change of level: a gain, and a compression or expansion of the dB scale, too.
- `nmi_chance`: NMI(original_i, reconstruction_j), the chance level that intra must be read against.
- `nmi_inter`: NMI(reconstruction_i, reconstruction_j), reconstructions of two different inputs. Palacio et al.
  use it to find AEs that impose one pattern whatever the input (checkerboard artefacts, say): high inter.
- `nmi_inter_originals`: NMI(original_i, original_j), the same pair before the AE, the reference nmi_inter is
  read against: an identity AE scores nmi_inter == nmi_inter_originals exactly.
- `nmi_intra_shared`: intra with one binning shared by the pair (equal-width bins over the pair's common range
  in dB re each map's peak), so that a compression or expansion of the dB scale lowers it and a gain does not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.spectral import run_mel_maps
from probe.analyses.schema import TableSchema, col, interval
from probe.analyses.stats import bootstrap_mean_ci
from probe.rundir import Tables

NMI_BINS = 32
DYNAMIC_RANGE_DB = 80.0
"""Values more than this below a map's peak are one floor: near-silence carries no pattern, only numerical noise."""
NMI_MEASURES = ("nmi_intra", "nmi_chance", "nmi_inter", "nmi_inter_originals", "nmi_intra_shared")
"""The per-clip columns, in the order nmi_summary reports them."""
NMI_NOTES = ("nmi_intra and nmi_chance quantise each map by its own ranks, so they are invariant to any monotone "
             "change of level (a gain, a compression of the dB scale); nmi_intra_shared bins the pair on one shared "
             "dB scale (re each map's peak), so it registers a compression but not a constant gain; "
             "nmi_inter compares the reconstructions of two different inputs (high: the AE imposes one pattern "
             "whatever the input) and is read against nmi_inter_originals, the same pair of inputs before the AE.")


def quantise(values: np.ndarray, bins: int = NMI_BINS, dynamic_range_db: float = DYNAMIC_RANGE_DB) -> np.ndarray:
    """Equal-population bin indices 0..bins-1 of a flat dB array, floored `dynamic_range_db` below its peak (ties share a bin)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = np.maximum(flat, flat.max() - dynamic_range_db)
    edges = np.unique(np.quantile(flat, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, flat, side="right")


def quantise_shared(a: np.ndarray, b: np.ndarray, bins: int = NMI_BINS,
                    dynamic_range_db: float = DYNAMIC_RANGE_DB) -> tuple[np.ndarray, np.ndarray]:
    """Bin indices 0..bins-1 of two flat dB arrays on one scale: each in dB re its own peak, then equal-width bins
    over the pair's common range, floored `dynamic_range_db` below 0 dB re peak.

    Referencing each map to its own peak is what keeps a constant gain out: with one absolute scale, a gain that is
    not a whole number of bins splits every bin in two and costs up to log 2 of mutual information, as much as a
    2:1 compression of the dB scale, so the two could not be told apart."""
    x, y = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    x, y = x - x.max(), y - y.max()
    floor = max(min(x.min(), y.min()), -dynamic_range_db)
    edges = np.linspace(floor, 0.0, bins + 1)[1:-1]
    return np.searchsorted(edges, x, side="right"), np.searchsorted(edges, y, side="right")


def nmi_of_bins(x: np.ndarray, y: np.ndarray, bins: int = NMI_BINS) -> float:
    """NMI = 2 I(X; Y) / (H(X) + H(Y)) of two equally long arrays of bin indices 0..bins-1; 0 when both are constant."""
    joint = np.bincount(x * bins + y, minlength=bins * bins).reshape(bins, bins).astype(np.float64)
    joint /= joint.sum()
    px, py = joint.sum(1), joint.sum(0)
    entropy = lambda p: float(-(p[p > 0] * np.log(p[p > 0])).sum())  # noqa: E731
    hx, hy, hxy = entropy(px), entropy(py), entropy(joint.ravel())
    if hx + hy == 0:
        return 0.0
    return max(0.0, 2 * (hx + hy - hxy) / (hx + hy))


def normalised_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = NMI_BINS) -> float:
    """NMI = 2 I(A; B) / (H(A) + H(B)) of two equally shaped maps, after quantising each by its own ranks; 0 when either is constant.

    Blind to any monotone change of either map's values (a gain, a compression of the dB scale)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps differ in shape: {np.shape(a)} and {np.shape(b)}")
    return nmi_of_bins(quantise(a, bins), quantise(b, bins), bins)


def normalised_mutual_information_shared(a: np.ndarray, b: np.ndarray, bins: int = NMI_BINS) -> float:
    """NMI of two equally shaped dB maps quantised on one shared scale (`quantise_shared`).

    A compression or expansion of the dB scale merges or empties bins, so it lowers this NMI (power**0.5, i.e. the
    dB map halved, reads about 0.85). A constant gain does not change it: each map is taken re its own peak, and in
    any case a mutual information cannot see a relabelling of bins, only bins merged or split."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps differ in shape: {np.shape(a)} and {np.shape(b)}")
    return nmi_of_bins(*quantise_shared(a, b, bins), bins)


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (each clip paired with another); identity for n < 2."""
    if n < 2:
        return np.arange(n)
    while True:  # a random permutation is a derangement with probability about 1/e
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def nmi_per_clip(maps: dict[str, np.ndarray], clip_ids: list[str], class_names: list[str], targets: np.ndarray,
                 rng: np.random.Generator, units: np.ndarray | None = None) -> pd.DataFrame:
    """Per clip and reconstruction condition: the NMI_MEASURES (see the module docstring), with clip i paired with a
    derangement partner j for chance and inter; those three are NaN for a single clip (no other to pair with).
    `unit`: each clip's source recording (`units`; default: the clip itself), which the summary's intervals resample."""
    units = np.asarray(units if units is not None else clip_ids)
    others = derangement(len(clip_ids), rng)
    paired = len(clip_ids) > 1
    nan = float("nan")
    original = maps["original"]
    original_bins = [quantise(m) for m in original]
    inter_originals = [nmi_of_bins(original_bins[i], original_bins[others[i]]) if paired else nan
                       for i in range(len(clip_ids))]
    rows = []
    for condition, reconstructed in maps.items():
        if condition == "original":
            continue
        reconstructed_bins = [quantise(m) for m in reconstructed]
        for i, clip_id in enumerate(clip_ids):
            j = others[i]
            rows.append({"clip_id": clip_id, "unit": units[i], "class": class_names[int(targets[i])], "condition": condition,
                         "nmi_intra": nmi_of_bins(original_bins[i], reconstructed_bins[i]),
                         "nmi_chance": nmi_of_bins(original_bins[i], reconstructed_bins[j]) if paired else nan,
                         "nmi_inter": nmi_of_bins(reconstructed_bins[i], reconstructed_bins[j]) if paired else nan,
                         "nmi_inter_originals": inter_originals[i],
                         "nmi_intra_shared": normalised_mutual_information_shared(original[i], reconstructed[i])})
    return pd.DataFrame(rows)


def nmi_summary(per_clip: pd.DataFrame, class_categories: list[int], class_names: list[str], category_names: list[str],
                level: float, n_boot: int, rng: np.random.Generator) -> pd.DataFrame:
    """Mean of each of the NMI_MEASURES with its bootstrap interval (`ci_low`, `ci_high`), one row per measure:
    overall, per category and per class, for each condition, resampling whole source recordings (`unit`)."""
    category_of = {name: category_names[class_categories[i]] for i, name in enumerate(class_names)}
    frame = per_clip.assign(category=per_clip["class"].map(category_of))
    rows = []
    for condition, by_condition in frame.groupby("condition", sort=False):
        groups = [("overall", "all", by_condition)]
        groups += [("category", name, part) for name, part in by_condition.groupby("category", sort=False)]
        groups += [("class", name, part) for name, part in by_condition.groupby("class", sort=False)]
        for scope, name, part in groups:
            units = part["unit"].to_numpy()
            mean, low, high = bootstrap_mean_ci(part[list(NMI_MEASURES)].to_numpy(), level, n_boot, rng, units)
            for k, measure in enumerate(NMI_MEASURES):
                rows.append({"condition": condition, "scope": scope, "group": name, "clips": len(part),
                             "units": int(len(np.unique(units))), "measure": measure, "mean": mean[k],
                             "ci_low": low[k], "ci_high": high[k]})
    return pd.DataFrame(rows)


def measures_of(summary: pd.DataFrame) -> dict[str, float]:
    """One scope, group and condition's rows of `nmi_summary` as `<measure>`, `<measure>_ci_low`, `<measure>_ci_high`
    (what the run summary and the report read)."""
    numbers: dict[str, float] = {}
    for row in summary.itertuples():
        numbers.update({row.measure: float(row.mean), f"{row.measure}_ci_low": float(row.ci_low),
                        f"{row.measure}_ci_high": float(row.ci_high)})
    if len(summary):
        numbers.update(clips=float(summary.clips.iloc[0]), units=float(summary.units.iloc[0]))
    return numbers


NMI_DESCRIPTIONS = {
    "nmi_intra": "the original's map against its own reconstruction's (rank-binned): the pattern kept",
    "nmi_chance": "the original's map against another clip's reconstruction: the chance level of nmi_intra",
    "nmi_inter": "the reconstructions of two different clips: high when the AE imposes one pattern whatever the input",
    "nmi_inter_originals": "the same two clips' originals: what nmi_inter is read against",
    "nmi_intra_shared": "nmi_intra on one dB scale shared by the pair: lowered by a compression of the dB scale",
}
NMI_TABLES = (
    TableSchema(Tables.NMI_PER_CLIP, "clip x reconstruction: Palacio et al.'s normalised mutual information of log-mel "
                                     "maps (0 to 1), each clip paired with another by a random derangement",
                (col("clip_id", "str", "the clip"), col("unit", "str", "its independent unit (source recording)"),
                 col("class", "str", "its class"),
                 col("condition", "str", "which reconstruction", values=("before", "after")),
                 *(col(name, "float", text) for name, text in NMI_DESCRIPTIONS.items()))),
    TableSchema(Tables.NMI_SUMMARY, "condition x scope x group x measure: the mean NMI over the clips, with its "
                                    "interval over the source recordings",
                (col("condition", "str", "which reconstruction", values=("before", "after")),
                 col("scope", "str", "what the group is", values=("overall", "category", "class")),
                 col("group", "str", "the category or class (all, overall)"), col("clips", "int", "clips"),
                 col("units", "int", "independent units (source recordings)"),
                 col("measure", "str", "which NMI (nmi_per_clip's columns)", values=NMI_MEASURES),
                 col("mean", "float", "mean over the clips"), *interval(of="the mean"))),
)


@register_analysis("information", tables=NMI_TABLES)
def information_analysis(context: RunContext) -> None:
    """Palacio's NMI of each clip's log-mel map with its reconstruction's, against the chance level; and between
    reconstructions of different inputs, against the same inputs' originals."""
    run, shifts = context.run, context.config.shifts
    context.say(f"{run.label}: normalised mutual information (Palacio et al.) on the mel maps")
    maps = run_mel_maps(context)
    per_clip = nmi_per_clip(maps, run.clip_ids, run.class_names, run.targets, context.rng, run.units)
    summary = nmi_summary(per_clip, run.class_categories, run.class_names, run.category_names, shifts.level, shifts.n_boot,
                          context.rng)
    context.tables.update(nmi_per_clip=per_clip, nmi_summary=summary)
    overall = summary[summary.scope == "overall"]
    context.summary["information"] = {
        "measure": "normalised mutual information of quantised log-mel maps (Palacio et al.)",
        "notes": NMI_NOTES,
        **{condition: measures_of(rows) for condition, rows in overall.groupby("condition", sort=False)}}
