"""The planted answer: does each probe point at the band a classifier was built to rely on?

Given the truth (which classifier relies on which of two frequency bands), per classifier and probe:
the high-minus-low contrast in dB and whether it points at the planted band by at least the
recovery threshold. Only runs when `AnalyseConfig.planted` holds a truth (the demo's).

Probes: what finetuning changed, measured against the untuned control: per clip and third-octave
band, the energy shift of the finetuned output minus that of the same probe before finetuning (the
AE's own bias cancels; for the spectral gain the control is the identity), averaged over the
(clip, band) cells inside each band that held energy; a band a clip leaves nearly empty says
nothing about what was kept, and weighting bands equally would let those few clips count as much
as the many that carry the class. Attributions: the integrated-gradients mass in the mel bins
inside each band, as a ratio in dB. A positive contrast means the probe favoured the high band.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from probe.analyses.registry import ComparisonContext, register_analysis
from probe.synthetic import HIGH
from probe.rundir import Tables


@dataclass(frozen=True)
class PlantedTruth:
    low_band_hz: tuple[float, float]
    high_band_hz: tuple[float, float]
    relies_on: dict[str, str | None]
    """Classifier label -> LOW, HIGH, or None (uses both bands)."""
    recovery_db: float = 6.0
    """A probe recovers the planted band when the contrast has the planted sign and at least this size."""
    attribution_method: str = "integrated_gradients"
    attribution_setting: str | None = None
    """The run whose attribution tables are read (attributions belong to the classifier); default: the first."""
    extra: dict[str, Any] = field(default_factory=dict)


def finetuning_change(per_clip: pd.DataFrame) -> pd.DataFrame:
    """Per clip and third-octave band: the finetuned shift minus the untuned one (dB), NaN where the clip's
    band held next to nothing (the analysis' per-clip floor)."""
    thirds = per_clip[per_clip.band_set == "third_octave"]
    shifts = thirds.pivot_table(index=["clip_id", "band_index"], columns="condition", values="shift_db", dropna=False)
    centres = thirds.drop_duplicates("band_index").set_index("band_index").centre_hz
    change = (shifts["after"] - shifts["before"]).rename("change_db").reset_index()
    return change.assign(centre_hz=change.band_index.map(centres))


def cell_mean(change: pd.DataFrame, low_hz: float, high_hz: float) -> float:
    """Mean change over every (clip, band) cell whose band centre lies in [low_hz, high_hz] and that held energy."""
    return float(change[(change.centre_hz >= low_hz) & (change.centre_hz <= high_hz)].change_db.mean())


def verdict(contrast_db: float, relies_on: str | None, recovery_db: float) -> dict[str, Any]:
    recovered = None
    if relies_on is not None:
        sign = 1 if relies_on == HIGH else -1
        recovered = bool(sign * contrast_db >= recovery_db)
    return {"high_minus_low_db": round(float(contrast_db), 2), "recovered": recovered}


def planted_answer(results, truth: PlantedTruth) -> dict[str, Any]:
    """Per classifier and probe: the contrast and its verdict (the structure of the demo's planted.json)."""
    (low_lo, low_hi), (high_lo, high_hi) = truth.low_band_hz, truth.high_band_hz
    answer: dict[str, Any] = {"recovery_threshold_db": truth.recovery_db, "classifiers": {}}
    attributed: set[str] = set()
    for result in results:
        classifier, setting = result.summary["classifier"], result.setting
        relies_on = truth.relies_on.get(classifier)
        probes = answer["classifiers"].setdefault(classifier, {"relies_on": relies_on, "probes": {}})["probes"]
        change = finetuning_change(result.tables[Tables.BAND_SHIFT_PER_CLIP])
        contrast = cell_mean(change, high_lo, high_hi) - cell_mean(change, low_lo, low_hi)
        control = result.summary.get("control", False)  # a control points at no band by construction
        probes[setting] = verdict(0.0 if np.isnan(contrast) else contrast, None if control else relies_on,
                                  truth.recovery_db)
        wanted = truth.attribution_setting in (None, setting)
        profile = result.tables.get(Tables.ATTRIBUTION_BAND_PROFILE)
        if wanted and classifier not in attributed and profile is not None and len(profile):
            attributed.add(classifier)
            rows = profile[(profile.method == truth.attribution_method) & (profile.condition == "original")]
            low = rows[(rows.low_hz >= low_lo) & (rows.high_hz <= low_hi)]["mass"].sum()
            high = rows[(rows.low_hz >= high_lo) & (rows.high_hz <= high_hi)]["mass"].sum()
            name = f"attribution ({truth.attribution_method.replace('_', ' ')})"
            probes[name] = verdict(10 * np.log10(high / low), relies_on, truth.recovery_db)
    return answer


def planted_table(answer: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"classifier": classifier, "relies_on": entry["relies_on"], "probe": probe, **result}
                         for classifier, entry in answer["classifiers"].items() for probe, result in entry["probes"].items()])


def describe_planted(answer: dict[str, Any]) -> list[str]:
    """One line per classifier and probe, then each probe's tally over the classifiers with a planted band."""
    lines, tally = [], {}
    for classifier, entry in answer["classifiers"].items():
        planted = f"relies on the {entry['relies_on']} band" if entry["relies_on"] else "uses both bands"
        lines.append(f"{classifier} ({planted}):")
        for probe, result in entry["probes"].items():
            mark = {True: "recovered", False: "missed", None: "-"}[result["recovered"]]
            lines.append(f"    {probe:<38} high - low {result['high_minus_low_db']:+6.1f} dB   {mark}")
            if result["recovered"] is not None:
                hits, total = tally.get(probe, (0, 0))
                tally[probe] = (hits + result["recovered"], total + 1)
    lines += [f"{probe}: recovered {hits} of {total} planted bands" for probe, (hits, total) in tally.items()]
    return lines


@register_analysis("planted", tables=(Tables.PLANTED,), scope="comparison", enabled=lambda config: config.planted is not None)
def planted_analysis(context: ComparisonContext) -> None:
    """Whether each probe recovered each planted band (only with a planted truth, as in the demo)."""
    answer = planted_answer(context.results, context.config.planted)
    context.tables[Tables.PLANTED] = planted_table(answer)
    context.summary["planted"] = answer
