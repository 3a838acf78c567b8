"""Spectral descriptors and mean spectrograms of originals and reconstructions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from probe.analyses import bands
from probe.analyses.bands import long_enough_for_stft
from probe.analyses.schema import TableSchema, col, interval
from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.stats import bootstrap_mean_ci, t_test_p
from probe.progress import EMPTY_MEL_FILTER, without_known_warnings
from probe.rundir import Tables

DESCRIPTORS = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness")
DESCRIPTOR_N_FFT = 2048
DESCRIPTOR_HOP = 512
MEL_N_FFT = 1024
MEL_HOP = 320
MEL_BANDS = 128
MAX_MAP_FRAMES = 100


def _magnitudes(waveforms: np.ndarray) -> torch.Tensor:

    x = long_enough_for_stft(torch.tensor(np.asarray(waveforms), dtype=torch.float32), DESCRIPTOR_N_FFT)
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

    with without_known_warnings(EMPTY_MEL_FILTER):
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


def descriptor_shifts(per_clip: pd.DataFrame, conditions: tuple[str, ...], level: float, n_boot: int,
                      rng: np.random.Generator, units: np.ndarray | None = None) -> pd.DataFrame:
    """Per descriptor and reconstruction condition: the mean shift from the original, with a bootstrap interval over
    the clips' `units` (source recordings) and the two-sided t-test p of a zero mean."""

    original = per_clip[per_clip.condition == "original"].set_index("clip_id")
    rows = []
    for condition in conditions:
        rec = per_clip[per_clip.condition == condition].set_index("clip_id").loc[original.index]
        diffs = (rec[list(DESCRIPTORS)] - original[list(DESCRIPTORS)]).to_numpy()
        mean, low, high = bootstrap_mean_ci(diffs, level, n_boot, rng, units)
        p_values = t_test_p(diffs, units)
        for i, name in enumerate(DESCRIPTORS):
            rows.append({"condition": condition, "descriptor": name, "mean_original": float(original[name].mean()),
                         "mean_shift": mean[i], "ci_low": low[i], "ci_high": high[i], "p_value": p_values[i]})
    return pd.DataFrame(rows)


def run_mel_maps(context: RunContext) -> dict[str, np.ndarray]:
    """The run's log-mel maps per condition, computed once per run for every analysis that asks."""
    run = context.run
    return context.memo("mel_maps", lambda: {c: mel_maps(run.waveforms(c), run.sample_rate) for c in run.conditions})


DESCRIPTOR_UNITS = {"centroid_hz": "Hz", "bandwidth_hz": "Hz", "rolloff_hz": "Hz", "flatness": ""}
SPECTRA_TABLES = (
    TableSchema(Tables.DESCRIPTORS_PER_CLIP, "clip x condition: spectral descriptors (librosa, mean over frames)",
                (col("clip_id", "str", "the clip"), col("class", "str", "its class"),
                 col("condition", "str", "the original or a reconstruction", values=("original", "before", "after")),
                 col("centroid_hz", "float", "spectral centroid", "Hz"),
                 col("bandwidth_hz", "float", "spectral bandwidth about the centroid", "Hz"),
                 col("rolloff_hz", "float", "frequency below which 85 % of the energy lies", "Hz"),
                 col("flatness", "float", "spectral flatness (0: tonal, 1: white noise)"))),
    TableSchema(Tables.DESCRIPTOR_SHIFTS, "reconstruction x descriptor: the mean change from the original",
                (col("condition", "str", "which reconstruction", values=("before", "after")),
                 col("descriptor", "str", "which descriptor (its unit: the suffix of its name)", values=DESCRIPTORS),
                 col("mean_original", "float", "the descriptor's mean on the originals"),
                 col("mean_shift", "float", "mean change, reconstruction minus original, in the descriptor's unit"),
                 *interval(of="the mean change"), col("p_value", "float", "two-sided t-test p of a zero mean"))),
)


@register_analysis("spectra", tables=SPECTRA_TABLES)
def spectra_analysis(context: RunContext) -> None:
    """Mean spectra and log-mel maps per class and category; spectral descriptors per clip and their shifts."""
    run, config, arrays = context.run, context.config, context.arrays
    n_classes, n_categories, categories = len(run.class_names), len(run.category_names), run.categories
    spectra = context.memo("power_spectra", lambda: {c: bands.power_spectra(run.waveforms(c)) for c in run.conditions})
    arrays["stft_frequencies_hz"] = bands.fft_frequencies(run.sample_rate)
    for condition in run.conditions:
        log_spectra = 10 * np.log10(spectra[condition] + bands.EPSILON)
        arrays[f"stft_db_class_{condition}"] = group_means(log_spectra, run.targets, n_classes)
        arrays[f"stft_db_category_{condition}"] = group_means(log_spectra, categories, n_categories)

    context.say(f"{run.label}: spectral descriptors and mel maps")
    descriptor_rows, maps = [], run_mel_maps(context)
    for condition in run.conditions:
        values = spectral_descriptors(run.waveforms(condition), run.sample_rate)
        descriptor_rows.append(pd.DataFrame({"clip_id": run.clip_ids, "class": np.asarray(run.class_names)[run.targets],
                                             "condition": condition, **values}))
        arrays[f"mel_db_class_{condition}"] = group_means(maps[condition], run.targets, n_classes).astype(np.float32)
        arrays[f"mel_db_category_{condition}"] = group_means(maps[condition], categories, n_categories).astype(np.float32)
    context.tables[Tables.DESCRIPTORS_PER_CLIP] = pd.concat(descriptor_rows, ignore_index=True)
    context.tables[Tables.DESCRIPTOR_SHIFTS] = descriptor_shifts(context.tables[Tables.DESCRIPTORS_PER_CLIP], tuple(run.reconstructions),
                                                            config.shifts.level, config.shifts.n_boot, context.rng, run.units)
