"""Integrated gradients' step count, chosen by completeness.

Integrated gradients approximate a path integral by a Riemann sum over `n` steps. The exact integral is complete:
a clip's attributions sum to the classifier's output for the clip minus its output for the baseline (silence).
The sum's shortfall, relative to that difference, is how far the `n`-step maps are from the method's definition
(captum's convergence delta). So the steps are not a fixed guess: on the first clips of a classifier's originals,
the fewest steps of `STEP_LADDER` whose median relative completeness error is at most `--ig-max-error` (5 %) are
chosen, and the errors are kept in the `attribution_completeness` table and on the report's page. A fixed
`--ig-steps` is measured the same way, so the error is known either way.

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
from probe.analyses.store import AttributionStore, map_settings
from probe.models.base import WaveformClassifier
from probe.models.inspection import attribution_view

STEP_LADDER = (4, 8, 16, 32, 64, 128)
"""The step counts tried, fewest first; where none meets the bound, the last is used and the page says so."""
PLAN_STEPS = 16
"""The steps the plan times integrated gradients at before they are chosen."""
MIN_GAP = 1e-6
"""A clip whose target logit barely differs from the baseline's has no relative error (its ratio would measure
noise): it is left out of the median."""


def relative_completeness_errors(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
                                 steps: int, settings: AttributionSettings, device: torch.device) -> np.ndarray:
    """Per clip: |sum of its `steps`-step integrated-gradient attributions - (F(clip) - F(silence))| divided by
    |F(clip) - F(silence)|, where F is the target's logit; NaN where that difference is below `MIN_GAP`."""
    from captum.attr import IntegratedGradients

    view = attribution_view(classifier)
    forward = view.logits_from_mel
    errors = []
    for index in range(len(waveforms)):
        x = torch.tensor(np.asarray(waveforms[index : index + 1]), dtype=torch.float32, device=device)
        target = torch.tensor(np.asarray(targets[index : index + 1]), device=device)
        with torch.no_grad():
            mel, baseline = view.mel(x), view.mel(torch.zeros_like(x))
            gap = float((forward(mel) - forward(baseline))[0, target[0]])
        with torch.enable_grad():
            _, delta = IntegratedGradients(forward).attribute(
                mel.requires_grad_(), baselines=baseline, target=target, n_steps=steps,
                internal_batch_size=samples_per_pass(forward, mel, settings, device), return_convergence_delta=True)
        errors.append(abs(float(delta[0])) / abs(gap) if abs(gap) >= MIN_GAP else np.nan)
    return np.asarray(errors, dtype=np.float64)


def size_steps(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
               settings: AttributionSettings, device: torch.device) -> pd.DataFrame:
    """The completeness table: one row per step count tried and clip (`steps`, the clip's `position` among those measured, `relative_error`), with
    `chosen` marking the rows of the steps used. A fixed `settings.ig_steps` is the one count tried; otherwise the
    ladder is climbed until the median error is at most `settings.ig_max_error`."""
    ladder = (settings.ig_steps,) if settings.ig_steps is not None else STEP_LADDER
    tables = []
    for steps in ladder:
        errors = relative_completeness_errors(classifier, waveforms, targets, steps, settings, device)
        tables.append(pd.DataFrame({"steps": steps, "position": np.arange(len(errors)), "relative_error": errors}))
        median = np.nanmedian(errors) if np.isfinite(errors).any() else np.nan
        if not np.isfinite(median) or median <= settings.ig_max_error:  # no clip to judge by: more steps tell nothing
            break
    table = pd.concat(tables, ignore_index=True)
    table["chosen"] = table.steps == table.steps.iloc[-1]
    return table


def sizing_key(identity: tuple, settings: AttributionSettings, clips: str, device: torch.device) -> str:
    """The attribution store's name for the step choice on these clips (`clips`: their `content_hash`)."""
    return AttributionStore.key(kind="ig_completeness", classifier=identity, settings=map_settings(settings, ("ig_steps",)),
                                bound=settings.ig_max_error, ladder=STEP_LADDER, clips=clips, device=device.type)


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
