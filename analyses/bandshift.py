"""Band-energy shifts (reconstruction minus original, dB) per clip, and the contrast that carries the conclusions.

The contrast is what finetuning changed beyond its control, clip by clip: the finetuned shift minus the untuned
probe's (`before`), or, for an AE that started from random weights (whose untuned output is a random network's,
no reference at all), minus the identity on the same resampling chain. Absolute shifts stay in the tables,
labelled as such: they include the AE's own reconstruction error.

Verdicts test their words against the threshold T (`ShiftSettings.threshold_db`): "suppressed" when the mean is
shown to lie below -T (one-sided t-test on the clips' units), "boosted" above +T, "preserved" within ±T (two
one-sided tests), else "inconclusive". The family is every claim tested in one band set of one run (3 claims x
bands x rows: before, after and the contrast), corrected together (`ShiftSettings.correction`); Holm over all
three claims is conservative, as at most one of a band's three nulls can be false. A verdict also needs the
printed 95 % interval to agree (below -T, above +T, within ±T), so that no verdict sits beside an interval that
contradicts it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from probe.analyses import bands
from probe.analyses.bands import BandSet, answer_band_set, band_energies_db
from probe.analyses.config import ShiftSettings  # noqa: F401 (re-exported)
from probe.analyses.registry import ComparisonContext, RunContext, register_analysis
from probe.analyses.runs import chain_identity, objective_record, probe_curves, starts_random
from probe.analyses.stats import (
    CORRECTIONS,
    MIN_INTERVAL_UNITS,
    bootstrap_mean_ci,
    claim_p_values,
    cluster_moments,
    mean_and_se,
    t_test_p,
)
from probe.analyses.schema import TableSchema, col, interval
from probe.probes import probe_of_run
from probe.rundir import AFTER, BEFORE, Tables
from probe.units import format_hz

CONTRAST = "contrast"
"""The condition name of the contrast rows (finetuned minus its reference, per clip)."""
IDENTITY = "identity"
"""The reference of an AE that started from random weights: the original through the probe's resampling chain alone."""
REFERENCE_LABELS = {BEFORE: "after − before (the untuned probe)", IDENTITY: "after − identity on the same chain"}
CLAIMS = {"suppressed": "below", "boosted": "above", "preserved": "within"}
"""Each verdict word and the claim its test must show (`stats.claim_p_values`)."""
VERDICTS = (*CLAIMS, "inconclusive", "too few clips", "too narrow", "noise floor", "not needed")
GAIN_FLOOR_MARGIN_DB = 3.0
"""A spectral-gain band within this of the gain's floor has been pushed as low as the probe allows."""


