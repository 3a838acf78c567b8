"""The study's probe: a waveform autoencoder, finetuned on the frozen classifier's loss (Palacio et al., CVPR 2018).

Its modules are ArchiSound's family: `archisound` is autoencoder1d-AT-v1 (48 kHz stereo, about 20.8 M
parameters), `AutoEncoder1d` from audio-encoders-pytorch, the package archisound is built on. The hub's
`pytorch_model.bin` prefixes its keys with `autoencoder.`, which is exactly this module's attribute name,
so the file loads strictly as it is. `random` is the same network Xavier-initialised (the study's random
setting), `tiny` a small one of the same family for tests and the CPU demo.
Schneider, Jin, Schölkopf. Moûsai: Text-to-Music Generation with Long-Context Latent Diffusion. 2023.

Cross-entropy only by default; `--energy-penalty W` adds W times the reconstruction's energy relative to the
input's, so that the AE is pushed to drop what the classifier does not need.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from typing import Any

import torch
from torch import nn

from probe.errors import DownloadError
from probe.models.checkpoint import AUTOENCODER_FORMAT, load_state_dict_strict
from probe.models.registry import WeightSource
from probe.probes.base import Penalty, ProbeSpec, probe_module, register_probe

HUB_REPO = "archinetai/autoencoder1d-AT-v1"
HUB_REVISION = "57b6cde1969208d10fdd3e813708c1abe49f25c1"  # pinned by archisound 0.0.6
CITATION = "Schneider, Jin, Schölkopf. Moûsai: Text-to-Music Generation with Long-Context Latent Diffusion. arXiv 2301.11757, 2023."
ARCHISOUND_WEIGHTS = WeightSource(
    "archisound_at_v1",
    f"https://huggingface.co/{HUB_REPO}/resolve/{HUB_REVISION}/pytorch_model.bin",
    "autoencoder1d-AT-v1.bin",
    note="ArchiSound autoencoder1d-AT-v1 at archisound 0.0.6's pinned revision; 620 keys prefixed 'autoencoder.'",
)


@dataclass(frozen=True)
class AutoencoderConfig:
    """AutoEncoder1d's hyper-parameters; the defaults are autoencoder1d-AT-v1's."""

    in_channels: int = 2
    channels: int = 32
    multipliers: tuple[int, ...] = (1, 2, 4, 8, 8, 8, 1)
    factors: tuple[int, ...] = (2, 2, 2, 1, 1, 1)
    num_blocks: tuple[int, ...] = (2, 2, 8, 8, 8, 8)
    patch_size: int = 4
    sample_rate: int = 48000

    @property
    def length_multiple(self) -> int:
        """Input lengths must be a multiple of this (32 for AT-v1)."""
        return self.patch_size * prod(self.factors)


# Small enough to finetune in seconds on a CPU; two downsampling stages learn to reconstruct far faster than three.
TINY_CONFIG = AutoencoderConfig(channels=8, multipliers=(1, 2, 4), factors=(2, 2), num_blocks=(1, 1), patch_size=2)


class WaveformAutoencoder(nn.Module):
    """(batch, channels, samples) at `sample_rate` -> reconstruction of the same shape.

    Inputs whose length is not a multiple of `length_multiple` are zero-padded on the
    right and the output is cropped back.
    """

    def __init__(self, name: str, config: AutoencoderConfig, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        from audio_encoders_pytorch import AutoEncoder1d, TanhBottleneck

        self.name = name
        self.config = config
        self.options = dict(options or {})
        self.autoencoder = AutoEncoder1d(
            in_channels=config.in_channels,
            channels=config.channels,
            multipliers=list(config.multipliers),
            factors=list(config.factors),
            num_blocks=list(config.num_blocks),
            patch_size=config.patch_size,
            bottleneck=TanhBottleneck(),
        )

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.in_channels

    @property
    def encoder(self) -> nn.Module:
        return self.autoencoder.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.autoencoder.decoder

    def encode(self, waveform: torch.Tensor) -> torch.Tensor:
        """Latent (B, bottleneck channels, samples / length_multiple), tanh-bounded."""
        return self.autoencoder.encoder(self._pad(waveform))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decoder(latent)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"{self.name} takes (batch, {self.channels}, samples), got {tuple(waveform.shape)}")
        length = waveform.shape[-1]
        return self.decode(self.encode(waveform))[..., :length]

    def _pad(self, waveform: torch.Tensor) -> torch.Tensor:
        extra = -waveform.shape[-1] % self.config.length_multiple
        return nn.functional.pad(waveform, (0, extra)) if extra else waveform

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A bare AutoEncoder1d state_dict gets this module's `autoencoder.` prefix (the hub's file has it)."""
        if any(key.startswith("autoencoder.") for key in state):
            return state
        return {f"autoencoder.{key}": value for key, value in state.items()}

    def checkpoint(self) -> dict[str, Any]:
        """This project's checkpoint format: the state_dict plus what rebuilds the module."""
        return {
            "format": AUTOENCODER_FORMAT,
            "autoencoder": self.name,
            "config": asdict(self.config),
            "options": self.options,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }


