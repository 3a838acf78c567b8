"""The spectral-gain probe: a learnable gain per frequency; its curve says which frequencies the classifier needs.

Trained on cross-entropy plus a parsimony term, the mean linear gain over its 64 mel-spaced bands
(a "preservation game"). Being a mean over mel bands, the term weighs a high-frequency hertz less than a
low one: bands are narrow at low frequencies, wide at high ones.
"""
from __future__ import annotations

from typing import Any

from probe.probes import Curve, Penalty, ProbeSpec, register_probe

GAIN = Curve("gain_db", "gain (dB)", floor_key="gain_floor_db")
GAIN_PER_CLASS = Curve("gain_db_per_class", "gain (dB)", per_class=True)


def mean_gain(model, x, reconstruction, labels):
    return model.mean_linear_gain(labels)


def save_curves(model) -> dict[str, Any]:
    """The gain per STFT bin; with one curve per class, those and their mean (the classifier's curve)."""
    import numpy as np
    import torch

    with torch.no_grad():
        gain = model.gain_db().cpu().numpy()
    frequencies = model.frequencies_hz().numpy()
    curves = {}
    if gain.ndim == 2:
        curves[GAIN_PER_CLASS.name] = np.vstack([frequencies, gain])
        gain = gain.mean(0)
    curves[GAIN.name] = np.stack([frequencies, gain])
    return curves


register_probe(ProbeSpec(
    name="spectral-gain", model="spectral_gain", learning_rate=0.05, epochs=20,
    description="a learnable gain per frequency, seconds on a CPU",
    penalty=Penalty("gain", 0.1, "mean gain", mean_gain,
                    help="weight of the mean-gain (parsimony) term of --probe spectral-gain"),
    per_class=True, curves=(GAIN, GAIN_PER_CLASS), save_curves=save_curves,
    record=lambda model: {"gain_floor_db": model.floor_db},
    caveat=("its parsimony term is the mean gain over 64 mel-spaced bands, which weighs a low hertz more than a high "
            "one (at 16 kHz: 16 bands per kHz in 150-1800 Hz, 4 in 4500-7200 Hz); it is biased towards dropping low "
            "frequencies, so a low band it does not need is weaker evidence than a high one"),
))
