"""Frequency bands and the energy a clip holds in each.

A band set is a weight matrix over FFT bins: rectangular for octave and third-octave bands
(base-2 centres around 1 kHz, cut at Nyquist), the classifier's own triangular filters for its
mel bands. Energies come from one power spectrum per clip (mean |STFT|^2 over frames).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from probe.errors import ConfigError
from probe.registries import Registry
from probe.units import format_hz

ANALYSIS_N_FFT = 4096
ANALYSIS_HOP = 1024
LOWEST_BAND_HZ = 20.0
EPSILON = 1e-12
MIN_FFT_BINS = 4
"""A band must span at least this many analysis FFT bins (the main lobe of the Hann window): a narrower one
holds the leakage of its neighbours, not an energy of its own. Fractional-octave bands below it are merged with
the band above (at 32 kHz the third-octave bands below about 160 Hz); mel bands below it get no verdict."""


@dataclass(frozen=True)
class BandSet:
    """Bands as rows of a (bands, bins) weight matrix on the analysis FFT grid."""

    name: str
    labels: tuple[str, ...]
    low_hz: np.ndarray
    centre_hz: np.ndarray
    high_hz: np.ndarray
    weights: np.ndarray
    merged_from: tuple[str, ...] = ()
    """Per band, the nominal bands merged into it because they were too narrow ("" for none)."""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def fft_bins(self) -> np.ndarray:
        """How many analysis FFT bins each band spans (a triangle's weights summed)."""
        return self.weights.sum(1)

    def columns(self) -> dict[str, object]:
        """The band columns every band table carries."""
        return {"band_set": self.name, "band_index": np.arange(len(self)), "band": list(self.labels),
                "low_hz": self.low_hz, "centre_hz": self.centre_hz, "high_hz": self.high_hz,
                "fft_bins": self.fft_bins, "merged_from": list(self.merged_from or ("",) * len(self))}


BandSetFactory = Callable[[int, object], "BandSet | None"]


@dataclass(frozen=True)
class BandSetKind:
    """A registered band set: how to build it for a sample rate and classifier, and what it is for."""

    build: BandSetFactory
    fixed: bool = True
    """The same bands behind every classifier, so runs behind different classifiers compare on them (the report's
    overview figures, `probe compare`'s classifier contrasts); False for a set built from the classifier's input."""
    answer: bool = False
    """The set the answer's words ("needs", "can do without") are said on: wide bands, few comparisons (exactly one)."""
    fine: bool = False
    """The finest fixed set: where a stated frequency range (a planted band) is read (exactly one)."""
    classifier_input: bool = False
    """The classifier's own input bands, where its attribution maps land (exactly one)."""


BAND_SETS: Registry[BandSetKind] = Registry("band set")


def register_band_set(name: str, fixed: bool = True, answer: bool = False, fine: bool = False,
                      classifier_input: bool = False) -> Callable[[BandSetFactory], BandSetFactory]:
    """Decorator: register `build(sample_rate, classifier) -> BandSet | None` as the band set `name`."""

    def decorate(build: BandSetFactory) -> BandSetFactory:
        BAND_SETS.register(name, BandSetKind(build, fixed, answer, fine, classifier_input))
        return build

    return decorate


def fixed_band_sets() -> tuple[str, ...]:
    """The band sets that are the same behind every classifier, in registration order."""
    return tuple(name for name, kind in BAND_SETS.ensure_loaded().items() if kind.fixed)


def _the_one(role: str) -> str:
    names = [name for name, kind in BAND_SETS.ensure_loaded().items() if getattr(kind, role)]
    if len(names) != 1:
        raise ConfigError(None, f"exactly one band set must be registered with {role}=True; found {names or 'none'}")
    return names[0]


def answer_band_set() -> str:
    """The band set the answer's words are said on."""
    return _the_one("answer")


def fine_band_set() -> str:
    """The finest fixed band set, where a stated frequency range is read."""
    return _the_one("fine")


def input_band_set() -> str:
    """The band set of the classifier's own input bands (where attributions land)."""
    return _the_one("classifier_input")


def fft_frequencies(sample_rate: int, n_fft: int = ANALYSIS_N_FFT) -> np.ndarray:
    return np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)


R10_MANTISSAS = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
NOMINAL_HZ = np.array([m * 10.0**e for e in range(0, 5) for m in R10_MANTISSAS])


