"""Audio I/O: round trips, resampling, channel handling, and every kind of bad file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from probe.audio import fit_length, load_audio, make_resampler, resample, to_mono, to_stereo, write_wav
from probe.errors import AudioError


@pytest.mark.parametrize("fmt,subtype,suffix", [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_16", ".flac"), ("OGG", "VORBIS", ".ogg")])
def test_formats_round_trip(tmp_path: Path, fmt: str, subtype: str, suffix: str) -> None:
    t = np.arange(8000) / 16000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1).astype(np.float32)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, stereo, 16000, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.sample_rate == 16000
    assert audio.waveform.shape == (2, 8000)
    assert audio.waveform.dtype == torch.float32
    tolerance = 0.05 if fmt == "OGG" else 1e-3
    assert np.abs(audio.waveform.numpy().T - stereo).max() < tolerance


def test_mp3_is_read(tmp_path: Path) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3 to make a fixture")
    path = tmp_path / "clip.mp3"
    t = np.arange(16000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, format="MP3")
    audio = load_audio(path, mono=True)
    assert audio.waveform.shape[0] == 1 and audio.waveform.shape[1] > 15000


def test_write_wav_round_trip_is_exact_in_float(tmp_path: Path) -> None:
    waveform = torch.rand(2, 1000) - 0.5
    write_wav(tmp_path / "x.wav", waveform, 48000)
    audio = load_audio(tmp_path / "x.wav")
    torch.testing.assert_close(audio.waveform, waveform)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp file left behind"


def test_resample_preserves_a_tone(sine_wav: Path) -> None:
    audio = load_audio(sine_wav, sample_rate=48000)
    assert audio.sample_rate == 48000 and audio.waveform.shape[-1] == 24000
    spectrum = np.abs(np.fft.rfft(audio.waveform[0].numpy()))
    peak_hz = np.argmax(spectrum) * 48000 / 24000
    assert abs(peak_hz - 1000) <= 2


def test_resample_is_batched_and_matches_module() -> None:
    x = torch.randn(3, 2, 3200)
    y = resample(x, 32000, 48000)
    assert y.shape == (3, 2, 4800)
    torch.testing.assert_close(make_resampler(32000, 48000)(x), y, atol=1e-5, rtol=1e-4)
    assert resample(x, 32000, 32000) is x


def test_channel_and_length_helpers() -> None:
    mono = torch.randn(1, 100)
    stereo = to_stereo(mono)
    assert stereo.shape == (2, 100) and torch.equal(stereo[0], stereo[1])
    torch.testing.assert_close(to_mono(stereo), mono)
    assert fit_length(mono, 150).shape == (1, 150) and fit_length(mono, 150)[0, 100:].abs().sum() == 0
    assert torch.equal(fit_length(mono, 60), mono[:, :60])
    with pytest.raises(ValueError):
        to_stereo(torch.randn(3, 10))


def test_long_files_are_cropped_on_read(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((8000 * 3, 1), dtype=np.float32) + 0.1, 8000)
    audio = load_audio(path, max_seconds=1.0)
    assert audio.waveform.shape[-1] == 8000


def test_an_hour_long_file_is_never_loaded_whole(tmp_path: Path, caplog) -> None:
    import tracemalloc

    path = tmp_path / "hour.wav"
    rate, minute = 8000, np.full((8000 * 60, 1), 0.1, dtype=np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(minute)
    tracemalloc.start()
    try:
        with caplog.at_level("WARNING", logger="probe.audio"):
            audio = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.waveform.shape == (1, 600 * rate) and "reading only the first 600.0 s" in caplog.text
    assert peak < 0.5 * 3600 * rate * 4, f"peak {peak / 1e6:.0f} MB: the hour was loaded whole"


def test_a_96k_six_channel_file_is_down_mixed_for_the_classifiers(tmp_path: Path, caplog) -> None:
    path = tmp_path / "surround.wav"
    t = np.arange(96000) / 96000
    data = np.zeros((96000, 6), dtype=np.float32)
    data[:, 0] = 0.6 * np.sin(2 * np.pi * 1000 * t)  # only the front-left channel carries the tone
    sf.write(path, data, 96000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="probe.audio"):
        audio = load_audio(path, sample_rate=32000, mono=True)
    assert audio.waveform.shape == (1, 32000) and audio.sample_rate == 32000 and "6 channels, averaged" in caplog.text
    assert np.abs(audio.waveform[0, 1000:-1000].numpy()).max() == pytest.approx(0.1, abs=0.005)
    with pytest.raises(AudioError, match="6 channels"):
        load_audio(path)  # a stereo reader gets a clear error instead


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.wav"
    sf.write(good, np.full((4000, 1), 0.1, dtype=np.float32), 16000)
    cases: dict[str, tuple[Path, str]] = {}
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "empty file")
    (tmp_path / "text.wav").write_text("this is not audio, just text\n" * 10)
    cases["text renamed .wav"] = (tmp_path / "text.wav", "not an audio file")
    (tmp_path / "truncated.wav").write_bytes(good.read_bytes()[:30])
    cases["truncated header"] = (tmp_path / "truncated.wav", "truncated or corrupt")
    nan = tmp_path / "nan.wav"
    data = np.zeros((100, 1), dtype=np.float32)
    data[50] = np.nan
    sf.write(nan, data, 16000, subtype="FLOAT")
    cases["NaN samples"] = (nan, "NaN or Inf")
    inf = tmp_path / "inf.wav"
    data[50] = np.inf
    sf.write(inf, data, 16000, subtype="FLOAT")
    cases["Inf samples"] = (inf, "NaN or Inf")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), dtype=np.float32), 16000)
    cases["zero length"] = (zero, "zero length")
    six = tmp_path / "six.wav"
    sf.write(six, np.zeros((100, 6), dtype=np.float32), 96000)
    cases["6 channels, stereo wanted"] = (six, "unsupported channel layout")
    (tmp_path / "dir.wav").mkdir()
    cases["directory"] = (tmp_path / "dir.wav", "is a directory")
    cases["missing"] = (tmp_path / "missing.wav", "cannot open")
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    cases["symlink loop"] = (loop, "symbolic link loop")
    return cases


def test_every_bad_file_gets_its_reason(tmp_path: Path) -> None:
    for label, (path, reason) in _bad_files(tmp_path).items():
        with pytest.raises(AudioError) as info:
            load_audio(path)
        message = str(info.value)
        assert str(path) in message, label
        assert reason in message, f"{label}: {message}"
        assert "\n" not in message, label


def test_silence_loads_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((1000, 1), dtype=np.float32), 16000)
    audio = load_audio(path)
    assert audio.waveform.abs().sum() == 0
    assert "silence" in caplog.text
