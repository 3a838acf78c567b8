"""The no-probe control: no autoencoder, run through the same pipeline, training and analyses; nothing trains.

At the classifier's rate (the default) its reconstruction is the original, so every shift it
shows is zero and its accuracy is the bare classifier's. With `sample_rate=48000, channels=2`
it measures the study's resampling and stereo round trip alone, without any autoencoder, so
that an effect of the chain is not read as the classifier's preference.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from probe.models.checkpoint import AUTOENCODER_FORMAT
from probe.probes.base import ProbeSpec, probe_module, register_probe


class Identity(nn.Module):
    """(batch, channels, samples) -> the same tensor; nothing to train."""

    name = "identity"

    def __init__(self, sample_rate: int | None = None, channels: int = 1) -> None:
        super().__init__()
        if channels not in (1, 2):
            raise ValueError(f"identity takes 1 or 2 channels, got {channels}")
        self.sample_rate, self.channels = sample_rate, channels
        self._requested_rate = sample_rate

    @property
    def options(self) -> dict[str, Any]:
        return {"sample_rate": self._requested_rate, "channels": self.channels}

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return waveform

    def checkpoint(self) -> dict[str, Any]:
        return {"format": AUTOENCODER_FORMAT, "autoencoder": self.name, "config": self.options, "options": self.options,
                "state_dict": {}}


def build_identity(seed: int = 0, sample_rate: int | None = None, channels: int = 1) -> Identity:
    return Identity(sample_rate, channels)


register_probe(ProbeSpec(
    name="identity", learning_rate=3e-5, epochs=0, control=True,
    description="the no-autoencoder control (nothing trains)",
    modules=(probe_module("identity", build_identity, sample_rate=0,
                          description="the no-autoencoder control (runs at the classifier's rate; sample_rate=48000 "
                                      "channels=2 isolates the study's resampling chain); use with probe finetune "
                                      "--probe identity"),),
))
