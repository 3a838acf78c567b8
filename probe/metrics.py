"""Scores that training and the analyses share (numpy only)."""
from __future__ import annotations

import numpy as np


def mean_average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Mean over the classes with at least one positive clip of the average precision of `scores` (clips, classes)
    at ranking them: the sum over distinct score thresholds of precision times the gain in recall, tied scores taken
    together (sklearn's `average_precision_score`; AudioSet's mAP, Gemmeke et al., ICASSP 2017). A constant score
    gets the positives' share, wherever they sit. NaN with no positive at all."""
    precisions = []
    for column in np.flatnonzero(positives.any(0)):
        order = np.argsort(-scores[:, column], kind="stable")
        ranked, hits = scores[order, column], positives[order, column].astype(np.float64)
        last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # where each distinct score ends
        true_positives = np.cumsum(hits)[last_of_tie]
        precision = true_positives / (last_of_tie + 1)
        recall_gain = np.diff(np.r_[0.0, true_positives]) / hits.sum()
        precisions.append(float((precision * recall_gain).sum()))
    return float(np.mean(precisions)) if precisions else float("nan")
