"""Audio I/O and the few signal operations every part of probe shares.

Files are read with soundfile (wav, flac, ogg, and mp3 with libsndfile >= 1.1), with
librosa's audioread fallback for anything soundfile cannot open. Waveforms are float32
tensors shaped (channels, samples), or (batch, channels, samples) for the batched helpers.
Resampling lives here and only here.
"""
from __future__ import annotations

import errno
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from probe.errors import AudioError
from probe.fileio import atomic_write

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
DEFAULT_MAX_SECONDS = 600.0
"""Files longer than this are cropped on read, so that no file is ever loaded whole beyond it."""


@dataclass(frozen=True)
class Audio:
    """A decoded clip: `waveform` is float32 (channels, samples) at `sample_rate` Hz."""

    waveform: torch.Tensor
    sample_rate: int
    path: str = ""


def load_audio(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    mono: bool = False,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    allow_nonfinite: bool = False,
) -> Audio:
    """Read an audio file, optionally resampled and down-mixed.

    Raises `AudioError` naming the file and the reason for every unreadable input:
    missing, a directory, empty, not audio, truncated, zero length, NaN/Inf samples, or
    more than two channels when `mono` is False. With `mono`, any channel count (5.1, 7.1,
    ambisonics) is averaged down with a warning. Files longer than `max_seconds` are cropped
    with a warning.
    """
    path = Path(path)
    data, file_rate = _read(path, max_seconds)
    if data.shape[0] == 0:
        raise AudioError(path, "zero length: the file holds no samples")
    if data.shape[1] > 2:
        if not mono:
            raise AudioError(path, f"unsupported channel layout: {data.shape[1]} channels (probe reads mono or stereo here)")
        log.warning("%s: %d channels, averaged to mono", path, data.shape[1])
    if not allow_nonfinite and not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf samples")
    waveform = torch.from_numpy(np.ascontiguousarray(data.T, dtype=np.float32))
    if mono:
        waveform = to_mono(waveform)
    if sample_rate is not None and sample_rate != file_rate:
        waveform = resample(waveform, file_rate, sample_rate)
        file_rate = sample_rate
    if not torch.any(waveform != 0):
        log.warning("%s: the clip is digital silence", path)
    return Audio(waveform, int(file_rate), str(path))


def _read(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Decode to (frames, channels) float32, checking the file before handing it to a decoder."""
    import soundfile as sf

    try:
        if path.is_dir():
            raise AudioError(path, "is a directory, not an audio file")
        size = path.stat().st_size
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(path, "symbolic link loop") from exc
        raise AudioError(path, f"cannot open: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as handle:
            rate = handle.samplerate
            frames = handle.frames
            limit = _frame_limit(path, frames, rate, max_seconds)
            data = handle.read(frames=limit, dtype="float32", always_2d=True)
        if frames > 0 and data.shape[0] == 0:
            raise AudioError(path, "truncated: the header promises samples but none could be read")
        return data, rate
    except AudioError:
        raise
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        soundfile_reason = str(exc)
    return _read_fallback(path, max_seconds, soundfile_reason)


def _frame_limit(path: Path, frames: int, rate: int, max_seconds: float | None) -> int:
    if max_seconds is None or frames <= max_seconds * rate:
        return frames if frames > 0 else -1
    log.warning("%s: %.1f s long, reading only the first %.1f s", path, frames / rate, max_seconds)
    return int(max_seconds * rate)


def _read_fallback(path: Path, max_seconds: float | None, soundfile_reason: str) -> tuple[np.ndarray, int]:
    head = path.read_bytes()[:64]
    if head.startswith((b"RIFF", b"fLaC", b"OggS", b"FORM")):
        raise AudioError(path, f"truncated or corrupt audio ({soundfile_reason.splitlines()[-1].strip()})")
    if path.suffix.lower() not in (".mp3", ".m4a", ".aac") or _looks_like_text(head):
        raise AudioError(path, "not an audio file (unrecognised format)")
    try:
        import librosa

        data, rate = librosa.load(str(path), sr=None, mono=False, duration=max_seconds)
    except Exception as exc:  # audioread raises many unrelated types
        raise AudioError(path, f"cannot decode: {type(exc).__name__}") from exc
    data = np.atleast_2d(data).T.astype(np.float32)
    return data, int(rate)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def write_wav(path: str | Path, waveform: torch.Tensor | np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write a (channels, samples) or (samples,) waveform as WAV, atomically."""
    import soundfile as sf

    data = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.T
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        sf.write(handle, data, int(sample_rate), format="WAV", subtype=subtype)
    return path


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample along the last axis (any leading shape, any device) with torchaudio's sinc filter."""
    if int(orig_rate) == int(new_rate):
        return waveform
    import torchaudio.functional as AF

    divisor = math.gcd(int(orig_rate), int(new_rate))
    return AF.resample(waveform, int(orig_rate) // divisor, int(new_rate) // divisor)


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """Average the channel axis (second to last) down to one channel, keeping it."""
    return waveform.mean(dim=-2, keepdim=True)


def to_stereo(waveform: torch.Tensor) -> torch.Tensor:
    """Duplicate a mono channel into two; stereo passes through."""
    channels = waveform.shape[-2]
    if channels == 2:
        return waveform
    if channels == 1:
        return waveform.expand(*waveform.shape[:-2], 2, waveform.shape[-1])
    raise ValueError(f"to_stereo takes 1 or 2 channels, got {channels}")


def fit_length(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Zero-pad or crop the last axis to exactly `num_samples`."""
    length = waveform.shape[-1]
    if length == num_samples:
        return waveform
    if length > num_samples:
        return waveform[..., :num_samples]
    return torch.nn.functional.pad(waveform, (0, num_samples - length))


def is_audio_file(path: Path) -> bool:
    """True for names ending in a known audio extension (the file may still be unreadable)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def make_resampler(orig_rate: int, new_rate: int) -> torch.nn.Module:
    """A module that resamples the last axis; it caches its sinc kernel, so use it in hot loops."""
    if int(orig_rate) == int(new_rate):
        return torch.nn.Identity()
    import torchaudio.transforms as T

    divisor = math.gcd(int(orig_rate), int(new_rate))
    return T.Resample(int(orig_rate) // divisor, int(new_rate) // divisor)
