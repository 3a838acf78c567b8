"""The removal check: what a classifier loses when a band is taken out of the original clips.

A probe proposes ("the gain sank in 4.5-7.2 kHz"); removal confirms. Each candidate band is cut from the
ORIGINAL clips with a steep zero-phase band-stop filter, the classifier scores the filtered clips against the
unfiltered ones, clip by clip, and the drop in points (accuracy with labels, agreement with its own decisions
without) decides the words:

- "can do without A": removing A costs less than the margin (non-inferiority: the one-sided upper bound of the
  drop lies below the margin);
- "needs B": removing B costs more than the margin (the one-sided lower bound lies above it);
- anything else: undecided.

The filter: a Kaiser-window FIR band-stop of `attenuation_db` (80 dB: its stop-band ripple stays below it),
applied forwards in full and centred (a symmetric FIR so applied has zero phase). The stop band is the range
itself; each transition lies outside it, `transition_octaves` of its edge wide (at least `min_transition_hz`),
so the whole range is attenuated and the neighbours only near its edges. A range reaching 0 Hz or Nyquist makes
a high-pass or a low-pass.

The interval of the drop: Newcombe's hybrid score interval for a difference of paired proportions (Newcombe
1998, method 10, with his corrected phi), which keeps its coverage with few or no discordant clips where a Wald or bootstrap interval
collapses to a point; clips cut from one source recording are not independent, so the counts are shrunk to the
effective sample size (Kish's design effect: the cluster-robust over the naive variance of the per-clip
difference, at least 1).
"""
from __future__ import annotations

import math

import numpy as np

from probe.analyses.config import RemovalSettings
from probe.analyses.stats import mean_and_se


def transition_hz(edge_hz: float, settings: RemovalSettings) -> float:
    return max(settings.min_transition_hz, edge_hz * (2 ** settings.transition_octaves - 1))


def leaves_something(low_hz: float, high_hz: float, sample_rate: int, settings: RemovalSettings = RemovalSettings()) -> bool:
    """Whether removing `low_hz`-`high_hz` leaves any band room for a transition (else it removes everything)."""
    return (low_hz > 0 and low_hz - transition_hz(low_hz, settings) > 0) or \
        (high_hz < sample_rate / 2 and high_hz + transition_hz(high_hz, settings) < sample_rate / 2)


def design_bandstop(low_hz: float, high_hz: float, sample_rate: int, settings: RemovalSettings = RemovalSettings()) -> np.ndarray:
    """The taps of a zero-phase (odd, symmetric) FIR that removes `low_hz`-`high_hz` by at least
    `settings.attenuation_db`: a band-stop, a high-pass (from 0 Hz) or a low-pass (to Nyquist)."""
    from scipy.signal import firwin, kaiser_beta, kaiserord

    nyquist = sample_rate / 2
    lower = low_hz > 0 and low_hz - transition_hz(low_hz, settings) > 0
    upper = high_hz < nyquist and high_hz + transition_hz(high_hz, settings) < nyquist
    if not (lower or upper):
        raise ValueError(f"removing {low_hz:g}-{high_hz:g} Hz at {sample_rate} Hz leaves nothing")
    widths = [transition_hz(low_hz, settings)] * lower + [transition_hz(high_hz, settings)] * upper
    width = min(widths)
    taps, _ = kaiserord(settings.attenuation_db, width / nyquist)
    taps += 1 - taps % 2  # odd: a type I filter, centred on a sample
    beta = kaiser_beta(settings.attenuation_db)
    if lower and upper:
        cutoffs, pass_zero = [low_hz - width / 2, high_hz + width / 2], "bandstop"
    elif upper:  # from 0 Hz: what is left is above the range
        cutoffs, pass_zero = [high_hz + width / 2], "highpass"
    else:
        cutoffs, pass_zero = [low_hz - width / 2], "lowpass"
    return firwin(taps, cutoffs, window=("kaiser", beta), pass_zero=pass_zero, fs=sample_rate)


def remove_bands(waveforms: np.ndarray, sample_rate: int, ranges_hz: list[tuple[float, float]],
                 settings: RemovalSettings = RemovalSettings()) -> np.ndarray:
    """`waveforms` (N, L) with every range removed, one zero-phase filter after another; the length is kept."""
    from scipy.signal import fftconvolve

    out = np.asarray(waveforms, dtype=np.float64)
    for low_hz, high_hz in ranges_hz:
        if not leaves_something(low_hz, high_hz, sample_rate, settings):
            return np.zeros_like(out, dtype=np.float32)  # the whole spectrum removed: silence
        taps = design_bandstop(low_hz, high_hz, sample_rate, settings)
        out = fftconvolve(out, taps[None, :], mode="same", axes=-1)
    return out.astype(np.float32)


def _wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_drop(before: np.ndarray, after: np.ndarray, units: np.ndarray | None = None,
                alpha: float = 0.05) -> tuple[float, float, float]:
    """The drop in points from `before` to `after` (per clip: correct or not), with one-sided (1 - alpha) bounds:
    (drop, lower, upper). Newcombe's method 10 on the counts shrunk by the design effect of `units`."""
    from scipy.stats import norm


    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    n = len(before)
    difference = before.astype(np.float64) - after.astype(np.float64)
    _, naive_se, _ = mean_and_se(difference[:, None])
    _, cluster_se, _ = mean_and_se(difference[:, None], units)
    design_effect = float(max(1.0, (cluster_se[0] / naive_se[0]) ** 2)) if naive_se[0] > 0 else 1.0
    scale = 1.0 / design_effect
    a = float(np.sum(before & after)) * scale
    b = float(np.sum(before & ~after)) * scale
    c = float(np.sum(~before & after)) * scale
    d = float(np.sum(~before & ~after)) * scale
    m = a + b + c + d
    z = norm.ppf(1 - alpha)
    p1, p2 = (a + b) / m, (a + c) / m
    l1, u1 = _wilson(a + b, m, z)
    l2, u2 = _wilson(a + c, m, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    # Newcombe's corrected phi: the plain correlation is 1 when no clip changed (b = c = 0) and some are wrong either
    # way, and the interval then collapses to [0, 0] whatever the count of clips
    phi = ((max(a * d - b * c - m / 2, 0.0) if a * d > b * c else a * d - b * c) / math.sqrt(margins)
           if margins > 0 else 0.0)
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    drop = (before.mean() - after.mean()) if n else float("nan")
    return 100 * drop, 100 * (p1 - p2 - delta), 100 * (p1 - p2 + epsilon)


def decide(lower: float, upper: float, margin: float) -> str:
    """`costs less` (non-inferior), `costs more` (superior), else `undecided`."""
    if upper < margin:
        return "costs less"
    if lower > margin:
        return "costs more"
    return "undecided"
