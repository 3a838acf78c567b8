"""Property-based tests (hypothesis): band energies, resampling, and the audio loader's invariants."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.analyses import bands
from probe.audio import load_audio, resample

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(seed=st.integers(0, 2**16), amplitude=st.floats(1e-3, 10.0), frames=st.integers(8, 24),
       rate=st.sampled_from([16000, 32000, 44100]))
def test_band_energies_are_parseval_consistent(seed: int, amplitude: float, frames: int, rate: int) -> None:
    """The one-sided power spectrum, scaled by the window, gives back the signal's mean power, and the
    bands of a set partition it: their energies add up to the power above the lowest band edge."""
    x = amplitude * np.random.default_rng(seed).standard_normal((1, frames * bands.ANALYSIS_HOP))
    spectrum = bands.power_spectra(x)[0]
    window = np.hanning(bands.ANALYSIS_N_FFT + 1)[:-1]  # torch's periodic Hann
    one_sided = spectrum.copy()
    one_sided[1:-1] *= 2
    mean_power = one_sided.sum() / (bands.ANALYSIS_N_FFT * (window**2).sum())
    assert 0.75 < mean_power / np.mean(x**2) < 1.25
    freqs = bands.fft_frequencies(rate)
    for band_set in bands.band_sets_for(("octave", "third_octave"), rate):
        summed = (spectrum @ band_set.weights.T).sum()
        assert np.isclose(summed, spectrum[freqs >= band_set.low_hz[0]].sum(), rtol=1e-9)


@SETTINGS
@given(source=st.sampled_from([16000, 22050, 32000, 44100, 48000]), target=st.sampled_from([16000, 22050, 32000, 48000]),
       fraction=st.floats(0.02, 0.35), phase=st.floats(0, 6.28))
def test_a_band_limited_sine_survives_resampling(source: int, target: int, fraction: float, phase: float) -> None:
    frequency = fraction * min(source, target)  # well below both Nyquist frequencies
    seconds = 0.25
    t_in = np.arange(int(seconds * source)) / source
    y = resample(torch.tensor(np.sin(2 * np.pi * frequency * t_in + phase), dtype=torch.float32), source, target).numpy()
    t_out = np.arange(len(y)) / target
    expected = np.sin(2 * np.pi * frequency * t_out + phase)
    middle = slice(len(y) // 5, 4 * len(y) // 5)  # away from the filter's edge effects
    assert abs(len(y) - seconds * target) <= 1
    assert np.max(np.abs(y[middle] - expected[middle])) < 0.02


@SETTINGS
@given(channels=st.integers(1, 2), rate=st.sampled_from([8000, 16000, 44100, 48000]), samples=st.integers(1, 20000),
       subtype=st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "PCM_U8"]), target=st.sampled_from([None, 16000, 32000]),
       mono=st.booleans())
def test_loader_shapes_and_dtypes(channels: int, rate: int, samples: int, subtype: str, target: int | None, mono: bool) -> None:
    data = 0.5 * np.random.default_rng(samples).uniform(-1, 1, (samples, channels)).astype(np.float32)
    fmt = "WAV"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, data, rate, subtype=subtype, format=fmt)
        audio = load_audio(path, sample_rate=target, mono=mono)
    assert audio.waveform.dtype == torch.float32 and audio.waveform.dim() == 2
    assert audio.waveform.shape[0] == (1 if mono else channels)
    assert audio.sample_rate == (target or rate)
    expected = samples if target is None else samples * target / rate
    assert abs(audio.waveform.shape[1] - expected) <= 1
    assert torch.isfinite(audio.waveform).all() and audio.waveform.abs().max() <= 1.5
