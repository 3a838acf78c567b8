"""A deterministic ESC-like synthetic dataset with a known answer.

Five categories of sound (harmonic tones, band-limited noise bursts, resonant clicks,
chirps, amplitude-modulated tones); classes within a category differ in frequency. Every
class is coded twice, once in a low band and once in a high band, so a classifier can be
made to rely on either band: `render_clip(low_class, high_class)` draws the two bands from
different classes, which the demo uses to plant the band a classifier needs.
The dataset is written in ESC-50's layout (meta/esc50.csv, audio/), so it loads like ESC-50.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from probe.esc50 import CATEGORIES_CSV, DATASET_JSON, ESC50_CSV
from probe.outputs import staged_directory

PEAK = 0.8
"""Every clip is normalised to this peak amplitude."""
SOUND_TYPES = ("tone", "noise", "clicks", "chirp", "modulated")
CATEGORY_NAMES = ("harmonic tones", "noise bursts", "clicks", "chirps", "modulated tones")


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. Bands are in Hz and must lie below Nyquist."""

    sample_rate: int = 16000
    clip_seconds: float = 1.0
    classes_per_category: int = 2
    clips_per_class: int = 20
    folds: int = 5
    extra_validation_clips_per_class: int = 0
    """Clips per class added to fold 1 (the folds the demo validates and analyses on), drawn after all the others so
    that the rest of the dataset does not change: more clips there narrow what a removal check can show."""
    low_band_hz: tuple[float, float] = (150.0, 1800.0)
    high_band_hz: tuple[float, float] = (4500.0, 7200.0)
    seed: int = 0

    @property
    def num_classes(self) -> int:
        return len(SOUND_TYPES) * self.classes_per_category

    def class_name(self, target: int) -> str:
        kind = SOUND_TYPES[target // self.classes_per_category]
        return f"{kind}_{'abcdefghijklmnopqrstuvwxyz'[target % self.classes_per_category]}"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def centre_frequency(config: SyntheticConfig, target: int, band: tuple[float, float]) -> float:
    """Classes of one category sit at evenly spaced frequencies inside the band."""
    k = target % config.classes_per_category
    low, high = band
    return low + (k + 0.5) / config.classes_per_category * (high - low)


def _band_component(rng: np.random.Generator, kind: str, centre_hz: float, config: SyntheticConfig) -> np.ndarray:
    sr, n = config.sample_rate, int(round(config.clip_seconds * config.sample_rate))
    t = np.arange(n) / sr
    f = centre_hz * rng.uniform(0.95, 1.05)
    if kind == "tone":
        start, length = rng.uniform(0, 0.3), rng.uniform(0.4, 0.7)
        envelope = ((t >= start * config.clip_seconds) & (t < (start + length) * config.clip_seconds)).astype(float)
        signal = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 1.08 * f * t + rng.uniform(0, 6.3))
        return envelope * signal
    if kind == "noise":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / sr)
        spectrum[np.abs(freqs - f) > 0.12 * f] = 0
        noise = np.fft.irfft(spectrum, n)
        noise /= np.abs(noise).max() + 1e-9
        envelope = np.zeros(n)
        for _ in range(rng.integers(3, 6)):
            onset, width = rng.integers(0, n), int(rng.uniform(0.05, 0.15) * sr)
            envelope[onset : onset + width] = 1.0
        return noise * envelope
    if kind == "clicks":
        rate_hz = rng.uniform(6, 14)
        signal = np.zeros(n)
        ring = np.exp(-np.arange(int(0.01 * sr)) / (0.002 * sr)) * np.sin(2 * np.pi * f * np.arange(int(0.01 * sr)) / sr)
        for onset in np.arange(rng.uniform(0, 1 / rate_hz), config.clip_seconds, 1 / rate_hz):
            i = int(onset * sr)
            signal[i : i + ring.size] += ring[: n - i]
        return signal
    if kind == "chirp":
        duration = rng.uniform(0.3, 0.6) * config.clip_seconds
        start = rng.uniform(0, config.clip_seconds - duration)
        local = np.clip(t - start, 0, duration)
        phase = 2 * np.pi * (f * 0.85 * local + 0.5 * (0.3 * f / duration) * local**2)
        return np.sin(phase) * ((t >= start) & (t < start + duration))
    if kind == "modulated":
        modulation = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(4, 10) * t + rng.uniform(0, 6.3)))
        return modulation * np.sin(2 * np.pi * f * t)
    raise ValueError(f"unknown sound type {kind!r}")