def clip_shifts(spectra: dict[str, np.ndarray], band_set: BandSet,
                clip_floor_db: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Original band energies (N, bands) and, per other entry of `spectra`, the shift in dB; NaN where the
    clip's band lies more than `clip_floor_db` below its loudest band."""
    original = band_energies_db(spectra["original"], band_set)
    shifts = {c: band_energies_db(s, band_set) - original for c, s in spectra.items() if c != "original"}
    if clip_floor_db is not None:
        empty = original < original.max(1, keepdims=True) - clip_floor_db
        shifts = {c: np.where(empty, np.nan, shift) for c, shift in shifts.items()}
    return original, shifts


def summarise_per_band(values: np.ndarray, settings: ShiftSettings, rng: np.random.Generator,
                       groups: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per band of per-clip dB values (clips, bands; NaN: left out): the clips and independent units counted, the
    mean with its studentised bootstrap interval (none below `stats.MIN_INTERVAL_UNITS` units), the effective number
    of units (`stats.cluster_moments`), the two-sided p of a mean of zero and its correction over the bands, and the
    p of each verdict's claim (uncorrected)."""
    mean, low, high = bootstrap_mean_ci(values, settings.level, settings.n_boot, rng, groups)
    moments = cluster_moments(values, groups)
    se, units = moments.se, moments.units
    p_values = t_test_p(values, groups)
    claims = claim_p_values(values, settings.threshold_db, groups)
    return {"clips": np.isfinite(values).sum(0), "units": units, "effective_units": moments.effective_units,
            "mean_shift_db": mean, "ci_low": low,
            "ci_high": high, "se_db": se, "p_value": p_values, "p_adjusted": CORRECTIONS[settings.correction](p_values),
            **{f"p_{claim}": p for claim, p in claims.items()}}


def assign_verdicts(frames: list[pd.DataFrame], settings: ShiftSettings) -> list[pd.DataFrame]:
    """Verdicts for the rows of `frames`, one family: every claim of every row that can have one is corrected
    together. Rows near the noise floor, too narrow, or with fewer than `MIN_INTERVAL_UNITS` effective units (clusters
    of unequal size count for less, `stats.cluster_moments`) get no test."""
    frames = [frame.copy() for frame in frames]
    for frame in frames:
        frame["verdict"] = np.where(frame.get("near_noise_floor", False), "noise floor",
                                    np.where(frame.get("effective_units", frame.units) < MIN_INTERVAL_UNITS,
                                             "too few clips", ""))
        if "fft_bins" in frame:
            frame.loc[(frame.verdict == "") & (frame.fft_bins < bands.MIN_FFT_BINS), "verdict"] = "too narrow"
    tested = [(frame, frame.index[frame.verdict == ""]) for frame in frames]
    p_values = np.concatenate([frame.loc[rows, f"p_{claim}"].to_numpy() for frame, rows in tested for claim in CLAIMS.values()]
                              or [np.zeros(0)])
    adjusted = CORRECTIONS[settings.correction](p_values) if len(p_values) else p_values
    offset = 0
    for frame, rows in tested:
        frame["family_tests"] = len(p_values)
        for claim in CLAIMS.values():
            frame[f"p_{claim}_adjusted"] = np.nan
            frame.loc[rows, f"p_{claim}_adjusted"] = adjusted[offset : offset + len(rows)]
            offset += len(rows)
        for index in rows:
            shown = [word for word, claim in CLAIMS.items() if frame.at[index, f"p_{claim}_adjusted"] < settings.alpha
                     and _interval_agrees(word, frame.at[index, "ci_low"], frame.at[index, "ci_high"], settings)]
            frame.at[index, "verdict"] = shown[0] if shown else "inconclusive"
    return frames


def _interval_agrees(word: str, low: float, high: float, settings: ShiftSettings) -> bool:
    """Whether the printed (studentised, uncorrected) interval says what the verdict says: a verdict is never printed
    beside an interval that crosses its threshold. The t-test can be too liberal on skewed data at a few units;
    the bootstrap-t interval is not, and its tails are too coarse to correct over a family on their own."""
    threshold = settings.threshold_db
    if word == "suppressed":
        return bool(high < -threshold)
    if word == "boosted":
        return bool(low > threshold)
    return bool(-threshold < low and high < threshold)


def _group_rows(values: np.ndarray, groups: np.ndarray, names: list[str], key: str, condition: str, band_set: BandSet,
                units: np.ndarray, settings: ShiftSettings, rng: np.random.Generator) -> list[pd.DataFrame]:
    rows = []
    for index, name in enumerate(names):
        members = groups == index
        if not members.any():
            continue
        mean, low, high = bootstrap_mean_ci(values[members], settings.level, settings.n_boot, rng, units[members])
        rows.append(pd.DataFrame({"condition": condition, key: name, **band_set.columns(),
                                  "clips": np.isfinite(values[members]).sum(0),
                                  "units": mean_and_se(values[members], units[members])[2],
                                  "mean_shift_db": mean, "ci_low": low, "ci_high": high}))
    return rows


def band_shift_tables(spectra: dict[str, np.ndarray], band_sets: list[BandSet], clip_ids: list[str], targets: np.ndarray,
                      class_names: list[str], class_categories: list[int], category_names: list[str],
                      settings: ShiftSettings, rng: np.random.Generator, groups: np.ndarray | None = None,
                      reference: str = BEFORE) -> dict[str, pd.DataFrame]:
    """`band_shift_per_clip`, `band_shift_overall` (absolute shifts, with verdicts), `band_shift_per_class`,
    `..._per_category` (conditions and the contrast), and `band_contrast_vs_control` (the contrast's verdicts).

    `spectra`: original and each reconstruction condition, plus `identity` when that is the `reference`;
    `groups` (N,): each clip's independent unit (its source recording); None: each clip its own."""
    units = np.asarray(groups if groups is not None else clip_ids)
    categories = np.asarray(class_categories)[targets]
    conditions = [c for c in spectra if c not in ("original", IDENTITY)]
    per_clip, overall, per_class, per_category, contrasts = [], [], [], [], []
    for band_set in band_sets:
        original, shifts = clip_shifts(spectra, band_set, settings.clip_floor_db)
        level = original.mean(0)
        floor = level < level.max() - settings.noise_floor_db
        rows = dict(shifts)
        if AFTER in shifts and reference in shifts:
            rows[CONTRAST] = shifts[AFTER] - shifts[reference]
        frames = []
        for condition in conditions + ([CONTRAST] if CONTRAST in rows else []):
            values = rows[condition]
            summary = summarise_per_band(values, settings, rng, units)
            frame = pd.DataFrame({"condition": condition, **band_set.columns(), **summary,
                                  "original_level_db": level, "near_noise_floor": floor | (summary["clips"] == 0)})
            if condition == CONTRAST:
                frame.insert(0, "contrast", REFERENCE_LABELS.get(reference, f"after − {reference}"))
                frame.insert(1, "reference", reference)
            frames.append(frame)
            per_class += _group_rows(values, targets, class_names, "class", condition, band_set, units, settings, rng)
            per_category += _group_rows(values, categories, category_names, "category", condition, band_set, units,
                                        settings, rng)
        judged = assign_verdicts(frames, settings)
        overall += [f for f in judged if f.condition.iloc[0] != CONTRAST]
        contrasts += [f for f in judged if f.condition.iloc[0] == CONTRAST]
        n, count = original.shape
        for condition in conditions:
            per_clip.append(pd.DataFrame({
                "clip_id": np.repeat(clip_ids, count), "unit": np.repeat(units, count),
                "class": np.repeat(np.asarray(class_names)[targets], count),
                "category": np.repeat(np.asarray(category_names)[categories], count), "condition": condition,
                "band_set": band_set.name, "band_index": np.tile(np.arange(count), n),
                "band": np.tile(band_set.labels, n), "centre_hz": np.tile(band_set.centre_hz, n),
                "original_db": original.ravel(), "shift_db": shifts[condition].ravel(),
                "contrast_db": rows[CONTRAST].ravel() if condition == AFTER and CONTRAST in rows else np.nan,
            }))
    concat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    return {Tables.BAND_SHIFT_PER_CLIP: concat(per_clip), Tables.BAND_SHIFT_OVERALL: concat(overall),
            Tables.BAND_SHIFT_PER_CLASS: concat(per_class), Tables.BAND_SHIFT_PER_CATEGORY: concat(per_category),
            Tables.BAND_CONTRAST_VS_CONTROL: concat(contrasts)}


def mark_not_needed(overall: pd.DataFrame, frequencies_hz: np.ndarray, gain_db: np.ndarray, floor_db: float,
                    margin_db: float = GAIN_FLOOR_MARGIN_DB) -> pd.DataFrame:
    """A probe whose curve has a floor (the spectral gain's): bands where the trained curve sits at it are marked
    `at_gain_floor`, and a "suppressed" verdict there reads "not needed".

    The floor is where the probe's bound stopped it, not a measured level, so its dB value is no
    finding of its own: what it says is that the classifier did not need the band.
    """
    overall = overall.copy()
    overall["at_gain_floor"] = False
    after = overall.condition.isin([AFTER, CONTRAST])
    for index in overall.index[after]:
        row = overall.loc[index]
        inside = (frequencies_hz >= row.low_hz) & (frequencies_hz < row.high_hz)
        gain = gain_db[inside].mean() if inside.any() else np.interp(row.centre_hz, frequencies_hz, gain_db)
        if gain <= floor_db + margin_db:
            overall.loc[index, "at_gain_floor"] = True
            if overall.loc[index, "verdict"] == "suppressed":  # a tested verdict; "too few clips" and the like stay
                overall.loc[index, "verdict"] = "not needed"
    return overall


def describe_bands(overall: pd.DataFrame, condition: str, band_set: str | None = None) -> dict[str, object]:
    """Contiguous runs of bands per verdict on `band_set` (default: the answer's), as Hz ranges, with a plain
    sentence."""
    band_set = band_set or answer_band_set()
    rows = overall[(overall.condition == condition) & (overall.band_set == band_set)].sort_values("band_index")
    ranges: dict[str, list[dict[str, object]]] = {v: [] for v in VERDICTS}
    current: list[pd.Series] = []

    def close() -> None:
        if current:
            ranges[current[0].verdict].append({
                "from_hz": float(current[0].low_hz), "to_hz": float(current[-1].high_hz),
                "bands": [r.band for r in current], "mean_shift_db": float(np.mean([r.mean_shift_db for r in current])),
            })

    for _, row in rows.iterrows():
        if current and row.verdict != current[-1].verdict:
            close()
            current = []
        current.append(row)
    close()

    parts = []
    for name, verb in (("suppressed", "suppresses"), ("boosted", "boosts"), ("preserved", "preserves"),
                       ("not needed", "does not need (gain at its floor)")):
        if ranges[name]:
            spans = ", ".join(f"{format_hz(r['from_hz'])}–{format_hz(r['to_hz'])} ({r['mean_shift_db']:+.1f} dB)"
                              for r in ranges[name])
            parts.append(f"{verb} {spans}")
    untested = ranges["too few clips"]
    if parts:
        sentence = "; ".join(parts)
    elif untested and not ranges["inconclusive"]:
        sentence = f"has too few independent clips for a verdict (at least {MIN_INTERVAL_UNITS} are needed)"
    else:
        sentence = "changes no band clearly"
    return {"ranges": ranges, "sentence": sentence}


def curve_table(curves: dict[str, np.ndarray], declared, class_names: list[str]) -> pd.DataFrame:
    """The trained probe's curves in long form: one row per curve, class ("all" for a curve shared by every class)
    and frequency."""
    rows = []
    for curve in declared:
        if curve.name not in curves:
            continue
        frequencies, values = curves[f"{curve.name}_frequencies_hz"], np.atleast_2d(curves[curve.name])
        for index, row in enumerate(values):
            rows.append(pd.DataFrame({"curve": curve.name, "label": curve.label,
                                      "class": class_names[index] if curve.per_class else "all",
                                      "frequency_hz": frequencies.astype(np.float64), "value": row.astype(np.float64)}))
    return pd.concat(rows, ignore_index=True)


CONDITIONS = ("before", "after", CONTRAST)
BAND = (col("band_set", "str", "the band set (`--band-sets`): octave, third_octave, mel, or a plugin's"),
        col("band_index", "int", "the band's position in its set, from the lowest"),
        col("band", "str", "the band's label"))
BAND_EDGES = (col("low_hz", "float", "the band's lower edge", "Hz"), col("centre_hz", "float", "the band's centre", "Hz"),
              col("high_hz", "float", "the band's upper edge", "Hz"),
              col("fft_bins", "float", "FFT bins of the analysis grid inside the band (weighted by a mel filter's "
                                       "shape for mel bands)"),
              col("merged_from", "str", "the bands merged into this one where each alone was too narrow for the FFT; "
                                        "empty otherwise"))
SHIFT_SUMMARY = (
    col("clips", "int", "clips with a value (a clip whose band lies below --clip-floor-db is left out)"),
    col("units", "int", "independent units among them (source recordings)"),
    col("effective_units", "float", "units weighted by their sizes (Bell-McCaffrey degrees of freedom + 1); a verdict "
                                    "needs 8"),
    col("mean_shift_db", "float", "mean over the units of the per-clip change: reconstruction minus original band "
                                  "energy (for the contrast: finetuned minus the control)", "dB"),
    *interval("dB", "the mean"),
    col("se_db", "float", "the mean's cluster-robust (CR2) standard error", "dB"),
    col("p_value", "float", "two-sided t-test p of a zero mean"),
    col("p_adjusted", "float", "p_value corrected over the band set's bands (--correction)"),
    *(col(f"p_{claim}", "float", f"one-sided p of the claim that the mean lies {claim} the threshold "
                                 f"(±--threshold-db)") for claim in ("below", "above", "within")),
    *(col(f"p_{claim}_adjusted", "float", f"p_{claim} corrected over the family (NaN where no test is made)")
      for claim in ("below", "above", "within")),
    col("family_tests", "int", "claims corrected together: every claim of every row of the band set"),
    col("verdict", "str", "what the tests show: suppressed / boosted beyond the threshold, preserved within it, "
                          "or why there is no verdict", values=VERDICTS),
    col("near_noise_floor", "bool", "the band's mean original level lies more than --noise-floor-db below the loudest "
                                    "band's: no verdict"),
)
LEVEL = col("original_level_db", "float", "the band's mean original energy", "dB")
GAIN_FLOOR = col("at_gain_floor", "bool", "the spectral gain sits within 3 dB of its floor here (spectral-gain runs "
                                          "only): a suppressed band reads 'not needed'", optional=True)
GROUP_SUMMARY = (col("clips", "int", "clips with a value"), col("units", "int", "independent units among them"),
                 col("mean_shift_db", "float", "mean over the units of the per-clip change", "dB"),
                 *interval("dB", "the mean"))
BAND_SHIFT_TABLES = (
    TableSchema(Tables.BAND_SHIFT_PER_CLIP, "clip x reconstruction x band: the energy change the probe made",
                (col("clip_id", "str", "the clip"), col("unit", "str", "its independent unit (source recording)"),
                 col("class", "str", "its class"), col("category", "str", "its class's category"),
                 col("condition", "str", "which reconstruction", values=("before", "after")), *BAND,
                 col("centre_hz", "float", "the band's centre", "Hz"),
                 col("original_db", "float", "the original's band energy", "dB"),
                 col("shift_db", "float", "reconstruction minus original band energy; NaN below --clip-floor-db", "dB"),
                 col("contrast_db", "float", "on the after rows: the finetuned shift minus the control's (what the "
                                             "conclusions read); NaN elsewhere", "dB"))),
    TableSchema(Tables.BAND_SHIFT_OVERALL, "reconstruction x band: the absolute change against the original (it includes "
                                           "the probe's own error), with its test",
                (col("condition", "str", "which reconstruction", values=("before", "after")), *BAND, *BAND_EDGES,
                 *SHIFT_SUMMARY, LEVEL, GAIN_FLOOR)),
    TableSchema(Tables.BAND_SHIFT_PER_CLASS, "condition x class x band: the mean change within the class",
                (col("condition", "str", "which reconstruction, or the contrast", values=CONDITIONS),
                 col("class", "str", "the class"), *BAND, *BAND_EDGES, *GROUP_SUMMARY)),
    TableSchema(Tables.BAND_SHIFT_PER_CATEGORY, "condition x category x band: the mean change within the category",
                (col("condition", "str", "which reconstruction, or the contrast", values=CONDITIONS),
                 col("category", "str", "the category"), *BAND, *BAND_EDGES, *GROUP_SUMMARY)),
    TableSchema(Tables.BAND_CONTRAST_VS_CONTROL, "band: what finetuning changed against the control, per clip (what the "
                                                 "conclusions read), with its test",
                (col("contrast", "str", "what is subtracted, in words"),
                 col("reference", "str", "the control: the untuned probe (before), or for an AE started from random "
                                         "weights the identity on the same resampling chain",
                     values=(BEFORE, IDENTITY)),
                 col("condition", "str", "always contrast", values=(CONTRAST,)), *BAND, *BAND_EDGES, *SHIFT_SUMMARY,
                 LEVEL, GAIN_FLOOR)),
    TableSchema(Tables.PROBE_CURVES, "curve x class x frequency: what the trained probe saved of itself (the spectral "
                                     "gain's gain per frequency); written for probes that save curves",
                (col("curve", "str", "the curve's name"), col("label", "str", "what its values are, with their unit"),
                 col("class", "str", "the class of a per-class curve; all for a curve shared by every class"),
                 col("frequency_hz", "float", "frequency", "Hz"),
                 col("value", "float", "the curve's value, in the unit its label names (the gain: dB)"))),
)


def reference_of(run) -> str:
    """What the finetuned output is contrasted with: the untuned probe, or for an AE that started from random
    weights (its untuned output is a random network's), the identity on the same chain."""
    return IDENTITY if starts_random(run.config) else BEFORE


@register_analysis("band_shifts", tables=BAND_SHIFT_TABLES, writes=("summary:bands",))
def band_shift_analysis(context: RunContext) -> None:
    """Band-energy shifts per clip, class, category and overall, and the contrast against the control, with verdicts."""
    run, config = context.run, context.config
    context.say(f"{run.label}: spectra and band-energy shifts ({', '.join(config.band_sets)})")
    spectra = context.memo("power_spectra", lambda: {c: bands.power_spectra(run.waveforms(c)) for c in run.conditions})
    reference = reference_of(run) if AFTER in run.reconstructions and BEFORE in run.reconstructions else None
    compared = dict(spectra)
    if reference == IDENTITY:
        compared[IDENTITY] = bands.power_spectra(chain_identity(run))
    band_sets = bands.band_sets_for(config.band_sets, run.sample_rate, context.classifier)
    context.tables.update(band_shift_tables(compared, band_sets, run.clip_ids, run.targets, run.class_names,
                                            run.class_categories, run.category_names, config.shifts, context.rng,
                                            run.units, reference or BEFORE))
    curves = probe_curves(run)
    context.arrays.update(curves)
    if curves:
        context.tables[Tables.PROBE_CURVES] = curve_table(curves, probe_of_run(run.config).curves, run.class_names)
    record = objective_record(run)
    for curve in probe_of_run(run.config).curves:
        if curve.floor_key and not curve.per_class and curve.name in curves and record.get(curve.floor_key) is not None:
            for table in (Tables.BAND_SHIFT_OVERALL, Tables.BAND_CONTRAST_VS_CONTROL):
                if len(context.tables[table]):
                    context.tables[table] = mark_not_needed(context.tables[table], curves[f"{curve.name}_frequencies_hz"],
                                                            curves[curve.name], float(record[curve.floor_key]))
    overall, contrast = context.tables[Tables.BAND_SHIFT_OVERALL], context.tables[Tables.BAND_CONTRAST_VS_CONTROL]
    described = {condition: {band_set.name: describe_bands(overall, condition, band_set.name) for band_set in band_sets}
                 for condition in run.reconstructions}
    if len(contrast):
        described[CONTRAST] = {band_set.name: describe_bands(contrast, CONTRAST, band_set.name) for band_set in band_sets}
    first = (contrast if len(contrast) else overall)
    context.summary["bands"] = {
        **described, "reference": reference, "reference_label": REFERENCE_LABELS.get(reference or "", None),
        "headline": CONTRAST if len(contrast) else AFTER,
        "threshold_db": config.shifts.threshold_db, "alpha": config.shifts.alpha, "correction": config.shifts.correction,
        "min_units": MIN_INTERVAL_UNITS, "units": int(len(np.unique(run.units))),
        "family_tests": {band_set.name: int(first[first.band_set == band_set.name].family_tests.iloc[0])
                         for band_set in band_sets if len(first[first.band_set == band_set.name])},
        "random_start": reference == IDENTITY,
    }


BAND_PROFILES = TableSchema(Tables.BAND_PROFILES, "run x reconstruction x band: every run's band_shift_overall in one "
                                                  "table",
                            (col("run", "str", "the run"), *BAND_SHIFT_TABLES[1].columns))


@register_analysis(Tables.BAND_PROFILES, tables=(BAND_PROFILES,), scope="comparison",
                   reads=(Tables.BAND_SHIFT_OVERALL,))
def band_profiles(context: ComparisonContext) -> None:
    """Every run's overall band shifts in one table."""
    context.tables[Tables.BAND_PROFILES] = pd.concat([r.tables[Tables.BAND_SHIFT_OVERALL].assign(run=r.run.label)
                                                 for r in context.results], ignore_index=True)
