"""Band-energy shifts (reconstruction minus original, dB) per clip, with intervals, tests and verdicts."""
from __future__ import annotations


import numpy as np
import pandas as pd

from probe.analyses import bands
from probe.analyses.bands import BandSet, band_energies_db
from probe.analyses.config import ShiftSettings  # noqa: F401 (re-exported)
from probe.analyses.registry import ComparisonContext, RunContext, register_analysis
from probe.analyses.stats import CORRECTIONS, bootstrap_mean_ci, wilcoxon_per_column
from probe.probes import probe_of_run
from probe.rundir import RunDir, Tables

VERDICTS = ("suppressed", "boosted", "preserved", "uncertain", "noise floor", "not needed")
GAIN_FLOOR_MARGIN_DB = 3.0
"""A spectral-gain band within this of the gain's floor has been pushed as low as the probe allows."""


def clip_shifts(spectra: dict[str, np.ndarray], band_set: BandSet,
                clip_floor_db: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Original band energies (N, bands) and, per reconstruction condition, the shift in dB; NaN where the
    clip's band lies more than `clip_floor_db` below its loudest band."""
    original = band_energies_db(spectra["original"], band_set)
    shifts = {c: band_energies_db(s, band_set) - original for c, s in spectra.items() if c != "original"}
    if clip_floor_db is not None:
        empty = original < original.max(1, keepdims=True) - clip_floor_db
        shifts = {c: np.where(empty, np.nan, shift) for c, shift in shifts.items()}
    return original, shifts


def verdict(mean: float, low: float, high: float, p_adjusted: float, settings: ShiftSettings) -> str:
    if p_adjusted < settings.alpha and mean <= -settings.threshold_db:
        return "suppressed"
    if p_adjusted < settings.alpha and mean >= settings.threshold_db:
        return "boosted"
    if -settings.threshold_db < low and high < settings.threshold_db:
        return "preserved"
    return "uncertain"


def band_shift_tables(spectra: dict[str, np.ndarray], band_sets: list[BandSet], clip_ids: list[str], targets: np.ndarray,
                      class_names: list[str], class_categories: list[int], category_names: list[str],
                      settings: ShiftSettings, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """`band_shift_per_clip`, `band_shift_overall` (with tests and verdicts), `band_shift_per_class`, `..._per_category`,
    and `band_contrast_vs_control` (after - before per clip: what finetuning changed beyond the untuned AE)."""
    categories = np.asarray(class_categories)[targets]
    per_clip, overall, per_class, per_category, contrasts = [], [], [], [], []
    for band_set in band_sets:
        original, shifts = clip_shifts(spectra, band_set, settings.clip_floor_db)
        band_columns = {"band_set": band_set.name, "band_index": np.arange(len(band_set)), "band": list(band_set.labels),
                        "low_hz": band_set.low_hz, "centre_hz": band_set.centre_hz, "high_hz": band_set.high_hz}
        for condition, shift in shifts.items():
            n, bands = shift.shape
            per_clip.append(pd.DataFrame({
                "clip_id": np.repeat(clip_ids, bands), "class": np.repeat(np.asarray(class_names)[targets], bands),
                "category": np.repeat(np.asarray(category_names)[categories], bands), "condition": condition,
                "band_set": band_set.name, "band_index": np.tile(np.arange(bands), n),
                "band": np.tile(band_set.labels, n), "centre_hz": np.tile(band_set.centre_hz, n),
                "original_db": original.ravel(), "shift_db": shift.ravel(),
            }))
            summary = summarise_per_band(shift, settings, rng)
            counted = summary["clips"]
            frame = pd.DataFrame({"condition": condition, **band_columns, **summary})
            mean, low, high, adjusted = (summary[k] for k in ("mean_shift_db", "ci_low_db", "ci_high_db", "p_adjusted"))
            level = original.mean(0)
            floor = (level < level.max() - settings.noise_floor_db) | (counted == 0)
            frame["original_level_db"] = level
            frame["near_noise_floor"] = floor
            frame["verdict"] = ["noise floor" if quiet else verdict(*row, settings)
                                for quiet, row in zip(floor, zip(mean, low, high, adjusted))]
            overall.append(frame)
            for groups, names, key, out in ((targets, class_names, "class", per_class),
                                            (categories, category_names, "category", per_category)):
                for index, name in enumerate(names):
                    members = groups == index
                    if not members.any():
                        continue
                    g_mean, g_low, g_high = bootstrap_mean_ci(shift[members], settings.level, settings.n_boot, rng)
                    out.append(pd.DataFrame({"condition": condition, key: name, **band_columns,
                                             "clips": np.isfinite(shift[members]).sum(0),
                                             "mean_shift_db": g_mean, "ci_low_db": g_low, "ci_high_db": g_high}))
        if {"before", "after"} <= set(shifts):
            contrasts.append(_contrast(shifts["after"] - shifts["before"], band_set, settings, rng))
    concat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    return {Tables.BAND_SHIFT_PER_CLIP: concat(per_clip), Tables.BAND_SHIFT_OVERALL: concat(overall),
            Tables.BAND_SHIFT_PER_CLASS: concat(per_class), Tables.BAND_SHIFT_PER_CATEGORY: concat(per_category),
            Tables.BAND_CONTRAST_VS_CONTROL: concat(contrasts)}


def summarise_per_band(values: np.ndarray, settings: ShiftSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per band of per-clip dB values (clips, bands; NaN: left out): the clips counted, the mean with its
    bootstrap CI, Wilcoxon p and corrected p."""
    mean, low, high = bootstrap_mean_ci(values, settings.level, settings.n_boot, rng)
    p_values = wilcoxon_per_column(values)
    return {"clips": np.isfinite(values).sum(0), "mean_shift_db": mean, "ci_low_db": low, "ci_high_db": high, "p_value": p_values,
            "p_adjusted": CORRECTIONS[settings.correction](p_values)}


def _contrast(difference: np.ndarray, band_set: BandSet, settings: ShiftSettings, rng: np.random.Generator) -> pd.DataFrame:
    """What finetuning changed: per band, the paired per-clip difference after - before (the untuned control), in dB."""
    return pd.DataFrame({"contrast": "after - before", "band_set": band_set.name, "band_index": np.arange(len(band_set)),
                         "band": list(band_set.labels), "low_hz": band_set.low_hz, "centre_hz": band_set.centre_hz,
                         "high_hz": band_set.high_hz, **summarise_per_band(difference, settings, rng)})


def mark_not_needed(overall: pd.DataFrame, frequencies_hz: np.ndarray, gain_db: np.ndarray, floor_db: float,
                    margin_db: float = GAIN_FLOOR_MARGIN_DB) -> pd.DataFrame:
    """A probe whose curve has a floor (the spectral gain's): bands where the trained curve sits at it get "not needed".

    The floor is where the probe's bound stopped it, not a measured level, so its dB value is no
    finding of its own: what it says is that the classifier did not need the band.
    """
    overall = overall.copy()
    after = overall.condition == "after"
    for index in overall.index[after]:
        row = overall.loc[index]
        inside = (frequencies_hz >= row.low_hz) & (frequencies_hz < row.high_hz)
        gain = gain_db[inside].mean() if inside.any() else np.interp(row.centre_hz, frequencies_hz, gain_db)
        if gain <= floor_db + margin_db:
            overall.loc[index, "verdict"] = "not needed"
    return overall


def describe_bands(overall: pd.DataFrame, condition: str, band_set: str = "octave") -> dict[str, object]:
    """Contiguous runs of bands per verdict, as Hz ranges, with a plain sentence."""
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
    from probe.analyses.bands import format_hz

    parts = []
    for name, verb in (("suppressed", "suppresses"), ("boosted", "boosts"), ("preserved", "preserves"),
                       ("not needed", "does not need (gain at its floor)")):
        if ranges[name]:
            spans = ", ".join(f"{format_hz(r['from_hz'])}–{format_hz(r['to_hz'])} ({r['mean_shift_db']:+.1f} dB)"
                              for r in ranges[name])
            parts.append(f"{verb} {spans}")
    sentence = "; ".join(parts) if parts else "changes no band clearly"
    return {"ranges": ranges, "sentence": sentence}


BAND_SHIFT_TABLES = (Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_SHIFT_OVERALL, Tables.BAND_SHIFT_PER_CLASS, Tables.BAND_SHIFT_PER_CATEGORY,
                     Tables.BAND_CONTRAST_VS_CONTROL)


def probe_curves(run) -> dict[str, np.ndarray]:
    """The trained curves the run's probe type saved (`probe.probes`), as `<name>` (values) and
    `<name>_frequencies_hz`; a per-class curve written before curves carried their frequencies is read too."""
    folder, curves, declared = RunDir(run.path), {}, probe_of_run(run.config).curves
    single = next((f"{c.name}_frequencies_hz" for c in declared if not c.per_class), None)
    for curve in declared:
        path = folder.curve_file(curve.name)
        if not path.is_file():
            continue
        values = np.load(path)
        if curve.per_class and len(values) == len(run.class_names) and single in curves:
            values = np.vstack([curves[single], values])  # per-class files written before they carried frequencies
        curves[f"{curve.name}_frequencies_hz"], curves[curve.name] = values[0], values[1:] if curve.per_class else values[1]
    return curves


def objective_record(run) -> dict:
    """The run's outputs/objective.json (what it optimised, the probe's own record); empty if absent."""
    import json

    path = RunDir(run.path).objective_file
    return json.loads(path.read_text()) if path.is_file() else {}


@register_analysis("band_shifts", tables=BAND_SHIFT_TABLES)
def band_shift_analysis(context: RunContext) -> None:
    """Band-energy shifts per clip, class, category and overall, with verdicts; the contrast against the untuned probe."""
    run, config = context.run, context.config
    context.say(f"{run.label}: spectra and band-energy shifts ({', '.join(config.band_sets)})")
    spectra = context.cache.setdefault("spectra", {c: bands.power_spectra(run.waveforms(c)) for c in run.conditions})
    band_sets = bands.band_sets_for(config.band_sets, run.sample_rate, context.classifier)
    context.tables.update(band_shift_tables(spectra, band_sets, run.clip_ids, run.targets, run.class_names,
                                            run.class_categories, run.category_names, config.shifts, context.rng))
    curves = probe_curves(run)
    context.arrays.update(curves)
    record = objective_record(run)
    for curve in probe_of_run(run.config).curves:
        if curve.floor_key and not curve.per_class and curve.name in curves and record.get(curve.floor_key) is not None:
            context.tables[Tables.BAND_SHIFT_OVERALL] = mark_not_needed(
                context.tables[Tables.BAND_SHIFT_OVERALL], curves[f"{curve.name}_frequencies_hz"], curves[curve.name],
                float(record[curve.floor_key]))
    overall = context.tables[Tables.BAND_SHIFT_OVERALL]
    context.summary["bands"] = {condition: {band_set.name: describe_bands(overall, condition, band_set.name)
                                            for band_set in band_sets} for condition in run.reconstructions}


@register_analysis(Tables.BAND_PROFILES, tables=(Tables.BAND_PROFILES,), scope="comparison")
def band_profiles(context: ComparisonContext) -> None:
    """Every run's overall band shifts in one table."""
    context.tables[Tables.BAND_PROFILES] = pd.concat([r.tables[Tables.BAND_SHIFT_OVERALL].assign(run=r.run.label)
                                                 for r in context.results], ignore_index=True)
