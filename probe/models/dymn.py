"""EfficientAT's Dynamic MobileNet (`dymn10`), written for probe.

Module names follow EfficientAT (models/dymn) so that its state_dicts (`in_c.*`,
`layers.N.*`, `out_c.*`, `classifier.5.*`, 578 keys) load strictly.
Schmid, Koutini & Widmer, "Dynamic Convolutional Neural Networks as Efficient
Pre-trained Audio Models", IEEE/ACM TASLP 2024.

The dynamic-convolution temperature is not stored in checkpoints. Upstream, a model built
from a trained checkpoint runs at the end of its schedule (1.0), and one built from scratch
starts at 30 and anneals; `DynamicConv.temperature` holds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from probe.models.mobilenet import (
    LAST_CHANNEL,
    BatchNorm2d,
    ConvBnAct,
    block_configs,
    init_weights,
    make_divisible,
    mlp_head,
)

TRAINED_TEMPERATURE = 1.0
SCRATCH_TEMPERATURE = 30.0


@dataclass(frozen=True)
class DynamicParts:
    """Which dynamic components a DyMN uses; the study's ablations switch them off."""

    dynamic_conv: bool = True
    dynamic_relu: bool = True
    coordinate_attention: bool = True


class PassContext(nn.Module):
    """Wrap a plain module so it takes (x, context) like the dynamic ones (EfficientAT's DynamicWrapper)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, context: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.module(x)


class DynamicConv(nn.Module):
    """A convolution whose kernel is a softmax(context / T)-weighted mix of k kernels (Eq. 6 of the paper)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        context_dim: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        padding: int = 0,
        groups: int = 1,
        k: int = 4,
        temperature: float = SCRATCH_TEMPERATURE,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation, self.padding, self.groups = kernel_size, stride, dilation, padding, groups
        self.k = k
        self.temperature = temperature
        self.residuals = nn.Sequential(nn.Linear(context_dim, k))
        kernels = torch.empty(k, out_channels, in_channels // groups, kernel_size, kernel_size)
        for i in range(k):
            nn.init.kaiming_normal_(kernels[i], mode="fan_out")
        # Stored as (1, attention groups = 1, k, out * in/groups * kh * kw), EfficientAT's layout.
        self.weight = nn.Parameter(kernels.view(1, 1, k, -1))

    def forward(self, x: torch.Tensor, context: tuple[torch.Tensor, ...]) -> torch.Tensor:
        batch, _, freq, time = x.shape
        logits = self.residuals(context[0].view(batch, -1)).view(batch, 1, 1, -1)
        attention = F.softmax(logits / self.temperature, dim=-1)
        kernels = (attention @ self.weight).transpose(1, 2).reshape(
            batch * self.out_channels, self.in_channels // self.groups, self.kernel_size, self.kernel_size
        )
        # One grouped convolution for the whole batch: each sample has its own kernel.
        out = F.conv2d(
            x.reshape(1, -1, freq, time),
            kernels,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups * batch,
        )
        return out.view(batch, self.out_channels, out.shape[-2], out.shape[-1])


class DynamicReLU(nn.Module):
    """Dy-ReLU-B (Chen et al., 2020): per-channel max of M context-dependent linear maps."""

    def __init__(self, channels: int, context_dim: int, pieces: int = 2) -> None:
        super().__init__()
        self.channels, self.pieces = channels, pieces
        self.coef_net = nn.Sequential(nn.Linear(context_dim, 2 * pieces * channels))
        self.register_buffer("lambdas", torch.tensor([1.0] * pieces + [0.5] * pieces))
        self.register_buffer("init_v", torch.tensor([1.0] + [0.0] * (2 * pieces - 1)))

    def forward(self, x: torch.Tensor, context: tuple[torch.Tensor, ...]) -> torch.Tensor:
        batch = x.shape[0]
        theta = 2 * torch.sigmoid(self.coef_net(context[0].view(batch, -1))) - 1
        coefs = theta.view(-1, self.channels, 1, 1, 2 * self.pieces) * self.lambdas + self.init_v
        mapped = x.unsqueeze(-1) * coefs[..., : self.pieces] + coefs[..., self.pieces :]
        return mapped.max(dim=-1).values


class CoordinateAttention(nn.Module):
    """Recalibrate with sigmoid gates over frequency and over time (Hou et al., 2021)."""

    def forward(self, x: torch.Tensor, context: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return x * context[1].sigmoid() * context[2].sigmoid()


class ContextGenerator(nn.Module):
    """Pools the block input over time and over frequency into the context that drives the dynamic parts."""

    def __init__(self, context_dim: int, in_channels: int, expanded_channels: int, stride: int) -> None:
        super().__init__()
        self.joint_conv = nn.Conv2d(in_channels, context_dim, 1, bias=False)
        self.joint_norm = BatchNorm2d(context_dim)
        self.joint_act = nn.Hardswish()
        self.conv_f = nn.Conv2d(context_dim, expanded_channels, 1)
        self.conv_t = nn.Conv2d(context_dim, expanded_channels, 1)
        if stride > 1:
            self.pool_f: nn.Module = nn.AvgPool2d((3, 1), stride=(stride, 1), padding=(1, 0))
            self.pool_t: nn.Module = nn.AvgPool2d((1, 3), stride=(1, stride), padding=(0, 1))
        else:
            self.pool_f = nn.Identity()
            self.pool_t = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        per_freq = x.mean(dim=3, keepdim=True)
        per_time = x.mean(dim=2, keepdim=True).permute(0, 1, 3, 2)
        freq_len = per_freq.shape[2]
        joint = self.joint_act(self.joint_norm(self.joint_conv(torch.cat([per_freq, per_time], dim=2))))
        h_freq, h_time = joint[:, :, :freq_len], joint[:, :, freq_len:].permute(0, 1, 3, 2)
        h_channel = joint.mean(dim=2, keepdim=True)
        return h_channel, self.conv_f(self.pool_f(h_freq)), self.conv_t(self.pool_t(h_time))


class DynamicBlock(nn.Module):
    """EfficientAT's DY_Block: an inverted residual whose convs, ReLU and attention depend on a context."""

    def __init__(self, cfg, parts: DynamicParts, temperature: float, width_mult: float = 1.0) -> None:
        super().__init__()
        self.use_residual = cfg.stride == 1 and cfg.input_channels == cfg.out_channels
        context_dim = int(
            min(
                max(make_divisible(cfg.expanded_channels // 4), make_divisible(32 * width_mult)),
                make_divisible(128 * width_mult),
            )
        )
        activation = nn.Hardswish if cfg.use_hardswish else nn.ReLU
        stride = 1 if cfg.dilation > 1 else cfg.stride
        padding = (cfg.kernel - 1) // 2 * cfg.dilation

        def conv(in_c: int, out_c: int, kernel: int, conv_stride: int = 1, groups: int = 1, pad: int = 0, dil: int = 1) -> nn.Module:
            if parts.dynamic_conv:
                return DynamicConv(in_c, out_c, context_dim, kernel, conv_stride, dil, pad, groups, temperature=temperature)
            return PassContext(nn.Conv2d(in_c, out_c, kernel, conv_stride, pad, dilation=dil, groups=groups, bias=False))

        if cfg.expanded_channels != cfg.input_channels:
            self.exp_conv = conv(cfg.input_channels, cfg.expanded_channels, 1)
            self.exp_norm: nn.Module = BatchNorm2d(cfg.expanded_channels)
            self.exp_act = PassContext(activation())
        else:
            self.exp_conv = PassContext(nn.Identity())
            self.exp_norm = nn.Identity()
            self.exp_act = PassContext(nn.Identity())
        self.depth_conv = conv(
            cfg.expanded_channels, cfg.expanded_channels, cfg.kernel, stride, cfg.expanded_channels, padding, cfg.dilation
        )
        self.depth_norm = BatchNorm2d(cfg.expanded_channels)
        self.depth_act: nn.Module = (
            DynamicReLU(cfg.expanded_channels, context_dim) if parts.dynamic_relu else PassContext(activation())
        )
        self.ca: nn.Module = CoordinateAttention() if parts.coordinate_attention else PassContext(nn.Identity())
        self.proj_conv = conv(cfg.expanded_channels, cfg.out_channels, 1)
        self.proj_norm = BatchNorm2d(cfg.out_channels)
        self.context_gen = ContextGenerator(context_dim, cfg.input_channels, cfg.expanded_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.context_gen(x)
        out = self.exp_act(self.exp_norm(self.exp_conv(x, context)), context)
        out = self.depth_act(self.depth_norm(self.depth_conv(out, context)), context)
        out = self.ca(out, context)
        out = self.proj_norm(self.proj_conv(out, context))
        return out + x if self.use_residual else out


class DyMN(nn.Module):
    """dymn10: log-mel (B, 1, F, T) -> (logits (B, classes), embedding (B, channels))."""

    def __init__(
        self,
        num_classes: int = 527,
        width_mult: float = 1.0,
        parts: DynamicParts = DynamicParts(),
        temperature: float = SCRATCH_TEMPERATURE,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        configs = block_configs(width_mult)
        self.in_c = ConvBnAct(in_channels, configs[0].input_channels, 3, stride=2)
        self.layers = nn.ModuleList([DynamicBlock(cfg, parts, temperature, width_mult) for cfg in configs])
        last_in = configs[-1].out_channels
        self.out_c = ConvBnAct(last_in, 6 * last_in, 1)
        self.classifier = mlp_head(6 * last_in, make_divisible(LAST_CHANNEL * width_mult), num_classes)
        init_weights(self)

    def set_temperature(self, temperature: float) -> None:
        """Set the softmax temperature of every dynamic convolution."""
        for module in self.modules():
            if isinstance(module, DynamicConv):
                module.temperature = temperature

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.in_c(mel)
        for layer in self.layers:
            x = layer(x)
        x = self.out_c(x)
        return self.classifier(x), x.mean(dim=(2, 3))

