"""Means with bootstrap confidence intervals, paired tests per band, and multiple-test corrections."""
from __future__ import annotations

from typing import Callable

import numpy as np


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, n_boot: int = 2000,
                      rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 with a percentile bootstrap interval: (mean, low, high), each shaped values.shape[1:].

    NaN entries are left out (a column's mean is over its finite values; NaN where it has fewer than
    two). Resampling is done with multinomial weights, so a (n_boot, N) @ (N, bands) product replaces
    n_boot fancy-indexing copies of the data.
    """
    rng = rng or np.random.default_rng(0)
    values = np.asarray(values, dtype=np.float64)
    n, shape = values.shape[0], values.shape[1:]
    flat = values.reshape(n, -1)
    present = np.isfinite(flat)
    filled = np.where(present, flat, 0.0)
    counts = present.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, filled.sum(0) / counts, np.nan)
    low, high = np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    enough = counts >= 2
    if n >= 2 and enough.any():
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = weights @ filled if present.all() else (weights @ filled) / (weights @ present)
        alpha = (1 - level) / 2
        low[enough], high[enough] = np.nanquantile(boots[:, enough], [alpha, 1 - alpha], axis=0)
    return mean.reshape(shape), low.reshape(shape), high.reshape(shape)


def wilcoxon_per_column(differences: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-value per column of paired differences (N, bands), NaNs left out;
    1 where fewer than two remain or all are zero."""
    from scipy.stats import wilcoxon

    differences = np.asarray(differences, dtype=np.float64)
    p_values = np.ones(differences.shape[1])
    for column in range(differences.shape[1]):
        d = differences[:, column]
        d = d[np.isfinite(d)]
        if len(d) >= 2 and np.any(d != 0):
            p_values[column] = float(wilcoxon(d, zero_method="wilcox").pvalue)
    return p_values


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


CORRECTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"holm": holm, "fdr": benjamini_hochberg}
