"""Integrated gradients' step count, chosen by completeness.

Integrated gradients approximate a path integral by an `n`-point quadrature (captum's Gauss-Legendre rule). The
exact integral is complete: a clip's attributions sum to the classifier's output for the clip minus its output for
the baseline (silence). The quadrature's shortfall, relative to that difference (captum's convergence delta), says
how far the `n`-step maps are from the method's definition: a small shortfall is necessary for exact maps, not
sufficient (errors of opposite sign in two bins cancel in the sum). So the steps are not a fixed guess: on the first
clips of a classifier's originals, a walk along `STEP_LADDER` from `START_STEPS` (down while the median relative
error stays within `--ig-max-error`, 5 %; else up until it does) chooses them, assuming the error falls as the steps
grow; the errors are kept in the `attribution_completeness` table and on the report's page. A fixed `--ig-steps` is
measured the same way, so the error is known either way.

The choice belongs to the classifier and the clips, not to a run: it is kept in the attribution store, and every
run behind the same classifier reads it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from probe.analyses.config import AttributionSettings
from probe.analyses.passes import samples_per_pass
from probe.analyses.store import AttributionStore, code_hash, map_settings
from probe.progress import Ticker
from probe.models.base import WaveformClassifier
from probe.models.inspection import attribution_view

STEP_LADDER = (4, 8, 16, 32, 64, 128)
"""The step counts that may be chosen; where none meets the bound, the last is used and the page says so."""
START_STEPS = 16
"""Where the walk along the ladder starts: most classifiers are near it, so few rungs are tried."""
MIN_GAP = 1e-6
"""A clip whose target logit barely differs from the baseline's has no relative error (its ratio would measure
noise): it is left out of the median."""


def output_gaps(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
                device: torch.device) -> np.ndarray:
    """Per clip: F(clip) - F(silence), the target's logit on the clip minus on silence (what its integrated-gradient
    attributions must sum to)."""
    view = attribution_view(classifier)
    gaps = []
    for index in range(len(waveforms)):
        x = torch.tensor(np.asarray(waveforms[index : index + 1]), dtype=torch.float32, device=device)
        with torch.no_grad():
            difference = view.logits_from_mel(view.mel(x)) - view.logits_from_mel(view.mel(torch.zeros_like(x)))
        gaps.append(float(difference[0, int(targets[index])]))
    return np.asarray(gaps, dtype=np.float64)


def clip_attributions(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray, steps: int,
                      settings: AttributionSettings, device: torch.device) -> list[torch.Tensor]:
    """Each clip's `steps`-step integrated-gradient attributions on its mel input from silence, one clip per call:
    the walk's computation, which the analysis's maps of the same clips reuse (`attribution.sized_settings`)."""
    from captum.attr import IntegratedGradients

    view = attribution_view(classifier)
    forward = view.logits_from_mel
    attributions = []
    ticker = Ticker(f"integrated gradients' completeness walk at {steps} steps: clips", len(waveforms))
    for index in range(len(waveforms)):
        x = torch.tensor(np.asarray(waveforms[index : index + 1]), dtype=torch.float32, device=device)
        target = torch.tensor(np.asarray(targets[index : index + 1]), device=device)
        with torch.no_grad():
            mel, baseline = view.mel(x), view.mel(torch.zeros_like(x))
        with torch.enable_grad():  # no convergence delta: it would run the two forwards of the clip's gap again
            attributions.append(IntegratedGradients(forward).attribute(
                mel.requires_grad_(), baselines=baseline, target=target, n_steps=steps,
                internal_batch_size=samples_per_pass(forward, mel, settings, device)).detach())
        ticker.advance()
    return attributions


def relative_completeness_errors(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
                                 steps: int, settings: AttributionSettings, device: torch.device,
                                 gaps: np.ndarray | None = None,
                                 attributions: list[torch.Tensor] | None = None) -> np.ndarray:
    """Per clip: |sum of its `steps`-step integrated-gradient attributions - (F(clip) - F(silence))| divided by
    |F(clip) - F(silence)|, where F is the target's logit; NaN where that difference is below `MIN_GAP`. `gaps`:
    the differences (`output_gaps`), when already known (the walk measures them once for every rung); `attributions`:
    the clips' attributions (`clip_attributions`), when already computed."""
    gaps = output_gaps(classifier, waveforms, targets, device) if gaps is None else gaps
    if attributions is None:
        attributions = clip_attributions(classifier, waveforms, targets, steps, settings, device)
    errors = [abs(float(attribution.double().sum()) - gap) / abs(gap) if abs(gap) >= MIN_GAP else np.nan
              for attribution, gap in zip(attributions, gaps)]
    return np.asarray(errors, dtype=np.float64)