def xavier_init(module: nn.Module, seed: int) -> None:
    """The study's random setting: Xavier-uniform convs and linears, zero biases, unit GroupNorms."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            limit = (6.0 / (fan_in + fan_out)) ** 0.5
            with torch.no_grad():
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * limit - limit)
                if layer.bias is not None:
                    layer.bias.zero_()
        elif isinstance(layer, nn.GroupNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def build_archisound(seed: int = 0) -> WaveformAutoencoder:
    torch.manual_seed(seed)
    return WaveformAutoencoder("archisound", AutoencoderConfig())


def build_random(seed: int = 0) -> WaveformAutoencoder:
    model = WaveformAutoencoder("random", AutoencoderConfig(), {"seed": seed})
    xavier_init(model, seed)
    return model


def build_tiny(seed: int = 0, sample_rate: int = 48000, channels: int = 2, width: int = TINY_CONFIG.channels) -> WaveformAutoencoder:
    config = AutoencoderConfig(**{**asdict(TINY_CONFIG), "sample_rate": sample_rate, "in_channels": channels, "channels": width})
    options = {"seed": seed, "sample_rate": sample_rate, "channels": channels, "width": width}
    model = WaveformAutoencoder("tiny", config, options)
    xavier_init(model, seed)
    return model


def load_archisound_from_hub() -> WaveformAutoencoder:
    """ArchiSound.from_pretrained (the design card's route); needs the network and the `transformers` hub code."""
    try:
        from archisound import ArchiSound

        hub_model = ArchiSound.from_pretrained("autoencoder1d-AT-v1")
    except Exception as exc:  # the hub raises connection, HTTP and import errors of many types
        raise DownloadError(HUB_REPO, f"cannot load from the model hub ({type(exc).__name__}); "
                            "offline, use `probe download weights archisound_at_v1` elsewhere and --ae-weights") from exc
    model = build_archisound()
    load_state_dict_strict(model, hub_model.state_dict(), HUB_REPO)
    return model


def relative_energy(model, x, reconstruction, labels):
    """mean(y^2) / mean(x^2) over the batch: 1 when the AE keeps the input's energy."""
    return reconstruction.float().pow(2).mean() / x.float().pow(2).mean().clamp_min(1e-12)


def kind(summary: dict[str, Any]) -> str:
    """A random start reads as the random AE whatever its penalty; else penalised or not."""
    if summary.get("bands", {}).get("random_start"):
        return "random AE"
    return "energy-penalised AE" if float(summary.get("penalty") or 0) > 0 else "pretrained AE"


register_probe(ProbeSpec(
    name="autoencoder", kind=kind, learning_rate=3e-5, epochs=100,
    description="the study's: a waveform autoencoder finetuned in front of the classifier (--autoencoder chooses it)",
    modules=(
        probe_module("archisound", build_archisound, sample_rate=48000, citation=CITATION, weights=(ARCHISOUND_WEIGHTS,),
                     description="ArchiSound autoencoder1d-AT-v1 (48 kHz stereo, 20.8 M parameters); needs its weights "
                                 "(probe download weights archisound_at_v1)"),
        probe_module("random", build_random, sample_rate=48000, citation=CITATION,
                     description="the autoencoder1d-AT-v1 architecture, Xavier-initialised from a seed (the study's "
                                 "random setting)"),
        probe_module("tiny", build_tiny, sample_rate=48000,
                     description="a small AutoEncoder1d of the same family (tests, CPU demo); sample_rate=, channels= "
                                 "and width= are options"),
    ),
    penalty=Penalty("energy", 0.0, "relative energy", relative_energy, needs_reconstruction=True,
                    help="add this times the reconstruction's energy relative to the input's to the loss (0: the study's)"),
))
