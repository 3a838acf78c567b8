"""EfficientAT's MobileNetV3 for audio (`mn10`), written for probe.

Module names follow EfficientAT (fschmid56/EfficientAT, models/mn) so that its published
state_dicts (`features.0.0.weight` ... `classifier.5.bias`, 312 keys) load strictly.
Schmid, Koutini & Widmer, "Efficient Large-Scale Audio Tagging via Transformer-to-CNN
Knowledge Distillation", ICASSP 2023.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

# EfficientAT trains every BatchNorm with these; eps changes eval-mode outputs, so it must match.
BatchNorm2d = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% below it (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm -> optional activation, indexed 0/1/2 like torchvision's ConvNormActivation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: type[nn.Module] | None = nn.Hardswish,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


@dataclass(frozen=True)
class BlockConfig:
    """One inverted-residual block (MobileNetV3 paper, Table 1/2), channels already width-scaled."""

    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hardswish: bool
    stride: int
    dilation: int = 1


# (input, kernel, expanded, output, squeeze-excitation, activation, stride): MobileNetV3-Large.
MOBILENET_V3_LARGE = [
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]
LAST_CHANNEL = 1280


def block_configs(width_mult: float = 1.0) -> list[BlockConfig]:
    """The 15 MobileNetV3-Large blocks at a given width."""
    scale = lambda c: make_divisible(c * width_mult)  # noqa: E731
    return [
        BlockConfig(scale(i), k, scale(e), scale(o), se, act == "HS", s)
        for i, k, e, o, se, act, s in MOBILENET_V3_LARGE
    ]


class ChannelSqueezeExcitation(nn.Module):
    """Squeeze-and-excitation over channels (Hu et al., 2018): mean over (F, T), two linears, sigmoid gate."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze_channels)
        self.fc2 = nn.Linear(squeeze_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3))
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(scale))))
        return x * scale[:, :, None, None]


class ConcurrentSqueezeExcitation(nn.Module):
    """EfficientAT's container for SE over several axes; mn10 uses channels only, so the max over one is identity."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSqueezeExcitation(channels, make_divisible(channels // reduction))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([layer(x) for layer in self.conc_se_layers])
        return outputs.max(dim=0).values


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (kxk) -> optional SE -> project (1x1), with a residual when shapes allow."""

    def __init__(self, cfg: BlockConfig, use_se: bool = True) -> None:
        super().__init__()
        activation = nn.Hardswish if cfg.use_hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if cfg.expanded_channels != cfg.input_channels:
            layers.append(ConvBnAct(cfg.input_channels, cfg.expanded_channels, 1, activation=activation))
        stride = 1 if cfg.dilation > 1 else cfg.stride
        layers.append(
            ConvBnAct(
                cfg.expanded_channels,
                cfg.expanded_channels,
                cfg.kernel,
                stride=stride,
                dilation=cfg.dilation,
                groups=cfg.expanded_channels,
                activation=activation,
            )
        )
        if cfg.use_se and use_se:
            layers.append(ConcurrentSqueezeExcitation(cfg.expanded_channels))
        layers.append(ConvBnAct(cfg.expanded_channels, cfg.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = cfg.stride == 1 and cfg.input_channels == cfg.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


def mlp_head(in_channels: int, hidden: int, num_classes: int, dropout: float = 0.2) -> nn.Sequential:
    """EfficientAT's MLP head: pool, flatten, linear, hardswish, dropout, linear (keys classifier.2 and .5)."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(start_dim=1),
        nn.Linear(in_channels, hidden),
        nn.Hardswish(),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, num_classes),
    )


def init_weights(model: nn.Module) -> None:
    """EfficientAT's initialisation: Kaiming (fan-out) convs, unit norms, N(0, 0.01) linears."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class MobileNetV3(nn.Module):
    """mn10 and its widths: log-mel (B, 1, F, T) -> (logits (B, classes), embedding (B, channels))."""

    def __init__(self, num_classes: int = 527, width_mult: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        configs = block_configs(width_mult)
        first = configs[0].input_channels
        last_in = configs[-1].out_channels
        last_out = 6 * last_in
        layers: list[nn.Module] = [ConvBnAct(in_channels, first, 3, stride=2)]
        layers += [InvertedResidual(cfg) for cfg in configs]
        layers.append(ConvBnAct(last_in, last_out, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = mlp_head(last_out, make_divisible(LAST_CHANNEL * width_mult), num_classes)
        init_weights(self)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(mel)
        embedding = x.mean(dim=(2, 3))
        return self.classifier(x), embedding
