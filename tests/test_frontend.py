"""The mel front-end against hear21passt's AugmentMelSTFT and against its definition in numpy."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from probe.models.frontend import MelConfig, MelFrontEnd, mel_band_edges_hz


def _kaldi_mel(freq_hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + freq_hz / 700.0)


def reference_log_mel(waveform: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """EfficientAT's eval-mode front-end written out from its definition, in float64 numpy."""
    x = np.convolve(waveform, [1.0, -0.97], mode="full")[1 : waveform.size]  # y[n] = x[n+1] - 0.97 x[n]
    n = np.arange(cfg.win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (cfg.win_length - 1))  # Hann, periodic=False
    left = (cfg.n_fft - cfg.win_length) // 2
    window = np.pad(window, (left, cfg.n_fft - cfg.win_length - left))
    padded = np.pad(x, cfg.n_fft // 2, mode="reflect")
    frames = 1 + (padded.size - cfg.n_fft) // cfg.hop_length
    stft = np.stack([np.fft.rfft(padded[i * cfg.hop_length : i * cfg.hop_length + cfg.n_fft] * window) for i in range(frames)], 1)
    power = np.abs(stft) ** 2
    # Kaldi triangular banks, equally spaced on the mel scale, over the first n_fft // 2 bins.
    low, high = _kaldi_mel(np.array(cfg.fmin_hz)), _kaldi_mel(np.array(cfg.effective_fmax_hz))
    delta = (high - low) / (cfg.n_mels + 1)
    bin_mel = _kaldi_mel(np.arange(cfg.n_fft // 2) * cfg.sample_rate / cfg.n_fft)
    banks = np.zeros((cfg.n_mels, cfg.n_fft // 2 + 1))
    for m in range(cfg.n_mels):
        left_m, centre, right = low + m * delta, low + (m + 1) * delta, low + (m + 2) * delta
        up = (bin_mel - left_m) / (centre - left_m)
        down = (right - bin_mel) / (right - centre)
        banks[m, : cfg.n_fft // 2] = np.maximum(0, np.minimum(up, down))
    return (np.log(banks @ power + 1e-5) + 4.5) / 5.0


def test_matches_the_definition() -> None:
    cfg = MelConfig()
    rng = np.random.default_rng(0)
    waveform = rng.standard_normal(8000).astype(np.float32) * 0.1
    ours = MelFrontEnd(cfg).eval()(torch.from_numpy(waveform)[None])[0, 0].double().numpy()
    expected = reference_log_mel(waveform.astype(np.float64), cfg)
    assert ours.shape == expected.shape == (128, 25)  # pre-emphasis drops one sample
    np.testing.assert_allclose(ours, expected, atol=2e-4)


def test_matches_hear21passt_augmentmelstft() -> None:
    from hear21passt.models.preprocess import AugmentMelSTFT

    with contextlib.redirect_stdout(io.StringIO()):
        upstream = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                                  fmin=0.0, fmax=None, fmin_aug_range=10, fmax_aug_range=2000).eval()
    waveform = torch.randn(2, 32000) * 0.1
    ours = MelFrontEnd(MelConfig()).eval()(waveform)
    torch.testing.assert_close(ours[:, 0], upstream(waveform), atol=1e-5, rtol=1e-5)


def test_eval_is_deterministic_and_train_jitters() -> None:
    frontend = MelFrontEnd(MelConfig())
    waveform = torch.randn(1, 16000)
    frontend.eval()
    torch.testing.assert_close(frontend(waveform), frontend(waveform))
    frontend.train()
    torch.manual_seed(1)
    first = frontend(waveform)
    torch.manual_seed(2)
    assert not torch.allclose(first, frontend(waveform))


def test_fmax_default_is_15khz_and_bands_are_ordered() -> None:
    cfg = MelConfig()
    assert cfg.effective_fmax_hz == 15000
    edges = mel_band_edges_hz(cfg)
    assert edges.shape == (128, 3)
    assert torch.all(edges[1:, 1] >= edges[:-1, 1])
    assert edges[-1, 2] <= 15000 + 32000 / 1024


@pytest.mark.parametrize("shape", [(16000,), (1, 1, 16000)])
def test_rejects_wrong_rank(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        MelFrontEnd()(torch.zeros(shape))
