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

from probe.analyses.attribution import attribution_maps, classifier_identity, clip_budget, maps_key, select_clips
from probe.analyses.config import AnalyseConfig
from probe.analyses.randomisation import check_key, sanity_clips
from probe.analyses.runs import RunOutputs
from probe.analyses.store import AttributionStore, content_hash
from probe.seeding import derive_seed

CHEAPER = ("--attribution-clips N (fewer clips)", "--methods saliency,integrated_gradients (the cheap methods)",
           "--ig-steps 8", "--occlusion-patch 64,250", "--randomisation-stages 2", "--methods none (no attributions)")


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
    clip of the classifier's first run."""
    settings, seed = config.attributions, config.seed
    pending: dict[tuple[str, str], int] = {}
    first: dict[str, RunOutputs] = {}
    planned: set[str] = set()
    for run in runs:
        classifier = classifiers.get(run.label)
        if classifier is None:
            continue
        name = str(run.config.get("classifier"))
        first.setdefault(name, run)
        identity, chosen = classifier_identity(run), select_clips(run.targets, clip_budget(settings, device))
        targets = run.targets[chosen]
        hashes = {condition: content_hash(run.waveforms(condition)[chosen], targets) for condition in settings.conditions}
        for method in settings.methods:
            for condition in settings.conditions:
                key = maps_key(identity, method, settings, hashes[condition], derive_seed(seed, condition), device)
                if key not in planned and not store.has(key):
                    planned.add(key)
                    pending[(name, method)] = pending.get((name, method), 0) + len(chosen)
        sanity = sanity_clips(run, settings, device)
        key = check_key(identity, settings, run.waveforms("original")[sanity], run.targets[sanity],
                        derive_seed(seed, "randomisation"), device)
        if key not in planned and not store.has(key):
            planned.add(key)
            for method in settings.methods:  # the trained maps, then one pass per cascading stage
                pending[(name, method)] = pending.get((name, method), 0) + len(sanity) * (1 + settings.randomisation_stages)
    rows = []
    for (name, method), clips in pending.items():
        run = first[name]
        started = time.perf_counter()
        attribution_maps(classifiers[run.label], np.asarray(run.waveforms("original")[:1]), run.targets[:1], method,
                         settings, device, derive_seed(seed, "plan"))
        rows.append(PlanRow(name, method, clips, time.perf_counter() - started))
    return rows


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