def size_steps(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
               settings: AttributionSettings, device: torch.device,
               kept: dict[str, Any] | None = None) -> pd.DataFrame:
    """The completeness table: one row per step count tried and clip (`steps`, the clip's `position` among those
    measured, `relative_error`), with `chosen` marking the rows of the steps used. A fixed `settings.ig_steps` is the
    one count tried. Otherwise the ladder is walked from `START_STEPS`: down while the median error stays within
    `settings.ig_max_error`, else up until it does (the last rung where it never does); where no clip can be judged
    (every error NaN), `START_STEPS` are used. `kept`, when given, receives the clips' attributions at the steps
    chosen (`attributions`), so that the maps of these clips need not be computed again."""
    tables: dict[int, pd.DataFrame] = {}
    computed: dict[int, list[torch.Tensor]] = {}
    gaps = output_gaps(classifier, waveforms, targets, device)

    def median_error(steps: int) -> float:
        computed[steps] = clip_attributions(classifier, waveforms, targets, steps, settings, device)
        errors = relative_completeness_errors(classifier, waveforms, targets, steps, settings, device, gaps,
                                              computed[steps])
        tables[steps] = pd.DataFrame({"steps": steps, "position": np.arange(len(errors)), "relative_error": errors})
        return float(np.nanmedian(errors)) if np.isfinite(errors).any() else np.nan

    def within(steps: int) -> bool:
        return median_error(steps) <= settings.ig_max_error

    if settings.ig_steps is not None:
        median_error(chosen := settings.ig_steps)
    else:
        start = STEP_LADDER.index(START_STEPS)
        first = median_error(START_STEPS)
        chosen = START_STEPS
        if first <= settings.ig_max_error:
            for steps in reversed(STEP_LADDER[:start]):
                if not within(steps):
                    break
                chosen = steps
        elif np.isfinite(first):
            chosen = next((steps for steps in STEP_LADDER[start + 1 :] if within(steps)), STEP_LADDER[-1])
    table = pd.concat([tables[steps] for steps in sorted(tables)], ignore_index=True)
    table["chosen"] = table.steps == chosen
    if kept is not None:
        kept["attributions"] = computed[chosen]
    return table


def sizing_key(identity: tuple, settings: AttributionSettings, clips: str, device: torch.device) -> str:
    """The attribution store's name for the step choice on these clips (`clips`: their `content_hash`)."""
    return AttributionStore.key(kind="ig_completeness", classifier=identity, settings=map_settings(settings, ("ig_steps",)),
                                bound=settings.ig_max_error, ladder=STEP_LADDER, start=START_STEPS, gap=MIN_GAP,
                                clips=clips, device=device.type,
                                code=[code_hash(f) for f in (output_gaps, clip_attributions, relative_completeness_errors)])


def chosen_steps(table: pd.DataFrame) -> int:
    """The steps the completeness table chose."""
    return int(table.loc[table.chosen, "steps"].iloc[0])


def completeness_summary(table: pd.DataFrame, settings: AttributionSettings) -> dict[str, Any]:
    """For the run summary and the page: the steps used, how they were chosen, the median relative error at them
    against the bound, and whether the bound was met."""
    chosen = table[table.chosen]
    errors = chosen.relative_error.to_numpy()
    median = float(np.nanmedian(errors)) if np.isfinite(errors).any() else None
    return {"steps": chosen_steps(table), "sized": settings.ig_steps is None, "clips": int(len(chosen)),
            "clips_judged": int(np.isfinite(errors).sum()), "median_relative_error": median,
            "max_relative_error": settings.ig_max_error,
            "within_bound": None if median is None else bool(median <= settings.ig_max_error),
            "tried": sorted(int(s) for s in table.steps.unique())}


def with_steps(settings: AttributionSettings, steps: int) -> AttributionSettings:
    """`settings` with integrated gradients' steps fixed at `steps`."""
    return replace(settings, ig_steps=steps)
