"""Spectral descriptors and mean spectrograms of originals and reconstructions."""
from __future__ import annotations

import numpy as np
import torch

DESCRIPTORS = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness")
DESCRIPTOR_N_FFT = 2048
DESCRIPTOR_HOP = 512
MEL_N_FFT = 1024
MEL_HOP = 320
MEL_BANDS = 128
MAX_MAP_FRAMES = 100


def _magnitudes(waveforms: np.ndarray) -> torch.Tensor:
    x = torch.tensor(np.asarray(waveforms), dtype=torch.float32)
    window = torch.hann_window(DESCRIPTOR_N_FFT)
    return torch.stft(x, DESCRIPTOR_N_FFT, DESCRIPTOR_HOP, window=window, center=True, return_complex=True).abs()


def spectral_descriptors(waveforms: np.ndarray, sample_rate: int, batch: int = 32) -> dict[str, np.ndarray]:
    """Per clip, the frame-mean librosa centroid, bandwidth, 85 % roll-off (Hz) and flatness (0-1)."""
    import librosa

    out: dict[str, list[np.ndarray]] = {name: [] for name in DESCRIPTORS}
    for start in range(0, len(waveforms), batch):
        magnitude = _magnitudes(waveforms[start : start + batch]).numpy()
        features = {
            "centroid_hz": librosa.feature.spectral_centroid(S=magnitude, sr=sample_rate, n_fft=DESCRIPTOR_N_FFT),
            "bandwidth_hz": librosa.feature.spectral_bandwidth(S=magnitude, sr=sample_rate, n_fft=DESCRIPTOR_N_FFT),
            "rolloff_hz": librosa.feature.spectral_rolloff(S=magnitude, sr=sample_rate, n_fft=DESCRIPTOR_N_FFT),
            "flatness": librosa.feature.spectral_flatness(S=magnitude),
        }
        for name, values in features.items():
            out[name].append(np.nan_to_num(values[:, 0, :]).mean(-1))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def mel_maps(waveforms: np.ndarray, sample_rate: int, batch: int = 32) -> np.ndarray:
    """Log-mel spectrograms in dB (N, 128, <=100 frames): a classifier-independent view for the figures."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=MEL_N_FFT, hop_length=MEL_HOP, n_mels=MEL_BANDS)
    maps = []
    for start in range(0, len(waveforms), batch):
        x = torch.tensor(np.asarray(waveforms[start : start + batch]), dtype=torch.float32)
        spec = 10 * torch.log10(mel(x) + 1e-10)
        frames = spec.shape[-1]
        if frames > MAX_MAP_FRAMES:  # average-pool time so that a class mean stays small on disk
            spec = torch.nn.functional.adaptive_avg_pool1d(spec, MAX_MAP_FRAMES)
        maps.append(spec.numpy())
    return np.concatenate(maps)


def group_means(values: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """Mean of `values` (N, ...) per group index 0..count-1; NaN for empty groups."""
    out = np.full((count, *values.shape[1:]), np.nan, dtype=np.float64)
    for group in range(count):
        members = groups == group
        if members.any():
            out[group] = values[members].mean(0)
    return out
