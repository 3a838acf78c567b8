"""The study's chain as one module.

waveform at the classifier's rate (32 kHz) -> resample to the autoencoder's rate (48 kHz)
-> duplicate to the AE's channels (stereo) -> autoencoder -> average to mono -> resample
back -> the frozen classifier (with its own front-end) -> logits.
"""
from __future__ import annotations

import torch
from torch import nn

from probe.audio import make_resampler, to_mono, to_stereo
from probe.models.base import WaveformClassifier


class FrozenContractError(AssertionError):
    """The classifier behind the probe was found trainable or in train mode."""


class ProbePipeline(nn.Module):
    """Autoencoder in front of a frozen classifier: waveform (B, L) -> logits (B, classes)."""

    def __init__(self, autoencoder: nn.Module | None, classifier: WaveformClassifier) -> None:
        """`autoencoder`: a WaveformAutoencoder, or any module with sample_rate, channels and (B, C, L) -> (B, C, L)."""
        super().__init__()
        if not isinstance(classifier, WaveformClassifier):
            raise TypeError(f"ProbePipeline takes a probe classifier, not a {type(classifier).__name__}: wrap a module "
                            "with probe.wrap(module, sample_rate=RATE, class_names=[...])")
        self.autoencoder = autoencoder
        self.classifier = classifier.freeze()
        if autoencoder is not None and not autoencoder.sample_rate:
            autoencoder.sample_rate = classifier.sample_rate  # probes such as spectral_gain run at the classifier's rate
        ae_rate = autoencoder.sample_rate if autoencoder is not None else classifier.sample_rate
        self.to_ae_rate = make_resampler(classifier.sample_rate, ae_rate)
        self.to_classifier_rate = make_resampler(ae_rate, classifier.sample_rate)

    @property
    def sample_rate(self) -> int:
        return self.classifier.sample_rate

    def reconstruct(self, waveform: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The autoencoder's reconstruction of a mono waveform (B, L), returned at the classifier's rate.

        `labels` go to a class-conditional probe (one spectral gain per class); others take none.
        """
        if self.autoencoder is None:
            return waveform
        length = waveform.shape[-1]
        x = self.to_ae_rate(waveform).unsqueeze(1)
        if self.autoencoder.channels == 2:
            x = to_stereo(x)
        y = to_mono(self.autoencoder(x) if labels is None else self.autoencoder(x, labels)).squeeze(1)
        return self.to_classifier_rate(y)[..., :length]

    def forward(self, waveform: torch.Tensor, with_reconstruction: bool = False, labels: torch.Tensor | None = None):
        """Logits, or (logits, reconstruction) for losses that need both (keywords DDP passes through)."""
        if with_reconstruction:
            return self.forward_with_reconstruction(waveform, labels)
        self.check_frozen()
        return self.classifier(self.reconstruct(waveform, labels))

    def forward_with_reconstruction(self, waveform: torch.Tensor,
                                    labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, reconstruction), for training losses that need both."""
        self.check_frozen()
        reconstruction = self.reconstruct(waveform, labels)
        return self.classifier(reconstruction), reconstruction

    def check_frozen(self) -> None:
        """Assert the frozen contract: no classifier weight requires grad and no submodule is in train mode."""
        trainable = [n for n, p in self.classifier.named_parameters() if p.requires_grad]
        if trainable:
            raise FrozenContractError(f"classifier parameters require grad: {trainable[:3]}")
        training = [n for n, m in self.classifier.named_modules() if m.training]
        if training:
            raise FrozenContractError(f"classifier modules in train mode: {training[:3]}")