def render_bands(low_class: int, high_class: int, rng: np.random.Generator, config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """The two band components of a clip, each at unit RMS: `low_class`'s low-band and `high_class`'s high-band signature."""
    parts = []
    for target, band in ((low_class, config.low_band_hz), (high_class, config.high_band_hz)):
        kind = SOUND_TYPES[target // config.classes_per_category]
        part = _band_component(rng, kind, centre_frequency(config, target, band), config)
        parts.append(part / (np.sqrt(np.mean(part**2)) + 1e-9))
    return parts[0], parts[1]


def render_clip(low_class: int, high_class: int, rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """One mono clip: `low_class`'s signature in the low band plus `high_class`'s in the high band."""
    low, high = render_bands(low_class, high_class, rng, config)
    clip = low * 10 ** (rng.uniform(-12, 0) / 20) + high * 10 ** (rng.uniform(-12, 0) / 20)
    clip = clip + 0.003 * rng.standard_normal(clip.size)
    return (PEAK * clip / (np.abs(clip).max() + 1e-9)).astype(np.float32)


LOW, HIGH = "low", "high"
"""The two bands a planted classifier can rely on."""


def render_planted_clips(targets: np.ndarray, relies_on: str | None, rng: np.random.Generator,
                         config: SyntheticConfig) -> np.ndarray:
    """Training clips (N, samples) for a classifier whose reliance on a band is planted through them.

    The band it must not use (`relies_on` LOW or HIGH; None: it uses both) carries a random class at a
    random level relative to the used band (-50 to +6 dB), so neither its content nor its presence
    informs. The used band keeps its level: a classifier that stops caring how loud its band is would
    give an energy penalty a free way out (scaling everything down) instead of dropping the unused band.
    """
    clips = []
    for target in targets:
        other = int(rng.integers(config.num_classes))
        low_class, high_class = {LOW: (target, other), HIGH: (other, target), None: (target, target)}[relies_on]
        low, high = render_bands(int(low_class), int(high_class), rng, config)
        unused_db = rng.uniform(-50, 6)
        low_db, high_db = {LOW: (0.0, unused_db), HIGH: (unused_db, 0.0), None: (0.0, 0.0)}[relies_on]
        clip = low * 10 ** (low_db / 20) + high * 10 ** (high_db / 20)
        clips.append((PEAK * clip / (np.abs(clip).max() + 1e-9)).astype(np.float32))
    return np.stack(clips)


def write_synthetic_dataset(root: str | Path, config: SyntheticConfig = SyntheticConfig()) -> Path:
    """Write the dataset in ESC-50's layout under `root` (reused when the config is unchanged)."""
    from probe.audio import write_wav

    root = Path(root)
    stamp = root / DATASET_JSON
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == config.digest():
        return root
    with staged_directory(root, "dataset", flag="the synthetic dataset's folder") as staging:
        (staging / "audio").mkdir()
        (staging / "meta").mkdir()
        rng = np.random.default_rng(config.seed)
        rows = []
        for target in range(config.num_classes):
            for index in range(config.clips_per_class):
                fold = index % config.folds + 1
                name = f"{fold}-{target:02d}{index:03d}-A-{target}.wav"
                write_wav(staging / "audio" / name, render_clip(target, target, rng, config), config.sample_rate, "PCM_16")
                rows.append({"filename": name, "fold": fold, "target": target, "category": config.class_name(target)})
        extra = np.random.default_rng([config.seed, 1])
        for target in range(config.num_classes):
            for index in range(config.clips_per_class, config.clips_per_class + config.extra_validation_clips_per_class):
                name = f"1-{target:02d}{index:03d}-A-{target}.wav"
                write_wav(staging / "audio" / name, render_clip(target, target, extra, config), config.sample_rate, "PCM_16")
                rows.append({"filename": name, "fold": 1, "target": target, "category": config.class_name(target)})
        rows.sort(key=lambda r: (r["fold"], r["filename"]))
        with open(staging / ESC50_CSV, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["filename", "fold", "target", "category"])
            writer.writeheader()
            writer.writerows(rows)
        with open(staging / CATEGORIES_CSV, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class", "category"])
            for target in range(config.num_classes):
                writer.writerow([config.class_name(target), CATEGORY_NAMES[target // config.classes_per_category]])
        descriptor = {"digest": config.digest(), "sample_rate": config.sample_rate, "clip_seconds": config.clip_seconds,
                      "synthetic": asdict(config)}
        (staging / DATASET_JSON).write_text(json.dumps(descriptor, indent=2))
    return root
