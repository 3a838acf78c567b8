"""Reconstruction losses for `probe pretrain-ae`, by name."""
from __future__ import annotations

import torch


def multi_resolution_stft_loss(output: torch.Tensor, target: torch.Tensor,
                               resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))) -> torch.Tensor:
    """Spectral convergence plus log-magnitude L1, averaged over STFT resolutions (n_fft, hop).

    Inputs are (..., samples); every leading axis is treated as a separate signal.
    """
    output, target = output.float().flatten(0, -2), target.float().flatten(0, -2)
    total = output.new_zeros(())
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft, device=output.device)
        spec = lambda x: torch.stft(x, n_fft, hop, window=window, return_complex=True).abs().clamp_min(1e-7)  # noqa: E731
        out_mag, target_mag = spec(output), spec(target)
        convergence = torch.linalg.norm(target_mag - out_mag) / torch.linalg.norm(target_mag).clamp_min(1e-7)
        log_magnitude = (out_mag.log() - target_mag.log()).abs().mean()
        total = total + convergence + log_magnitude
    return total / len(resolutions)
