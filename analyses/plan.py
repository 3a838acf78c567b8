"""The attributions' plan, said before the work: per classifier and method, how many clips are left to attribute
(what the store keeps costs nothing) and how long that should take, timed on one clip.

Attributions are most of an analysis's time on a CPU (PaSST: minutes per clip with every method), so
`probe analyse` times the first clip of each method, prints the plan, and where the total exceeds
`--budget-minutes` says so with the cheaper choices before it goes on; `--dry-run` prints the plan alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from probe.analyses.attribution import (ATTRIBUTION_METHODS, attribution_maps, classifier_identity, clip_budget,
                                        maps_key, select_clips, sizing_inputs, walked_clips)
from probe.analyses.config import AnalyseConfig, AttributionSettings
from probe.analyses.completeness import START_STEPS, chosen_steps, with_steps
from probe.analyses.randomisation import check_key, sanity_clips, too_few_clips
from probe.analyses.runs import RunOutputs
from probe.analyses.store import AttributionStore, content_hash
from probe.seeding import derive_seed

CHEAPER = ("--attribution-clips N (fewer clips)", "--methods saliency,integrated_gradients (the cheap methods)",
           "--ig-max-error 0.1 (fewer integrated-gradient steps)", "--occlusion-patch 64,250",
           "--randomisation-stages 2", "--sanity-clips 0 (no randomisation check)", "--methods none (no attributions)")


@dataclass(frozen=True)
class PlanRow:
    classifier: str
    method: str
    clips: int
    """Clip attributions left to compute: finetuned and original clips, and the randomisation check's passes."""
    seconds_per_clip: float

    @property
    def seconds(self) -> float:
        return self.clips * self.seconds_per_clip


def attribution_plan(runs: list[RunOutputs], classifiers: dict[str, Any], config: AnalyseConfig,
                     device: torch.device, store: AttributionStore) -> list[PlanRow]:
    """What the attributions will cost: the clips not in `store`, per classifier and method, each method timed on one
    clip of the classifier's first run (integrated gradients at the steps the store keeps for the classifier, else
    at `START_STEPS` until the run chooses them; the randomisation check with the analysis's settings)."""
    seed = config.seed
    pending: dict[tuple[str, str, bool], int] = {}
    first: dict[str, tuple[RunOutputs, AttributionSettings]] = {}
    planned: set[str] = set()

    def add(key: str, name: str, method: str, check: bool, clips: int) -> None:
        if key not in planned and not store.has(key):
            planned.add(key)
            pending[(name, method, check)] = pending.get((name, method, check), 0) + clips

    for run in runs:
        classifier = classifiers.get(run.label)
        if classifier is None:
            continue
        name = str(run.config.get("classifier"))
        identity, chosen = classifier_identity(run), select_clips(run.targets, clip_budget(config.attributions, device))
        settings = known_steps(run, identity, chosen, config.attributions, device, store)
        first.setdefault(name, (run, settings))
        targets = run.targets[chosen]
        hashes = {condition: content_hash(run.waveforms(condition)[chosen], targets) for condition in settings.conditions}
        for method in settings.methods:
            for condition in settings.conditions:
                # the first originals' integrated gradients come from the step choice, or are computed as it does:
                # either way, a clip pass each
                add(maps_key(identity, method, settings, hashes[condition], derive_seed(seed, condition), device,
                             walked_clips(method, condition, settings, len(chosen))), name, method, False, len(chosen))
        sanity = sanity_clips(run, settings, device)
        if too_few_clips(len(sanity)):
            continue
        sanity_hash = content_hash(run.waveforms("original")[sanity], run.targets[sanity])
        for method in settings.methods:  # the trained maps, then one pass per cascading stage
            add(check_key(identity, method, settings, sanity_hash, derive_seed(seed, "randomisation"), device),
                name, method, True, len(sanity) * (1 + settings.randomisation_stages))
    rows, seconds = [], {}
    for (name, method, check), clips in pending.items():
        if (name, method) not in seconds:  # the check attributes with the maps' settings: one timing serves both
            run, settings = first[name]
            started = time.perf_counter()
            attribution_maps(classifiers[run.label], np.asarray(run.waveforms("original")[:1]), run.targets[:1], method,
                             with_steps(settings, settings.ig_steps or START_STEPS), device,
                             derive_seed(seed, "plan"))
            seconds[(name, method)] = time.perf_counter() - started
        settings = first[name][1]
        unsized = ATTRIBUTION_METHODS.lookup(method).sized_by_completeness and settings.ig_steps is None
        label = method + (" (randomisation check)" if check else "") + (
            f" (timed at {START_STEPS} steps: each rung the completeness walk climbs doubles it, and the walk tries "
            f"its rungs on {settings.completeness_clips} clips)" if unsized and not check else "")
        rows.append(PlanRow(name, label, clips, seconds[(name, method)]))
    return rows


def known_steps(run: RunOutputs, identity: tuple, chosen: np.ndarray, settings: AttributionSettings,
                device: torch.device, store: AttributionStore) -> AttributionSettings:
    """`settings` with integrated gradients' steps as the analysis will use them, where known: fixed, or chosen
    earlier for this classifier and kept in `store`; else unchanged (their maps are then all to compute)."""
    if settings.ig_steps is not None:
        return settings
    table = store.kept_table(sizing_inputs(run, identity, chosen, settings, device)[3])
    return settings if table is None else with_steps(settings, chosen_steps(table))


def describe_plan(rows: list[PlanRow], budget_minutes: float | None) -> list[str]:
    """The plan in lines: one per classifier and method, the total, and, over the budget, what would cost less."""
    if not rows:
        return ["attributions: nothing to compute (the attribution store holds every map and check)"]
    lines = [f"attributions: {row.classifier} {row.method}: {row.clips} clip passes x {row.seconds_per_clip:.2g} s "
             f"= about {_duration(row.seconds)}" for row in rows]
    total = sum(row.seconds for row in rows)
    lines.append(f"attributions: about {_duration(total)} in all (timed on one clip each; the first pass of a "
                 "method includes its set-up)")
    if budget_minutes is not None and total > budget_minutes * 60:
        lines.append(f"attributions: that is over the budget of {budget_minutes:g} minutes (--budget-minutes); "
                     f"cheaper: {'; '.join(CHEAPER)}")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