def nominal_hz(centre_hz: float) -> float:
    """The nominal (IEC 61260 R10) name of a base-2 band centre: 31.25 -> 31.5, 1259 -> 1250."""
    return float(NOMINAL_HZ[np.argmin(np.abs(np.log(NOMINAL_HZ / centre_hz)))])


def fractional_octave_bands(name: str, sample_rate: int, fraction: int) -> BandSet:
    """1/fraction-octave bands with centres 1 kHz * 2^(k/fraction), from 20 Hz to Nyquist."""
    nyquist = sample_rate / 2
    half = 2 ** (1 / (2 * fraction))
    k_low = int(np.ceil(fraction * np.log2(LOWEST_BAND_HZ * half / 1000)))
    k_high = int(np.floor(fraction * np.log2(nyquist / 1000)))
    centres = 1000.0 * 2.0 ** (np.arange(k_low, k_high + 1) / fraction)
    low, high = centres / half, np.minimum(centres * half, nyquist)
    high[-1] = nyquist  # the top band reaches Nyquist (at 48 kHz the 20 kHz band's edge, 22.4 kHz, falls short)
    freqs = fft_frequencies(sample_rate)
    weights = ((freqs[None, :] >= low[:, None]) & (freqs[None, :] < high[:, None])).astype(np.float64)
    if high[-1] >= nyquist:
        weights[-1, -1] = 1.0  # the Nyquist bin belongs to the top band
    labels = [format_hz(nominal_hz(c)) for c in centres]
    return merge_narrow_bands(BandSet(name, tuple(labels), low, centres, high, weights))


def merge_narrow_bands(band_set: BandSet, min_bins: int = MIN_FFT_BINS) -> BandSet:
    """Merge every band narrower than `min_bins` FFT bins with its upper neighbour (the top band with the one below),
    until each spans enough; a merged band is labelled by its edges and lists what it holds."""
    groups: list[list[int]] = []
    for index in range(len(band_set)):
        if groups and band_set.weights[groups[-1]].sum() < min_bins:
            groups[-1].append(index)
        else:
            groups.append([index])
    if len(groups) > 1 and band_set.weights[groups[-1]].sum() < min_bins:
        groups[-2] += groups.pop()
    if all(len(g) == 1 for g in groups):
        return band_set
    low = np.array([band_set.low_hz[g[0]] for g in groups])
    high = np.array([band_set.high_hz[g[-1]] for g in groups])
    centres = np.array([band_set.centre_hz[g[0]] if len(g) == 1 else np.sqrt(band_set.low_hz[g[0]] * band_set.high_hz[g[-1]])
                        for g in groups])
    labels = tuple(band_set.labels[g[0]] if len(g) == 1 else f"{band_set.labels[g[0]]}–{band_set.labels[g[-1]]}"
                   for g in groups)
    merged = tuple("" if len(g) == 1 else "+".join(band_set.labels[k] for k in g) for g in groups)
    weights = np.stack([band_set.weights[g].sum(0) for g in groups])
    return BandSet(band_set.name, labels, low, centres, high, weights, merged)


@register_band_set("octave", answer=True)
def octave_bands(sample_rate: int, classifier: object = None) -> BandSet:
    """Octave bands, centred on 1 kHz x 2^k, from 20 Hz to the Nyquist frequency."""
    return fractional_octave_bands("octave", sample_rate, 1)


@register_band_set("third_octave", fine=True)
def third_octave_bands(sample_rate: int, classifier: object = None) -> BandSet:
    """Third-octave bands, centred on 1 kHz x 2^(k/3), from 20 Hz to the Nyquist frequency."""
    return fractional_octave_bands("third_octave", sample_rate, 3)


