"""Cross-classifier comparison: one classifier's finetuned AE judged by another classifier (Palacio et al.'s transfer test)."""
from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import torch

from probe.analyses.runs import RunOutputs
from probe.models.classifiers import WaveformClassifier

log = logging.getLogger(__name__)


@torch.no_grad()
def classifier_logits(classifier: WaveformClassifier, waveforms: np.ndarray, sample_rate: int, device: torch.device,
                      batch: int = 16) -> np.ndarray:
    """Logits of a frozen classifier over waveforms at `sample_rate` (resampled to the classifier's rate)."""
    from probe.audio import resample

    out = []
    for start in range(0, len(waveforms), batch):
        x = torch.tensor(np.asarray(waveforms[start : start + batch]), dtype=torch.float32, device=device)
        if sample_rate != classifier.sample_rate:
            x = resample(x, sample_rate, classifier.sample_rate)
        out.append(classifier(x).float().cpu().numpy())
    return np.concatenate(out)


def transfer_table(runs: list[RunOutputs], classifiers: dict[str, WaveformClassifier], device: torch.device) -> pd.DataFrame:
    """Accuracy of every run's classifier on every run's reconstructions (rows: AE's run, columns: classifier's run)."""
    rows = []
    for ae_run, judge_run in itertools.product(runs, runs):
        if ae_run.class_names != judge_run.class_names:
            log.warning("transfer: %s and %s have different classes; skipped", ae_run.label, judge_run.label)
            continue
        classifier = classifiers[judge_run.label]
        row = {"autoencoder_of": ae_run.label, "classifier_of": judge_run.label, "clips": len(ae_run.targets)}
        for condition in ("original", "before", "after"):
            logits = classifier_logits(classifier, ae_run.waveforms(condition), ae_run.sample_rate, device)
            row[f"accuracy_{condition}"] = float((logits.argmax(1) == ae_run.targets).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def profile_divergence(per_group: pd.DataFrame, key: str, band_set: str = "octave", condition: str = "after") -> pd.DataFrame:
    """Per class (or category): the largest RMS difference in dB between two runs' band-shift profiles."""
    frame = per_group[(per_group.band_set == band_set) & (per_group.condition == condition)]
    rows = []
    for group, members in frame.groupby(key, sort=False):
        profiles = {run: part.sort_values("band_index").mean_shift_db.to_numpy() for run, part in members.groupby("run")}
        if len(profiles) < 2:
            continue
        pairs = [(np.sqrt(np.mean((profiles[a] - profiles[b]) ** 2)), a, b) for a, b in itertools.combinations(profiles, 2)]
        distance, first, second = max(pairs)
        rows.append({key: group, "rms_difference_db": float(distance), "most_different": f"{first} vs {second}"})
    return pd.DataFrame(rows).sort_values("rms_difference_db", ascending=False, ignore_index=True) if rows else pd.DataFrame()
