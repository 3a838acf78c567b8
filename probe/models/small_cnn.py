"""A small CNN on a log-mel front-end: the classifier of the tests and the CPU demo.

It trains in seconds on a CPU, has BatchNorm (so the frozen contract is tested for real)
and its front-end is the same MelFrontEnd as mn10's, at any sample rate.
"""
from __future__ import annotations

import torch
from torch import nn

from probe.models.base import WaveformClassifier, default_class_names
from probe.models.frontend import MelConfig, MelFrontEnd
from probe.models.registry import register_classifier

HEAD_KEYS = ("head.weight", "head.bias")


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU blocks with pooling, then an average pool and a linear head.

    `pooling="global"` averages over frequency and time, so a pattern counts wherever it sits in
    frequency; `pooling="time"` keeps the frequency axis, so the head knows *where* a pattern is:
    the demo uses it to plant reliance on one band.
    """

    def __init__(self, num_classes: int, channels: int = 16, pooling: str = "global", n_mels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for i in range(4):
            out_channels = channels * 2 ** min(i, 2)
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.MaxPool2d(2) if i < 3 else nn.Identity(),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        if pooling not in ("global", "time"):
            raise ValueError(f"pooling is 'global' or 'time', got {pooling!r}")
        self.pooling = pooling
        width = in_channels * (n_mels // 8 if pooling == "time" else 1)  # three 2x max-pools
        self.head = nn.Linear(width, num_classes)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(mel)
        embedding = features.mean(dim=(2, 3)) if self.pooling == "global" else features.mean(dim=3).flatten(1)
        return self.head(embedding), embedding


@register_classifier(
    "small_cnn", sample_rate=32000, head_keys=HEAD_KEYS,
    description="small 4-block CNN on log-mel (tests and the CPU demo); any sample rate via sample_rate=",
)
def build_small_cnn(
    num_classes: int = 50, trained: bool = False, sample_rate: int = 32000, n_mels: int = 64, channels: int = 16,
    pooling: str = "global",
) -> WaveformClassifier:
    # Window and hop scale with the rate so that a frame is always 25 ms with a 10 ms hop.
    config = MelConfig(
        sample_rate=sample_rate,
        n_fft=1 << (int(0.032 * sample_rate) - 1).bit_length(),
        win_length=int(0.025 * sample_rate),
        hop_length=int(0.010 * sample_rate),
        n_mels=n_mels,
        fmax_hz=sample_rate / 2,
        fmax_aug_range=1,
    )
    classifier = WaveformClassifier(
        "small_cnn", MelFrontEnd(config), SmallCNN(num_classes, channels, pooling, n_mels), sample_rate=sample_rate,
        class_names=default_class_names(num_classes),
        options={"sample_rate": sample_rate, "n_mels": n_mels, "channels": channels, "pooling": pooling},
        head_keys=HEAD_KEYS,
    )
    classifier.min_frames = 8  # three 2x max-pools need 8 frames to leave one
    return classifier