@register_band_set("mel", fixed=False, classifier_input=True)
def classifier_mel_bands(sample_rate: int, classifier: object = None) -> BandSet | None:
    """The classifier's own eval-mode mel filters, resampled onto the analysis grid; None without a MelConfig."""
    from dataclasses import replace

    from probe.models.frontend import MelConfig, kaldi_mel_banks, mel_band_edges_hz

    if getattr(classifier, "waveform_input", False):
        return inspection_bands(sample_rate, classifier)
    own_filters = getattr(getattr(classifier, "frontend", None), "filter_bank", None)
    if own_filters is not None and getattr(classifier, "sample_rate", None) == sample_rate:
        return filter_bank_bands(*own_filters(), sample_rate)
    config = getattr(getattr(classifier, "frontend", None), "config", None)
    if not isinstance(config, MelConfig) or config.sample_rate != sample_rate:
        return None
    edges = mel_band_edges_hz(config).numpy().astype(np.float64)
    fine = replace(config, n_fft=ANALYSIS_N_FFT)
    weights = kaldi_mel_banks(fine, config.fmin_hz, config.effective_fmax_hz).numpy().astype(np.float64)
    labels = tuple(f"mel {i} ({format_hz(c)})" for i, c in enumerate(edges[:, 1]))
    return BandSet("mel", labels, edges[:, 0], edges[:, 1], edges[:, 2], weights[:, : ANALYSIS_N_FFT // 2 + 1])


def filter_bank_bands(frequencies_hz: np.ndarray, filters: np.ndarray, sample_rate: int) -> BandSet:
    """A front-end's own mel filters (mel bins, its FFT bins at `frequencies_hz`), interpolated onto the analysis grid;
    each band's edges are where its filter starts and ends, its centre where it peaks."""
    freqs = fft_frequencies(sample_rate)
    weights = np.stack([np.interp(freqs, frequencies_hz, row) for row in filters]).astype(np.float64)
    weights = weights / np.maximum(weights.max(1, keepdims=True), 1e-30)
    support = [np.flatnonzero(row > 0) for row in filters]  # a triangle's edges are its zeros either side
    low = np.array([frequencies_hz[max(bins[0] - 1, 0)] for bins in support])
    high = np.array([frequencies_hz[min(bins[-1] + 1, len(frequencies_hz) - 1)] for bins in support])
    centres = np.array([frequencies_hz[np.argmax(row)] for row in filters])
    labels = tuple(f"mel {i} ({format_hz(c)})" for i, c in enumerate(centres))
    return BandSet("mel", labels, low, centres, high, weights)


def inspection_bands(sample_rate: int, classifier: object) -> BandSet | None:
    """A waveform-in network's input bands: the linear bins of its STFT inspection layer (where its attributions
    land), as rectangles on the analysis grid. Listed as the `mel` band set, the set of the network's own input
    bands, so that the attributions and their routes read them as they read a mel network's."""
    from probe.models.inspection import InspectionConfig

    if getattr(classifier, "sample_rate", None) != sample_rate:
        return None
    edges = InspectionConfig.for_rate(sample_rate).bin_edges_hz()
    freqs = fft_frequencies(sample_rate)
    weights = ((freqs[None, :] >= edges[:, :1]) & (freqs[None, :] < edges[:, 2:])).astype(np.float64)
    weights[-1, -1] = 1.0  # the Nyquist bin belongs to the top band
    labels = tuple(f"STFT bin {i} ({format_hz(c)})" for i, c in enumerate(edges[:, 1]))
    return BandSet("mel", labels, edges[:, 0], edges[:, 1], edges[:, 2], weights)


def band_sets_for(names: tuple[str, ...], sample_rate: int, classifier: object = None) -> list[BandSet]:
    """The requested band sets that apply (mel needs a classifier with a mel front-end)."""
    built = [BAND_SETS.lookup(name).build(sample_rate, classifier) for name in names]
    return [band_set for band_set in built if band_set is not None]


def long_enough_for_stft(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """`x` (..., samples), zero-padded at the end where it is too short for a centred STFT's reflect padding (half a
    window): a clip shorter than that gets its frames all the same, and original and reconstruction alike."""
    short = n_fft // 2 + 1 - x.shape[-1]
    return torch.nn.functional.pad(x, (0, short)) if short > 0 else x


def power_spectra(waveforms: np.ndarray, batch: int = 64) -> np.ndarray:
    """Mean power spectrum per clip, (N, n_fft/2 + 1), from a Hann-windowed STFT."""
    window = torch.hann_window(ANALYSIS_N_FFT, dtype=torch.float64)
    spectra = []
    for start in range(0, len(waveforms), batch):
        x = long_enough_for_stft(torch.tensor(np.asarray(waveforms[start : start + batch]), dtype=torch.float64),
                                 ANALYSIS_N_FFT)
        spec = torch.stft(x, ANALYSIS_N_FFT, ANALYSIS_HOP, window=window, center=True, return_complex=True)
        spectra.append((spec.abs() ** 2).mean(-1).numpy())
    return np.concatenate(spectra)


def band_energies_db(spectra: np.ndarray, band_set: BandSet) -> np.ndarray:
    """Energy per clip and band in dB, (N, bands)."""
    return 10 * np.log10(spectra @ band_set.weights.T + EPSILON)
