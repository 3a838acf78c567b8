"""A virtual inspection layer: attribution in time and frequency for a network that reads the waveform.

A waveform-in classifier (wav2vec2 and its kin, a user's 1-D CNN) has no spectrogram to attribute to, and an
attribution map over samples says nothing of frequency, the question probe exists to answer. Following
Vielhaben et al. (2023, "Explainable AI for time series via virtual inspection layers", the DFT-LRP idea), an
STFT and its exact inverse are put in front of the network: the composed graph computes the same function
(istft(stft(x)) = x for a Hann window at a quarter-window hop), and an attribution taken with respect to the
STFT coefficients lands on time-frequency bins. The coefficients are held as (B, 2, F, T), real and imaginary
parts as two channels, so every attribution method and analysis reads them as it reads a mel network's input
(B, 1, F, T): a bin's attribution is the sum over both channels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

INSPECTION_WINDOW_S = 0.032
"""The STFT window, about 32 ms (a power of two in samples, at most `MAX_N_FFT`): 31 Hz bins at 16 kHz."""
MAX_N_FFT = 1024
"""At most this many samples, so that each bin spans at least four of the analyses' FFT bins (4096 points) and can
carry a verdict: 21 ms at 48 kHz."""


@dataclass(frozen=True)
class InspectionConfig:
    """The inspection layer's STFT: Hann window of `n_fft` samples, a quarter-window hop, centred frames."""

    sample_rate: int
    n_fft: int
    hop_length: int

    @classmethod
    def for_rate(cls, sample_rate: int) -> "InspectionConfig":
        n_fft = min(MAX_N_FFT, 1 << max(4, round(math.log2(INSPECTION_WINDOW_S * sample_rate))))
        return cls(int(sample_rate), n_fft, n_fft // 4)

    def bin_edges_hz(self) -> np.ndarray:
        """(bins, 3): each STFT bin's low edge, centre and high edge in Hz (half a bin either side, within 0 to
        Nyquist)."""
        width = self.sample_rate / self.n_fft
        centres = np.arange(self.n_fft // 2 + 1) * width
        return np.stack([np.maximum(centres - width / 2, 0.0), centres,
                         np.minimum(centres + width / 2, self.sample_rate / 2)], axis=1)


class InspectionLayer:
    """The attribution view of a waveform classifier: `mel(waveform)` gives the STFT coefficients (B, 2, F, T);
    `logits_from_mel(coefficients)` inverts them exactly and runs the classifier. The two names are those every
    attribution reads from a classifier."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        self.classifier = classifier
        self.config = InspectionConfig.for_rate(classifier.sample_rate)
        self.length: int | None = None

    def _window(self, device: torch.device) -> torch.Tensor:
        return torch.hann_window(self.config.n_fft, device=device)

    def mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, 2, F, T); remembers L, which the inverse needs (T frames fit a hop's worth of lengths)."""
        self.length = int(waveform.shape[-1])
        coefficients = torch.stft(waveform.float(), self.config.n_fft, self.config.hop_length,
                                  window=self._window(waveform.device), center=True, return_complex=True)
        return torch.stack([coefficients.real, coefficients.imag], dim=1)

    def logits_from_mel(self, coefficients: torch.Tensor) -> torch.Tensor:
        if self.length is None:
            raise RuntimeError("call mel() first: the inverse STFT needs the waveform's length")
        waveform = torch.istft(torch.complex(coefficients[:, 0], coefficients[:, 1]), self.config.n_fft,
                               self.config.hop_length, window=self._window(coefficients.device), center=True,
                               length=self.length)
        return self.classifier(waveform)


def attribution_view(classifier: torch.nn.Module):
    """What attributions read: the classifier itself where its network reads a time-frequency input, else (a
    waveform-in network) its inspection layer, one per classifier (so that measuring its memory per sample
    happens once)."""
    if not getattr(classifier, "waveform_input", False):
        return classifier
    view = classifier.__dict__.get("_inspection_view")
    if view is None:  # kept on the classifier: it lives and goes with it (a cycle the collector frees)
        view = classifier.__dict__["_inspection_view"] = InspectionLayer(classifier)
    return view
