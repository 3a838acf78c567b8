"""The spectral-gain probe: a learnable gain per frequency in front of the frozen classifier.

Trained on cross-entropy plus lambda times the mean linear gain over its 64 mel-spaced bands (a
"preservation game": keep as little as possible while the classifier still works), its gain curve says
which frequencies the classifier needs. It costs seconds on a CPU, so it is the quick first look before
any AE run. Being a mean over mel bands, the term weighs a high-frequency hertz less than a low one:
bands are narrow at low frequencies, wide at high ones. The gain is bounded smoothly,
floor + (ceiling - floor) * sigmoid(raw), and starts at 0 dB; a bin that sinks to the floor is
"not needed", not a measured level.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from probe.models.checkpoint import AUTOENCODER_FORMAT
from probe.probes.base import Curve, Penalty, ProbeSpec, probe_module, register_probe
from probe.progress import EMPTY_MEL_FILTER, without_known_warnings


class SpectralGain(nn.Module):
    """(batch, 1, samples) -> the same signal with a per-bin gain applied through STFT and inverse STFT.

    With `classes` > 0 there is one gain curve per class, and forward takes each clip's label: a
    class's curve is trained on that class's clips only, so it says what the classifier needs for it.
    """

    name = "spectral_gain"
    channels = 1

    def __init__(self, sample_rate: int | None = None, n_fft: int = 1024, hop_length: int = 256, floor_db: float = -60.0,
                 ceiling_db: float = 6.0, smoothing_bins: int = 0, bands: int = 64, classes: int = 0) -> None:
        super().__init__()
        if not floor_db < 0 < ceiling_db:
            raise ValueError(f"the gain range must contain 0 dB, got [{floor_db}, {ceiling_db}]")
        self._sample_rate = sample_rate
        self.n_fft, self.hop_length = n_fft, hop_length
        self.floor_db, self.ceiling_db, self.smoothing_bins, self.bands = floor_db, ceiling_db, smoothing_bins, bands
        self.classes = classes
        start = -floor_db / (ceiling_db - floor_db)  # the sigmoid value that gives 0 dB
        shape = (classes,) * bool(classes) + (bands or n_fft // 2 + 1,)
        self.raw_gain = nn.Parameter(torch.full(shape, math.log(start / (1 - start))))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("band_to_bin", self._band_to_bin() if bands else torch.empty(0), persistent=False)

    def _band_to_bin(self) -> torch.Tensor:
        """(bins, bands): each bin's gain interpolates its mel-spaced bands' (triangles, rows summing to 1).

        Fewer parameters than bins keep the small parsimony gradient above the mini-batch noise of
        the cross-entropy; the bands are placed on the mel scale up to the Nyquist frequency of the rate.
        """
        import torchaudio

        rate = self.sample_rate or 2 * (self.n_fft // 2)
        with without_known_warnings(EMPTY_MEL_FILTER):
            weights = torchaudio.functional.melscale_fbanks(self.n_fft // 2 + 1, 0.0, rate / 2, self.bands, rate)
        weights[0] = torch.nn.functional.one_hot(torch.tensor(0), self.bands).float()  # DC follows the lowest band
        weights[-1] = torch.nn.functional.one_hot(torch.tensor(self.bands - 1), self.bands).float()
        return weights / weights.sum(1, keepdim=True).clamp_min(1e-12)

    @property
    def sample_rate(self) -> int | None:
        return self._sample_rate

    @sample_rate.setter
    def sample_rate(self, rate: int) -> None:
        """Set when the pipeline adopts the classifier's rate; the mel-spaced bands move with it."""
        self._sample_rate = rate
        if self.bands:
            self.band_to_bin = self._band_to_bin().to(self.raw_gain.device)

    @property
    def options(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length, "floor_db": self.floor_db,
                "ceiling_db": self.ceiling_db, "smoothing_bins": self.smoothing_bins, "bands": self.bands,
                "classes": self.classes}

    @property
    def conditional(self) -> bool:
        """Whether forward needs each clip's label (one gain curve per class)."""
        return self.classes > 0

    def parameter_gain_db(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The trained gains in dB: one per band (or per bin when bands=0); per class rows, or the labels' rows."""
        raw = self.raw_gain if labels is None or not self.conditional else self.raw_gain[labels]
        return self.floor_db + (self.ceiling_db - self.floor_db) * torch.sigmoid(raw)

    def gain_db(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The gain per bin in dB, (..., n_fft/2 + 1), optionally smoothed across neighbouring bins.

        (bins,) for a single curve; (classes, bins) for per-class curves, or (batch, bins) for `labels`.
        """
        gain = self.parameter_gain_db(labels)
        if self.bands:
            gain = gain @ self.band_to_bin.T
        if self.smoothing_bins > 1:
            kernel = torch.ones(1, 1, self.smoothing_bins, device=gain.device) / self.smoothing_bins
            flat = gain.reshape(-1, 1, gain.shape[-1])
            gain = nn.functional.conv1d(flat, kernel, padding="same").reshape(gain.shape)
        return gain

    def frequencies_hz(self) -> torch.Tensor:
        rate = self.sample_rate or 2 * (self.n_fft // 2)
        return torch.linspace(0, rate / 2, self.n_fft // 2 + 1)

    def mean_linear_gain(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The parsimony term: the mean amplitude gain over bins (1 at the start); per class, over the labels' curves."""
        return (10 ** (self.parameter_gain_db(labels) / 20)).mean()

    def forward(self, waveform: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if waveform.dim() != 3 or waveform.shape[1] != 1:
            raise ValueError(f"spectral_gain takes (batch, 1, samples), got {tuple(waveform.shape)}")
        if self.conditional and (labels is None or labels.shape != waveform.shape[:1]):
            raise ValueError("a per-class spectral gain needs one label per clip")
        length = waveform.shape[-1]
        x = waveform[:, 0].float()
        spec = torch.stft(x, self.n_fft, self.hop_length, window=self.window, center=True, return_complex=True)
        gain = self.gain_db(labels) if self.conditional else self.gain_db()[None]
        gained = spec * (10 ** (gain / 20))[:, :, None]
        y = torch.istft(gained, self.n_fft, self.hop_length, window=self.window, center=True, length=length)
        return y.unsqueeze(1).to(waveform.dtype)

    def checkpoint(self) -> dict[str, Any]:
        return {"format": AUTOENCODER_FORMAT, "autoencoder": self.name, "config": self.options, "options": self.options,
                "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}


def build_spectral_gain(seed: int = 0, sample_rate: int | None = None, n_fft: int = 1024, hop_length: int = 256,
                        floor_db: float = -60.0, ceiling_db: float = 6.0, smoothing_bins: int = 0,
                        bands: int = 64, classes: int = 0) -> SpectralGain:
    return SpectralGain(sample_rate, n_fft, hop_length, floor_db, ceiling_db, smoothing_bins, bands, classes)


GAIN = Curve("gain_db", "gain (dB)", floor_key="gain_floor_db")
GAIN_PER_CLASS = Curve("gain_db_per_class", "gain (dB)", per_class=True)


def mean_gain(model, x, reconstruction, labels):
    return model.mean_linear_gain(labels)


def save_curves(model) -> dict[str, Any]:
    """The gain per STFT bin; with one curve per class, those and their mean (the classifier's curve)."""
    import numpy as np

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
    name="spectral-gain", learning_rate=0.05, epochs=20, kind=lambda summary: "spectral gain",
    description="a learnable gain per frequency, seconds on a CPU",
    modules=(probe_module("spectral_gain", build_spectral_gain, sample_rate=0,
                          description="the spectral-gain probe: a learnable gain per frequency (64 mel-spaced bands; "
                                      "classes= gives one curve per class; runs at the classifier's rate); use with "
                                      "probe finetune --probe spectral-gain [--per-class]"),),
    penalty=Penalty("gain", 0.1, "mean gain", mean_gain,
                    help="weight of the mean-gain (parsimony) term of --probe spectral-gain"),
    per_class=True, curves=(GAIN, GAIN_PER_CLASS), save_curves=save_curves,
    record=lambda model: {"gain_floor_db": model.floor_db},
    caveat=("its parsimony term is the mean gain over 64 mel-spaced bands, which weighs a low hertz more than a high "
            "one (at 16 kHz: 16 bands per kHz in 150-1800 Hz, 4 in 4500-7200 Hz); it is biased towards dropping low "
            "frequencies, so a low band it does not need is weaker evidence than a high one"),
))
