"""EfficientAT's mel front-end (AugmentMelSTFT), written for probe.

Waveform (batch, samples) at 32 kHz -> log-mel (batch, 1, n_mels, frames):
pre-emphasis [-0.97, 1], |STFT|^2 (Hann window of `win_length`, periodic=False, centred),
Kaldi mel banks padded to n_fft // 2 + 1 bins, log(x + 1e-5), then (x + 4.5) / 5.
In train mode fmin/fmax are jittered and frequency/time masks may be applied; in eval
mode (which the probe always uses) the transform is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    """Front-end parameters; the defaults are EfficientAT's and PaSST's."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    fmin_aug_range: int = 10
    fmax_aug_range: int = 2000
    freq_mask: int = 0
    time_mask: int = 0

    @property
    def effective_fmax_hz(self) -> float:
        """fmax None means Nyquist minus half the fmax jitter range (15 kHz at 32 kHz)."""
        if self.fmax_hz is not None:
            return float(self.fmax_hz)
        return float(self.sample_rate // 2 - self.fmax_aug_range // 2)


def kaldi_mel_banks(config: MelConfig, fmin_hz: float, fmax_hz: float) -> torch.Tensor:
    """Mel filterbank (n_mels, n_fft // 2 + 1) as EfficientAT builds it."""
    from torchaudio.compliance.kaldi import get_mel_banks

    banks, _ = get_mel_banks(config.n_mels, config.n_fft, float(config.sample_rate), fmin_hz, fmax_hz, 100.0, -500.0, 1.0)
    return nn.functional.pad(banks, (0, 1))


def mel_band_edges_hz(config: MelConfig) -> torch.Tensor:
    """Lower, centre and upper frequency of each eval-mode mel band, (n_mels, 3), in Hz: the FFT bins each filter
    reaches. Where some filter reaches no bin at all (narrower than one: AST's 128 bands on a 512-point FFT at 16 kHz),
    every band's edges come from the mel scale itself, so that the set stays in order."""
    banks = kaldi_mel_banks(config, config.fmin_hz, config.effective_fmax_hz)
    freqs = torch.linspace(0, config.sample_rate / 2, banks.shape[1])
    reached = [torch.nonzero(row > 0).flatten() for row in banks]
    if any(len(bins) == 0 for bins in reached):
        return mel_scale_edges_hz(config)
    return torch.stack([torch.stack([freqs[bins[0]], freqs[torch.argmax(row)], freqs[bins[-1]]])
                        for row, bins in zip(banks, reached)])


def mel_scale_edges_hz(config: MelConfig) -> torch.Tensor:
    """Each Kaldi mel filter's corners (lower, centre, upper), (n_mels, 3), in Hz: n_mels + 2 points equally spaced
    on Kaldi's mel scale (1127 ln(1 + f / 700)) from fmin to fmax."""
    from torchaudio.compliance.kaldi import inverse_mel_scale, mel_scale_scalar

    points = torch.linspace(mel_scale_scalar(config.fmin_hz), mel_scale_scalar(config.effective_fmax_hz),
                            config.n_mels + 2, dtype=torch.float64)
    corners = inverse_mel_scale(points)
    return torch.stack([corners[:-2], corners[1:-1], corners[2:]], dim=1).float()


class MelFrontEnd(nn.Module):
    """EfficientAT's AugmentMelSTFT: waveform (B, L) -> log-mel (B, 1, n_mels, T)."""

    def __init__(self, config: MelConfig = MelConfig()) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.register_buffer("window", torch.hann_window(config.win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        self.register_buffer(
            "eval_banks", kaldi_mel_banks(config, config.fmin_hz, config.effective_fmax_hz), persistent=False
        )

    def power_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """Pre-emphasised power spectrogram (B, n_fft // 2 + 1, T)."""
        x = nn.functional.conv1d(waveform.unsqueeze(1), self.preemphasis.to(waveform.dtype)).squeeze(1)
        spec = torch.stft(
            x,
            self.config.n_fft,
            hop_length=self.config.hop_length,
            win_length=self.config.win_length,
            window=self.window.to(x.dtype),
            center=True,
            normalized=False,
            return_complex=True,
        )
        return torch.view_as_real(spec).pow(2).sum(-1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2:
            raise ValueError(f"MelFrontEnd takes (batch, samples), got shape {tuple(waveform.shape)}")
        # The mel projection and log run in fp32 even under autocast: log(x + 1e-5) of a bf16 power
        # spectrum loses the quiet bands the analyses care about.
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            power = self.power_spectrogram(waveform.float())
            mel = torch.matmul(self._banks(power.device), power)
            mel = (mel + 1e-5).log()
            if self.training:
                mel = self._mask(mel)
            mel = (mel + 4.5) / 5.0
        return mel.unsqueeze(1)

    def _banks(self, device: torch.device) -> torch.Tensor:
        if not self.training:
            return self.eval_banks
        cfg = self.config
        fmin = cfg.fmin_hz + torch.randint(cfg.fmin_aug_range, (1,)).item()
        fmax = cfg.effective_fmax_hz + cfg.fmax_aug_range // 2 - torch.randint(cfg.fmax_aug_range, (1,)).item()
        return kaldi_mel_banks(cfg, fmin, fmax).to(device)

    def _mask(self, mel: torch.Tensor) -> torch.Tensor:
        import torchaudio.transforms as T

        if self.config.freq_mask:
            mel = T.FrequencyMasking(self.config.freq_mask, iid_masks=True)(mel)
        if self.config.time_mask:
            mel = T.TimeMasking(self.config.time_mask, iid_masks=True)(mel)
        return mel
