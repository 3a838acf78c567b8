"""Scores that training and the analyses share (numpy only)."""
from __future__ import annotations

import numpy as np


def mean_average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Mean over the classes with at least one positive clip of the average precision of `scores` (clips, classes)
    at ranking them (AudioSet's mAP; ties broken by clip order). NaN with no positive at all."""
    precisions = []
    for column in np.flatnonzero(positives.any(0)):
        hits = positives[np.argsort(-scores[:, column], kind="stable"), column].astype(np.float64)
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        precisions.append(float((precision_at * hits).sum() / hits.sum()))
    return float(np.mean(precisions)) if precisions else float("nan")
