"""Folds pooled: a cross-validated (classifier, probe setting) read over all its folds' clips at once.

Each fold's run scores its own validation clips with its own classifier and probe, so the folds' per-clip contrasts
are independent samples of one question; pooled, ESC-50's five folds give 2000 clips instead of 400. The pooled
table has the same intervals, tests and verdicts as one run's `band_contrast_vs_control`; each fold's own table
stays in its run's folder beside it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from probe.analyses.bandshift import BAND, BAND_EDGES, CONTRAST, SHIFT_SUMMARY, assign_verdicts, describe_bands, summarise_per_band
from probe.analyses.registry import ComparisonContext, register_analysis
from probe.analyses.schema import TableSchema, col
from probe.rundir import AFTER, Tables
from probe.seeding import derive_seed

BAND_COLUMNS = ("band", "low_hz", "centre_hz", "high_hz", "fft_bins", "merged_from")


def by_fold(results: list[Any]) -> dict[tuple[str, str], dict[int, Any]]:
    """The runs of each (classifier label, setting), by validation fold (the first run of a fold stands)."""
    groups: dict[tuple[str, str], dict[int, Any]] = {}
    for result in results:
        fold = int(result.run.config.get("fold", 1))
        groups.setdefault((result.run.judge, result.setting), {}).setdefault(fold, result)
    return groups


def fold_tables(runs: dict[int, Any], names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The named tables of one (classifier, setting)'s runs by fold, each with every fold's rows together, in fold
    order (each fold's clips are its own); a table no run wrote is left out."""
    ordered = [runs[fold] for fold in sorted(runs)]
    return {name: pd.concat([r.tables[name] for r in ordered if name in r.tables], ignore_index=True)
            for name in names if any(name in r.tables for r in ordered)}


def pooled_per_clip(results: list[Any], table: str) -> dict[tuple[str, str], pd.DataFrame]:
    """A per-clip table of each (classifier, setting), its folds' rows together."""
    return {key: fold_tables(runs, (table,))[table] for key, runs in by_fold(results).items()}


def pooled_contrasts(results: list[Any], settings, rng: np.random.Generator) -> pd.DataFrame:
    """Per (classifier, setting) analysed on two or more folds, and per band set: the contrast against the control
    per band over every fold's clips, with its interval, tests and verdicts (each band set one family)."""
    frames = []
    for (classifier, setting), runs in by_fold(results).items():
        if len(runs) < 2:
            continue
        folds = sorted(runs)
        tables = fold_tables(runs, (Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_CONTRAST_VS_CONTROL))
        per_clip = tables[Tables.BAND_SHIFT_PER_CLIP]
        per_clip = per_clip[per_clip.condition == AFTER]
        if "contrast_db" not in per_clip or per_clip.contrast_db.isna().all():
            continue  # no control to contrast with
        controls = tables[Tables.BAND_CONTRAST_VS_CONTROL]
        for band_set, part in per_clip.groupby("band_set", sort=False):
            values = part.pivot(index="clip_id", columns="band_index", values="contrast_db")
            units = part.drop_duplicates("clip_id").set_index("clip_id").unit.loc[values.index].to_numpy()
            own = controls[controls.band_set == band_set]
            bands = own.drop_duplicates("band_index").set_index("band_index").loc[values.columns]
            floor = own.groupby("band_index").near_noise_floor.any().loc[values.columns].to_numpy()
            frame = pd.DataFrame({"classifier": classifier, "setting": setting, "folds": ",".join(map(str, folds)),
                                  "band_set": band_set, "band_index": values.columns,
                                  **{c: bands[c].to_numpy() for c in BAND_COLUMNS if c in bands},
                                  **summarise_per_band(values.to_numpy(), settings, rng, units),
                                  "near_noise_floor": floor})
            frames += assign_verdicts([frame], settings)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


POOLED = TableSchema(
    Tables.BAND_CONTRAST_POOLED, "(cross-validated runs) classifier x probe setting x band: band_contrast_vs_control "
                                 "over every fold's clips together, with the same interval, tests and verdicts",
    (col("classifier", "str", "the classifier"), col("setting", "str", "the probe setting"),
     col("folds", "str", "the folds pooled, comma-separated"), *BAND, *BAND_EDGES, *SHIFT_SUMMARY))


@register_analysis(Tables.BAND_CONTRAST_POOLED, tables=(POOLED,), scope="comparison",
                   reads=(Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_CONTRAST_VS_CONTROL))
def pooled_contrast_analysis(context: ComparisonContext) -> None:
    """The contrast against the control of every cross-validated (classifier, setting), its folds pooled."""
    pooled = pooled_contrasts(context.results, context.config.shifts,
                              np.random.default_rng(derive_seed(context.config.seed, "pooled")))
    if len(pooled):
        context.tables[Tables.BAND_CONTRAST_POOLED] = pooled
        described = {}
        for (classifier, setting, folds), rows in pooled.groupby(["classifier", "setting", "folds"], sort=False):
            rows = rows.assign(condition=CONTRAST)
            described[f"{classifier}--{setting}"] = {
                "classifier": classifier, "setting": setting, "folds": folds,
                "bands": {band_set: describe_bands(rows, CONTRAST, band_set) for band_set in rows.band_set.unique()}}
        context.summary["pooled"] = described  # what the report's answer reads, in the runs' own words
