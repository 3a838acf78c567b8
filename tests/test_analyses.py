"""Analyses: planted answers (a low-pass shows in the high bands, a one-band classifier's attributions sit
in that band), calibrated intervals, corrections, and `probe analyse` end to end on real tiny runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from probe.analyses import attribution, bands, bandshift, information, passes, transfer
from probe.app.cli import main
from probe.models.base import WaveformClassifier
from probe.models.frontend import MelConfig, MelFrontEnd
from probe.models.small_cnn import SmallCNN

RATE = 16000


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1 / RATE) > cutoff_hz] = 0
    return np.fft.irfft(spectrum, n=x.shape[-1], axis=-1)


@pytest.mark.parametrize("band_set_name", ["octave", "third_octave"])
def test_a_planted_lowpass_shows_in_exactly_the_bands_above_it(band_set_name: str) -> None:
    rng = np.random.default_rng(0)
    originals = rng.standard_normal((24, RATE))
    spectra = {"original": bands.power_spectra(originals), "after": bands.power_spectra(_lowpass(originals, 2000))}
    band_set = bands.band_sets_for((band_set_name,), RATE)[0]
    tables = bandshift.band_shift_tables(spectra, [band_set], [f"c{i}" for i in range(24)], np.zeros(24, dtype=int),
                                         ["noise"], [0], ["all"], bandshift.ShiftSettings(n_boot=500), rng)
    overall = tables["band_shift_overall"]
    above, below = overall[overall.low_hz >= 2200], overall[overall.high_hz <= 1800]
    assert len(above) and len(below)
    assert (above.mean_shift_db < -20).all() and (above.verdict == "suppressed").all()
    assert (below.mean_shift_db.abs() < 0.5).all() and (below.verdict == "preserved").all()
    sentence = bandshift.describe_bands(overall, "after", band_set_name)["sentence"]
    assert sentence.startswith("suppresses") and "preserves" in sentence


def test_the_contrast_against_the_control_cancels_what_the_probe_does_anyway() -> None:
    rng = np.random.default_rng(1)
    originals = rng.standard_normal((24, RATE))
    untuned = _lowpass(originals, 6000)  # the AE's own bias, before finetuning
    finetuned = _lowpass(originals, 6000)
    spectrum = np.fft.rfft(finetuned, axis=-1)
    spectrum[..., np.fft.rfftfreq(RATE, 1 / RATE) > 2000] *= 0.5  # finetuning lowers 2-6 kHz by 6 dB
    finetuned = np.fft.irfft(spectrum, n=RATE, axis=-1)
    spectra = {"original": bands.power_spectra(originals), "before": bands.power_spectra(untuned),
               "after": bands.power_spectra(finetuned)}
    band_set = bands.band_sets_for(("octave",), RATE)[0]
    tables = bandshift.band_shift_tables(spectra, [band_set], [f"c{i}" for i in range(24)], np.zeros(24, dtype=int),
                                         ["noise"], [0], ["all"], bandshift.ShiftSettings(n_boot=500), rng)
    contrast = tables["band_contrast_vs_control"]
    changed = contrast[(contrast.low_hz >= 2100) & (contrast.high_hz <= 5900)]
    kept = contrast[contrast.high_hz <= 1900]
    assert len(changed) and (changed.mean_shift_db.sub(-6.02).abs() < 0.1).all()
    assert (kept.mean_shift_db.abs() < 0.01).all() and (kept.ci_low <= kept.mean_shift_db).all()


def test_the_headline_is_the_contrast_not_the_aes_own_error() -> None:
    """An AE that low-passes at 2 kHz before and after finetuning: the absolute shift says "suppressed" above 2 kHz,
    which is the AE's own error; the contrast against the untuned AE says finetuning preserved those bands."""
    rng = np.random.default_rng(2)
    originals = rng.standard_normal((24, RATE))
    lowpassed = bands.power_spectra(_lowpass(originals, 2000))
    spectra = {"original": bands.power_spectra(originals), "before": lowpassed, "after": lowpassed}
    band_set = bands.band_sets_for(("octave",), RATE)[0]
    tables = bandshift.band_shift_tables(spectra, [band_set], [f"c{i}" for i in range(24)], np.zeros(24, dtype=int),
                                         ["noise"], [0], ["all"], bandshift.ShiftSettings(n_boot=300), rng)
    overall, contrast = tables["band_shift_overall"], tables["band_contrast_vs_control"]
    above = lambda t: t[(t.low_hz >= 2200) & (t.condition != "before")]  # noqa: E731
    assert (above(overall).verdict == "suppressed").all()
    assert len(above(contrast)) and (above(contrast).verdict == "preserved").all()
    assert bandshift.describe_bands(contrast, "contrast", "octave")["sentence"].startswith("preserves")
    assert (contrast.reference == "before").all() and (contrast.family_tests == overall.family_tests.iloc[0]).all()


def test_a_random_start_is_contrasted_with_the_identity_on_its_chain(tmp_path: Path) -> None:
    from probe.analyses.bandshift import reference_of
    from probe.analyses.runs import chain_identity
    from probe.analyses.runs import starts_random

    assert starts_random({"autoencoder": "random"}) and starts_random({"autoencoder": "tiny"})
    assert not starts_random({"autoencoder": "runs/pre/best.pt"})
    assert not starts_random({"autoencoder": "archisound", "ae_weights": "autoencoder1d-AT-v1"})
    assert not starts_random({"autoencoder": "identity", "probe": "identity"})
    assert not starts_random({"autoencoder": "spectral_gain", "probe": "spectral-gain"})

    class Run:
        path, sample_rate = tmp_path, 16000
        config = {"autoencoder": "random", "ae_options": {"sample_rate": 48000}}
        originals = np.sin(2 * np.pi * np.array([[250.0], [1000.0], [3000.0]]) * np.arange(16000) / 16000).astype(np.float32)

    assert reference_of(Run) == "identity"
    through = np.asarray(chain_identity(Run))
    assert through.shape == Run.originals.shape and not np.array_equal(through, Run.originals)
    assert np.allclose(through[:, 100:-100], Run.originals[:, 100:-100], atol=0.01)  # 16 -> 48 -> 16 kHz: exact below the roll-off
    Run.config = {"autoencoder": "random", "ae_options": {"sample_rate": 16000}}
    assert np.array_equal(chain_identity(Run), Run.originals)


def test_bands_too_narrow_for_the_fft_are_merged_and_say_so() -> None:
    for rate in (16000, 32000, 44100, 48000):
        for name in ("octave", "third_octave"):
            band_set = bands.band_sets_for((name,), rate)[0]
            assert (band_set.fft_bins >= bands.MIN_FFT_BINS).all(), (rate, name, band_set.fft_bins[:4])
            covered = band_set.weights.sum(0)
            assert set(np.unique(covered[bands.fft_frequencies(rate) >= band_set.low_hz[0]])) == {1.0}
    thirds = bands.band_sets_for(("third_octave",), 48000)[0]
    assert thirds.merged_from[0].startswith("25 Hz+31.5 Hz") and thirds.labels[0].startswith("25 Hz–")
    assert thirds.merged_from[-1] == "" and "1 kHz" in thirds.labels
    columns = thirds.columns()
    assert list(columns["merged_from"]) == list(thirds.merged_from) and len(columns["fft_bins"]) == len(thirds)


def test_bands_near_the_noise_floor_get_no_verdict() -> None:
    """Originals with nothing above 2 kHz but window leakage (-38 dB and below, flagged at a 30 dB floor here):
    those bands' dB ratios are flagged, not read as findings."""
    rng = np.random.default_rng(0)
    originals = _lowpass(rng.standard_normal((16, RATE)), 2000)
    processed = originals * 0.5 + 1e-7 * rng.standard_normal(originals.shape)  # -6 dB, plus a whisper of noise
    spectra = {"original": bands.power_spectra(originals), "after": bands.power_spectra(processed)}
    band_set = bands.band_sets_for(("third_octave",), RATE)[0]
    overall = bandshift.band_shift_tables(spectra, [band_set], [f"c{i}" for i in range(16)], np.zeros(16, dtype=int),
                                          ["x"], [0], ["all"], bandshift.ShiftSettings(n_boot=300, noise_floor_db=30), rng)["band_shift_overall"]
    quiet = overall[overall.low_hz >= 2500]
    assert len(quiet) and quiet.near_noise_floor.all() and (quiet.verdict == "noise floor").all()
    loud = overall[overall.high_hz <= 1800]
    assert not loud.near_noise_floor.any() and np.allclose(loud.mean_shift_db, -6.02, atol=0.05)


def test_a_band_a_clip_leaves_empty_is_left_out_of_its_mean() -> None:
    """Half the clips hold nothing above 2 kHz; the reconstruction adds the same faint noise to all and halves
    everything. Above 2 kHz the mean must come from the clips that had content there (-6 dB), not from the
    empty ones, whose "shift" is the added noise (+tens of dB)."""
    rng = np.random.default_rng(3)
    full = rng.standard_normal((12, RATE))
    originals = np.concatenate([full, _lowpass(rng.standard_normal((12, RATE)), 2000)])
    processed = 0.5 * originals + 1e-2 * rng.standard_normal(originals.shape)  # noise 40 dB down
    spectra = {"original": bands.power_spectra(originals), "after": bands.power_spectra(processed)}
    band_set = bands.band_sets_for(("octave",), RATE)[0]
    common = ([band_set], [f"c{i}" for i in range(24)], np.zeros(24, dtype=int), ["x"], [0], ["all"])
    masked = bandshift.band_shift_tables(spectra, *common, bandshift.ShiftSettings(n_boot=300), rng)
    unmasked = bandshift.band_shift_tables(spectra, *common, bandshift.ShiftSettings(n_boot=300, clip_floor_db=None), rng)
    high = lambda t: t["band_shift_overall"].query("low_hz >= 2900")  # noqa: E731
    assert len(high(masked)) and np.allclose(high(masked).mean_shift_db, -6.0, atol=0.1)
    assert (high(masked).clips == 12).all() and (high(unmasked).clips == 24).all()
    assert (high(unmasked).mean_shift_db > 3).all()  # the empty clips' noise swamps the unmasked mean
    per_clip = masked["band_shift_per_clip"]
    assert per_clip[(per_clip.clip_id == "c20") & (per_clip.centre_hz >= 4000)].shift_db.isna().all()


def test_band_sets_cover_the_spectrum_once() -> None:
    for name in ("octave", "third_octave"):
        band_set = bands.band_sets_for((name,), 32000)[0]
        covered = band_set.weights.sum(0)
        freqs = bands.fft_frequencies(32000)
        assert set(np.unique(covered[freqs >= band_set.low_hz[0]])) == {1.0}  # no gaps, no overlaps
        assert band_set.high_hz[-1] == 16000
    assert bands.band_sets_for(("mel",), 32000) == []  # no classifier, no mel bands


class OneBandNet(nn.Module):
    """Logits from the time-mean of a single mel band: it hears nothing else."""

    def __init__(self, band: int, classes: int = 3) -> None:
        super().__init__()
        self.band = band
        self.head = nn.Linear(1, classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(mel[:, 0, self.band, :].mean(-1, keepdim=True))


@pytest.mark.parametrize("method", sorted(attribution.ATTRIBUTION_METHODS))
def test_a_one_band_classifier_gets_its_attribution_in_that_band(method: str) -> None:
    torch.manual_seed(0)
    config = MelConfig(sample_rate=RATE, n_mels=32, n_fft=512, win_length=400, hop_length=160, fmax_hz=7000)
    classifier = WaveformClassifier("one_band", MelFrontEnd(config), OneBandNet(band=11), sample_rate=RATE,
                                    class_names=["a", "b", "c"]).freeze()
    waveforms = np.random.default_rng(1).standard_normal((4, RATE // 2)).astype(np.float32) * 0.1
    settings = attribution.AttributionSettings(occlusion_patch=(1, 20), ig_steps=8, shap_samples=4)
    maps = attribution.attribution_maps(classifier, waveforms, np.array([0, 1, 2, 0]), method, settings, torch.device("cpu"))
    mass = maps.sum(-1)
    assert maps.shape[:2] == (4, 32) and np.allclose(maps.sum((1, 2)), 1, atol=1e-5)
    assert (mass.argmax(1) == 11).all() and (mass[:, 11] > 0.99).all()


# --- end to end on real tiny runs --------------------------------------------------------------


ANALYSE_FLAGS = ["--attribution-clips", "5", "--bootstrap", "300", "--device", "cpu", "--quiet"]


def test_probe_analyse_end_to_end(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    out = tmp_path / "analysis"
    assert main(["analyse", *map(str, two_runs), "--out", str(out), *ANALYSE_FLAGS]) == 0
    summary = json.loads((out / "summary.json").read_text())
    labels = [r["folder"] for r in summary["runs"]]
    assert len(set(labels)) == 2
    run_dir = out / labels[0]
    run_summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("accuracy_overall", "accuracy_per_class", "confusion", "band_shift_per_clip", "band_shift_overall",
                 "band_shift_per_class", "band_shift_per_category", "descriptors_per_clip", "descriptor_shifts",
                 "attribution_band_mass", "attribution_completeness", "nmi_per_clip", "nmi_summary"):
        frame = pd.read_parquet(run_dir / f"{name}.parquet")
        assert len(frame) > 0 and (run_dir / f"{name}.csv").is_file(), name
    # five validation clips: the randomisation check, whose verdict needs 8, says so and leaves its table empty
    assert len(pd.read_parquet(run_dir / "attribution_sanity.parquet")) == 0
    assert "at least 8 clips" in run_summary["attributions"]["randomisation_not_run"]
    steps = run_summary["attributions"]["completeness"]
    assert steps["sized"] and steps["steps"] == run_summary["attributions"]["ig_steps"] and steps["clips"] == 2
    per_clip = pd.read_parquet(run_dir / "band_shift_per_clip.parquet")
    assert set(per_clip.band_set) == {"octave", "third_octave", "mel"} and set(per_clip.condition) == {"before", "after"}
    assert (per_clip.unit == per_clip.clip_id).all()  # the synthetic clips are each their own recording
    for run in two_runs:
        outputs = run / "outputs"
        assert json.loads((outputs / "clip_groups.json").read_text()) == json.loads((outputs / "clip_ids.json").read_text())
    assert run_summary["bands"]["after"]["octave"]["sentence"]
    nmi = pd.read_parquet(run_dir / "nmi_summary.parquet")
    assert set(nmi.scope) == {"overall", "category", "class"} and set(nmi.condition) == {"before", "after"}
    assert 0 <= run_summary["information"]["after"]["nmi_chance"] < run_summary["information"]["after"]["nmi_intra"] <= 1
    assert "monotone" in run_summary["information"]["notes"]
    agreement = run_summary["attributions"]["agreement_with_contrast"]
    assert set(agreement) == set(attribution.ATTRIBUTION_METHODS)
    assert all({"spearman_rho", "ci_low", "ci_high", "bands"} <= set(a) and "p_value" not in a for a in agreement.values())
    # the tiny AE started from random weights: its reference is the identity, and the headline is the contrast
    assert run_summary["bands"]["reference"] == "identity" and run_summary["bands"]["headline"] == "contrast"
    assert run_summary["bands"]["contrast"]["octave"]["sentence"] and run_summary["bands"]["threshold_db"] == 3.0
    arrays = np.load(run_dir / "arrays.npz")
    assert arrays["mel_db_class_original"].shape[0] == len(run_summary["class_names"])
    example = run_summary["examples"][0]
    assert all((run_dir / "audio" / name).is_file() for name in example["files"].values())
    # Both runs share one classifier: one judge, and its cells re-score each run's own stored reconstructions.
    transfer = pd.read_parquet(out / "comparison" / "transfer.parquet")
    assert len(transfer) == 2 and transfer.own.all()
    for label in labels:
        stored = json.loads((out / label / "summary.json").read_text())["accuracy"]
        cell = transfer[transfer.autoencoder_of == label]
        assert cell.accuracy_after.item() == pytest.approx(stored["after"]["top1"], abs=1e-9)
        assert cell.accuracy_original.item() == pytest.approx(stored["original"]["top1"], abs=1e-9)
    # two random starts: no probe contrast against an untuned control, so no descriptive divergence between them
    assert not (out / "comparison" / "class_divergence.csv").exists()
    routes = pd.read_parquet(out / "comparison" / "route_correlations.parquet")
    assert (routes.kind_a != routes.kind_b).any() and routes.spearman_rho.between(-1, 1).all()
    assert not list(tmp_path.glob(".analysis.*")), "no staging folder may be left behind"


def test_analyse_is_deterministic(tmp_path: Path, two_runs: list[Path]) -> None:
    flags = [str(two_runs[0]), "--methods", "saliency", "--no-transfer", "--residuals", "all", *ANALYSE_FLAGS]
    assert main(["analyse", *flags, "--out", str(tmp_path / "a")]) == 0
    assert main(["analyse", *flags, "--out", str(tmp_path / "b")]) == 0
    label = json.loads((tmp_path / "a" / "summary.json").read_text())["runs"][0]["folder"]
    clips = json.loads((tmp_path / "a" / label / "summary.json").read_text())["clips"]
    assert len(list((tmp_path / "a" / label / "audio" / "residuals").glob("*.wav"))) == clips
    for name in ("band_shift_overall", "band_shift_per_class", "attribution_band_mass"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / label / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "b" / label / f"{name}.parquet"))


@pytest.mark.parametrize("holds", ["nothing", "audio", "a transformers checkpoint", "an empty subfolder"])
def test_a_folder_that_is_no_run_says_what_analyse_takes(holds: str, tmp_path: Path, sine_wav: Path, capsys) -> None:
    """Not "the run is not complete ... --resume": what analyse expected, naming the folder."""
    folder = tmp_path / "given"
    folder.mkdir()
    if holds == "audio":
        (folder / "clip.wav").write_bytes(sine_wav.read_bytes())
    elif holds == "a transformers checkpoint":
        (folder / "config.json").write_text('{"model_type": "audio-spectrogram-transformer"}')
    elif holds == "an empty subfolder":
        (folder / "sub").mkdir()
    assert main(["analyse", str(folder), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err == (f"probe: error: {folder}: not a probe run: expected a run directory made by `probe finetune` "
                   "(holding config.json and outputs/), or a folder of such runs\n")
    assert not (tmp_path / "x").exists()


def test_bad_inputs_get_one_line_errors(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text('{"config": {}}')  # a run started, never done
    assert main(["analyse", str(unfinished), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(unfinished) in err and "not complete" in err and err.count("\n") == 1
    assert main(["analyse", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["analyse", str(two_runs[0]), "--methods", "magic", "--out", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'magic'" in capsys.readouterr().err
    assert main(["analyse", str(two_runs[0]), "--examples", "9999", "--out", str(tmp_path / "x"), *ANALYSE_FLAGS]) == 2
    assert "outside" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))


@pytest.mark.integration
def test_passt_maps_come_through_its_own_front_end() -> None:
    from probe.models import load_classifier

    classifier = load_classifier("passt", num_classes=3, class_names=["a", "b", "c"])
    waveform = np.random.default_rng(0).standard_normal((1, 32000)).astype(np.float32) * 0.1
    maps = attribution.attribution_maps(classifier, waveform, np.array([1]), "saliency",
                                        attribution.AttributionSettings(), torch.device("cpu"))
    assert maps.shape[1] == 128 and np.isclose(maps.sum(), 1, atol=1e-5)
    assert len(bands.band_sets_for(("mel",), 32000, classifier)[0]) == 128


def test_nmi_known_answers() -> None:
    rng = np.random.default_rng(0)
    pattern = rng.normal(-40, 15, (64, 80))
    assert information.normalised_mutual_information(pattern, pattern) == pytest.approx(1.0)
    # A level change is not a loss of information: a dB offset keeps NMI at 1.
    assert information.normalised_mutual_information(pattern, pattern - 6) == pytest.approx(1.0)
    unrelated = information.normalised_mutual_information(pattern, rng.normal(-40, 15, (64, 80)))
    half = pattern.copy()
    half[32:] = rng.normal(-40, 15, (32, 80))  # the upper half of the bands replaced by noise
    kept_half = information.normalised_mutual_information(pattern, half)
    assert unrelated < 0.05 < kept_half < 0.9
    with pytest.raises(ValueError, match="differ in shape"):
        information.normalised_mutual_information(pattern, pattern[:10])
    order = information.derangement(7, rng)
    assert sorted(order) == list(range(7)) and not np.any(order == np.arange(7))


def test_nmi_tables_separate_kept_from_lost_clips() -> None:
    rng = np.random.default_rng(1)
    maps = {"original": rng.normal(-40, 15, (12, 64, 80))}
    maps["after"] = maps["original"] + 3.0  # a pure level change
    maps["before"] = rng.normal(-40, 15, (12, 64, 80))  # nothing kept
    targets = np.repeat(np.arange(4), 3)
    per_clip = information.nmi_per_clip(maps, [f"c{i}" for i in range(12)], ["a", "b", "c", "d"], targets, rng)
    summary = information.nmi_summary(per_clip, [0, 0, 1, 1], ["a", "b", "c", "d"], ["x", "y"], 0.95, 500, rng)
    overall = summary[summary.scope == "overall"].set_index(["condition", "measure"])
    assert overall.loc[("after", "nmi_intra"), "mean"] == pytest.approx(1.0)
    assert overall.loc[("after", "nmi_chance"), "mean"] < 0.1
    assert overall.loc[("after", "nmi_intra_shared"), "mean"] == pytest.approx(1.0)  # a gain is not a compression
    assert overall.loc[("before", "nmi_intra"), "mean"] < 0.1
    assert summary[(summary.scope == "category") & (summary.condition == "before")].iloc[0].clips == 6
    assert set(summary.measure) == set(information.NMI_MEASURES) and len(summary) % len(information.NMI_MEASURES) == 0
    row = information.measures_of(summary[(summary.scope == "overall") & (summary.condition == "before")])
    for measure in information.NMI_MEASURES:
        assert row[f"{measure}_ci_low"] <= row[measure] <= row[f"{measure}_ci_high"], measure


def test_nmi_inter_finds_an_autoencoder_that_imposes_one_pattern() -> None:
    rng = np.random.default_rng(101)
    maps = {"original": rng.normal(-40, 15, (10, 64, 80))}
    maps["identity"] = maps["original"].copy()
    maps["one_pattern"] = np.repeat(rng.normal(-40, 15, (1, 64, 80)), 10, axis=0)  # the same output for every input
    targets = np.repeat(np.arange(2), 5)
    per_clip = information.nmi_per_clip(maps, [f"c{i}" for i in range(10)], ["a", "b"], targets, rng)
    identity = per_clip[per_clip.condition == "identity"]
    assert np.array_equal(identity.nmi_inter.to_numpy(), identity.nmi_inter_originals.to_numpy())
    assert identity.nmi_inter.max() < 0.1 and identity.nmi_intra.min() == pytest.approx(1.0)
    imposed = per_clip[per_clip.condition == "one_pattern"]
    assert imposed.nmi_inter.min() == pytest.approx(1.0)
    assert (imposed.nmi_inter - imposed.nmi_inter_originals).min() > 0.8
    assert imposed.nmi_intra.max() < 0.1 and imposed.nmi_chance.max() < 0.1  # it keeps nothing of its input
    single = information.nmi_per_clip({k: v[:1] for k, v in maps.items()}, ["c0"], ["a", "b"], targets[:1], rng)
    assert single[["nmi_chance", "nmi_inter", "nmi_inter_originals"]].isna().all().all()
    assert single[["nmi_intra", "nmi_intra_shared"]].notna().all().all()


def test_nmi_shared_binning_registers_a_compression_that_ranks_cannot_see() -> None:
    rank, shared = information.normalised_mutual_information, information.normalised_mutual_information_shared
    for seed in range(100, 105):  # thresholds were set on seeds 0-4
        pattern = np.random.default_rng(seed).normal(-40, 15, (64, 80))
        compressed = pattern / 2  # power ** 0.5: the dB scale halved
        assert rank(pattern, pattern) == pytest.approx(1.0) and shared(pattern, pattern) == pytest.approx(1.0)
        assert rank(pattern, compressed) > 0.97  # ranks are blind to a monotone change of level
        assert shared(pattern, compressed) < 0.92
        assert shared(pattern, pattern - 6) == pytest.approx(1.0)  # a constant gain is not a compression
    with pytest.raises(ValueError, match="differ in shape"):
        shared(pattern, pattern[:10])


def test_bands_at_the_gain_floor_read_as_not_needed() -> None:
    band_set = bands.band_sets_for(("octave",), 16000)[0]
    frame = pd.DataFrame({"condition": "after", "band_set": "octave", "band_index": np.arange(len(band_set)),
                          "band": list(band_set.labels), "low_hz": band_set.low_hz, "centre_hz": band_set.centre_hz,
                          "high_hz": band_set.high_hz, "mean_shift_db": -1.0, "verdict": "preserved"})
    frequencies = np.linspace(0, 8000, 513)
    edge = band_set.low_hz[7]  # the 4 kHz octave's lower edge
    frame.loc[frame.low_hz >= edge, "verdict"] = "suppressed"
    frame.loc[len(frame) - 1, "verdict"] = "too few clips"  # no test behind it: the floor does not make it a finding
    gain = np.where(frequencies >= edge, -59.0, -1.0)  # the probe pushed everything above it to its -60 dB floor
    marked = bandshift.mark_not_needed(frame, frequencies, gain, floor_db=-60.0)
    above = marked.low_hz >= edge
    assert (marked.at_gain_floor == above).all()
    assert list(marked.verdict[above]) == ["not needed"] * (above.sum() - 1) + ["too few clips"]
    assert (marked.verdict[~above] == "preserved").all()
    assert "does not need" in bandshift.describe_bands(marked, "after")["sentence"]


def test_route_correlations_known_answers() -> None:
    """Per-clip routes on 8 mel bins: rho of the mean profiles, an interval over the clips, no parametric p."""
    from probe.analyses import routes

    rng = np.random.default_rng(0)
    bins, clips = np.arange(8), [f"c{i}" for i in range(12)]
    mass_profile = np.array([8, 7, 6, 5, 4, 3, 2, 1.0])  # attribution mass falls with frequency
    mass = pd.DataFrame({"clip_id": np.repeat(clips, 8), "condition": "original", "method": "saliency",
                         "mel_bin": np.tile(bins, 12), "mass": (mass_profile * rng.uniform(0.9, 1.1, (12, 8))).ravel()})

    def tables(profile: np.ndarray, floor: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
        values = profile + rng.normal(0, 0.1, (12, 8))
        per_clip = pd.DataFrame({"clip_id": np.repeat(clips, 8), "band_set": "mel", "condition": "after",
                                 "band_index": np.tile(bins, 12), "contrast_db": values.ravel()})
        contrast = pd.DataFrame({"band_set": "mel", "band_index": bins,
                                 "verdict": np.where(floor if floor is not None else np.zeros(8, bool), "noise floor", "x")})
        return {"band_shift_per_clip": per_clip, "band_contrast_vs_control": contrast}

    agreeing = {**tables(-np.arange(8.0)), "attribution_band_mass": mass}
    opposed = tables(np.arange(8.0), floor=bins == 7)
    control = tables(np.zeros(8)) | {"band_shift_per_clip": tables(np.zeros(8))["band_shift_per_clip"].assign(contrast_db=0.0)}
    units = pd.Series(clips, index=clips)
    table = routes.all_route_correlations([("clf", "keeps lows", agreeing, units), ("clf", "keeps highs", opposed, units),
                                           ("clf", "identity", control, units)], n_boot=300)
    assert "p_value" not in table and (table.pairs_compared == len(table)).all()
    rho = {frozenset((r.route_a, r.route_b)): r for r in table.itertuples()}
    agree = rho[frozenset(("keeps lows (contrast)", "saliency (attribution)"))]
    assert agree.spearman_rho == pytest.approx(1.0) and agree.ci_low > 0.9
    against = rho[frozenset(("keeps highs (contrast)", "saliency (attribution)"))]
    assert against.spearman_rho == pytest.approx(-1.0) and against.bands == 7  # the noise-floor band is left out
    assert not any("identity" in name for pair in rho for name in pair)  # a constant profile has no ranks


def test_classifier_contrasts_pair_the_same_clips() -> None:
    band_set = bands.band_sets_for(("octave",), RATE)[0]
    rng = np.random.default_rng(2)
    clips = [f"c{i}" for i in range(20)]

    def per_clip(shift: np.ndarray) -> pd.DataFrame:
        n, width = shift.shape
        return pd.DataFrame({"clip_id": np.repeat(clips, width), "condition": "after", "band_set": "octave",
                             "band_index": np.tile(np.arange(width), n), "band": np.tile(band_set.labels, n),
                             "centre_hz": np.tile(band_set.centre_hz, n), "shift_db": shift.ravel()})

    base = rng.normal(-5, 4, (20, len(band_set)))  # clip-to-clip spread that pairing must cancel
    kept_more = base.copy()
    kept_more[:, 3] += 3.0  # classifier A's probe keeps 3 dB more of band 3
    table = transfer.classifier_contrasts({("A", "ae"): per_clip(kept_more), ("B", "ae"): per_clip(base),
                                           ("C", "other ae"): per_clip(base)}, bandshift.ShiftSettings(n_boot=500), rng,
                                          band_sets=("octave",))
    assert set(zip(table.classifier_a, table.classifier_b)) == {("A", "B")}  # only the same setting pairs
    assert table.mean_shift_db.iloc[3] == pytest.approx(3.0) and table.ci_low.iloc[3] == pytest.approx(3.0)
    assert np.allclose(table.mean_shift_db.drop(index=3), 0.0) and table.p_adjusted.iloc[3] < 0.05


def test_the_planted_analysis_reads_what_finetuning_changed() -> None:
    """Known answer: finetuning lowers the low band by about 6 dB and leaves the high band, on top of an AE that adds
    +10 dB everywhere before finetuning; the contrast reads +6 dB (towards the high band) whatever the AE's own
    bias, and only a contrast shown beyond the threshold in the planted direction counts as recovered."""
    from probe.analyses.planted import PlantedTruth, planted_answer
    from probe.analyses.registry import RunResult
    from probe.synthetic import HIGH, LOW

    rng = np.random.default_rng(0)
    band_set = bands.band_sets_for(("third_octave",), 16000)[0]
    rows = []
    for clip in range(12):
        change = -6.0 + rng.normal(0, 0.5)
        for index, centre in enumerate(band_set.centre_hz):
            low = 150 <= centre <= 1800
            after = 10.0 + (change if low else 0.0)
            rows.append({"clip_id": f"c{clip}", "band_set": "third_octave", "band_index": index, "centre_hz": centre,
                         "condition": "after", "shift_db": after, "contrast_db": after - 10.0})
    per_clip = pd.DataFrame(rows)
    # a uniform attribution map over 64 mel bins: the ranges hold 26 and 9 bins, and must still read 0 dB
    edges = np.linspace(0, 8000, 65)
    profile = pd.DataFrame({"method": "integrated_gradients", "condition": "original", "band_index": np.arange(64),
                            "low_hz": edges[:-1], "centre_hz": (edges[:-1] + edges[1:]) / 2, "high_hz": edges[1:]})
    mass = pd.DataFrame({"clip_id": np.repeat([f"c{i}" for i in range(12)], 64), "method": "integrated_gradients",
                         "condition": "original", "mel_bin": np.tile(np.arange(64), 12), "mass": 1 / 64})
    tables = {"band_shift_per_clip": per_clip, "attribution_band_profile": profile, "attribution_band_mass": mass}
    results = [RunResult(None, {"classifier": name, "setting": setting, "control": setting == "control"}, tables)
               for name in ("relies_high", "relies_low") for setting in ("probe", "control")]
    truth = PlantedTruth((150.0, 1800.0), (4500.0, 7200.0), {"relies_high": HIGH, "relies_low": LOW})
    answer = planted_answer(results, truth)["classifiers"]
    found = answer["relies_high"]["probes"]["probe"]
    assert found["high_minus_low_db"] == pytest.approx(6.0, abs=0.4) and found["recovered"] is True
    assert found["ci_low"] < found["high_minus_low_db"] < found["ci_high"] and found["clips"] == 12
    assert answer["relies_low"]["probes"]["probe"]["recovered"] is False
    assert answer["relies_high"]["probes"]["control"]["recovered"] is None  # a control is never scored
    uniform = answer["relies_high"]["probes"]["attribution (integrated gradients)"]
    assert uniform["high_minus_low_db"] == 0.0 and uniform["recovered"] is False
    # a contrast beyond zero but not shown beyond the threshold is no recovery
    weak = per_clip.assign(contrast_db=per_clip.contrast_db / 3)
    answer = planted_answer([RunResult(None, {"classifier": "relies_high", "setting": "probe"},
                                       {"band_shift_per_clip": weak})], truth)["classifiers"]
    assert 1.5 < answer["relies_high"]["probes"]["probe"]["high_minus_low_db"] < 2.5
    assert answer["relies_high"]["probes"]["probe"]["recovered"] is False


def test_the_analysis_registry_orders_by_what_each_reads_and_holds_analyses_to_their_tables() -> None:
    from probe.analyses import registry
    from probe.analyses.analyse import _run_analyses
    from probe.analyses.config import AnalyseConfig

    for scope in ("run", "comparison"):
        ordered = registry.analyses(scope)
        position = {analysis.name: k for k, analysis in enumerate(ordered)}
        for analysis in ordered:  # every analysis of the scope after every writer of what it reads
            for read in analysis.reads:
                writers = [w for w in registry.ANALYSES.values() if read in w.outputs and w.scope == scope]
                assert all(position[w.name] < position[analysis.name] for w in writers), (analysis.name, read)
    names = [a.name for a in registry.analyses("comparison")]
    assert names.index("answer") < names.index("planted")
    rogue = registry.Analysis("rogue", "comparison", ("declared",), lambda context: context.tables.update(other=pd.DataFrame()))
    context = registry.ComparisonContext([], {}, AnalyseConfig(runs=("x",)), None, None)
    with pytest.raises(RuntimeError, match="does not declare"):
        _run_analyses([rogue], context, AnalyseConfig(runs=("x",)))


def test_an_analysis_folder_from_an_older_probe_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import json

    from probe.errors import ConfigError
    from probe.reports.data import load_analysis

    (tmp_path / "run").mkdir()
    (tmp_path / "summary.json").write_text(json.dumps({"runs": [{"label": "a", "folder": "run"}]}))
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"label": "a", "autoencoder": "archisound"}))
    with pytest.raises(ConfigError, match="older probe.*probe analyse"):
        load_analysis([tmp_path])


def test_measuring_a_pass_keeps_nothing_alive() -> None:
    """Known answer: sigmoid saves its own output for backward. Measuring the saved bytes must leave that output
    collectable (a pack hook returning it made a cycle through autograd's C++ graph: PaSST leaked 1.1 GB per call)."""
    import weakref

    from probe.analyses import attribution

    outputs: list[weakref.ref] = []

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.sigmoid(x)
            outputs.append(weakref.ref(y))
            return y * 2

    assert passes.activation_bytes_per_sample(Net(), torch.zeros(1, 64)) == 64 * 4
    assert outputs and all(ref() is None for ref in outputs), "a measured pass is still alive"


@pytest.mark.integration
def test_the_memory_budget_sizes_each_pass_and_leaves_the_maps_alone(tmp_path: Path) -> None:
    """Known answer: a linear layer keeps its input for the backward pass, 4 bytes per input value and sample; a
    smaller budget makes smaller passes, and the maps do not change with it (GradientSHAP's draws are per clip)."""
    from probe.analyses import attribution
    from probe.analyses.config import AttributionSettings

    linear = torch.nn.Linear(96, 3)
    assert passes.activation_bytes_per_sample(linear, torch.zeros(1, 96)) == 96 * 4
    cpu = torch.device("cpu")
    classifier = WaveformClassifier("toy", MelFrontEnd(MelConfig(sample_rate=RATE, n_fft=512, win_length=400,
                                                                 hop_length=160, n_mels=32, fmax_hz=8000.0)),
                                    SmallCNN(3, channels=4, n_mels=32), sample_rate=RATE, class_names=["a", "b", "c"]).freeze()
    waveforms = np.random.default_rng(0).standard_normal((5, RATE // 2)).astype(np.float32) * 0.1
    mel = classifier.mel(torch.from_numpy(waveforms[:1]))
    # steps fixed: chosen by completeness, they could differ by a rounding where an error lies at the bound
    roomy, tight = AttributionSettings(max_memory_gb=1.0, ig_steps=8), AttributionSettings(max_memory_gb=1e-5, ig_steps=8)
    per_sample = passes.activation_bytes_per_sample(classifier.logits_from_mel, mel)
    assert passes.samples_per_pass(classifier.logits_from_mel, mel, roomy, cpu) == min(1024, 2**30 // (3 * per_sample))
    assert passes.samples_per_pass(classifier.logits_from_mel, mel, tight, cpu) == 1
    for method in attribution.ATTRIBUTION_METHODS:
        maps = [attribution.attribution_maps(classifier, waveforms, np.array([0, 1, 2, 0, 1]), method, settings, cpu, seed=3)
                for settings in (roomy, tight)]
        assert np.allclose(maps[0], maps[1], rtol=1e-4, atol=1e-7), method


def test_nmi_intervals_resample_source_recordings() -> None:
    """Eight recordings, four clips cut from each (the same map): the clustered interval is that of eight values, as
    wide as the recordings' own, and wider than four times as many independent clips would give."""
    rng = np.random.default_rng(33)
    recordings = rng.normal(-40, 15, (8, 32, 40))
    original = np.repeat(recordings, 4, axis=0)
    noise = np.repeat(rng.uniform(0, 30, 8), 4)[:, None, None] * rng.normal(size=(1, 32, 40))
    maps = {"original": original, "after": original + noise}
    targets = np.zeros(32, dtype=int)
    units = np.repeat([f"rec{i}" for i in range(8)], 4)
    ids = [f"c{i}" for i in range(32)]
    clustered = information.nmi_per_clip(maps, ids, ["a"], targets, np.random.default_rng(0), units)
    assert list(clustered.unit[:5]) == ["rec0"] * 4 + ["rec1"]
    def intra(table):
        return table[(table.scope == "overall") & (table.measure == "nmi_intra")].iloc[0]

    row = intra(information.nmi_summary(clustered, [0], ["a"], ["x"], 0.95, 1000, np.random.default_rng(0)))
    naive = intra(information.nmi_summary(clustered.assign(unit=clustered.clip_id), [0], ["a"], ["x"], 0.95, 1000,
                                          np.random.default_rng(0)))
    assert row.units == 8 and naive.units == 32
    assert row.ci_high - row.ci_low > 1.5 * (naive.ci_high - naive.ci_low)


def test_class_divergence_reads_contrasts_only() -> None:
    """The divergence compares the probes' contrasts against their controls: a difference only in the absolute 'after'
    shifts (which hold the AE's own error) is not one."""
    rows = []
    for run, after, contrast in (("a", 0.0, 1.0), ("b", 9.0, 1.0), ("c", 0.0, 4.0)):
        for condition, value in (("after", after), ("contrast", contrast)):
            for band in range(3):
                rows.append({"run": run, "class": "dog", "band_set": "octave", "condition": condition,
                             "band_index": band, "mean_shift_db": value, "clips": 8})
    table = transfer.profile_divergence(pd.DataFrame(rows), "class")
    assert table.iloc[0].rms_difference_db == pytest.approx(3.0) and "c" in table.iloc[0].most_different
    assert table.iloc[0].clips == 8


def test_the_words_check_reads_what_was_planted() -> None:
    """Known answers for `planted.judge_words`: what makes a planted CNN's sentence right, and what makes it wrong."""
    from probe.analyses.planted import PlantedTruth, judge_words

    truth = PlantedTruth((150.0, 1800.0), (4500.0, 7200.0), {})

    def claims(*rows: tuple[str, float, float, int | None]) -> pd.DataFrame:
        return pd.DataFrame([{"claim": c, "from_hz": lo, "to_hz": hi, "group": g} for c, lo, hi, g in rows])

    right = claims(("needs", 354, 2830, None), ("can_do_without", 22, 177, None), ("can_do_without", 2830, 8000, None))
    assert judge_words(right, "low", truth) == {"sentence_claims": 3, "can_do_without": {"low": False, "high": True},
                                                 "needs_planted_band": True, "right": True, "wrong": []}
    # a gap in what it can do without leaves the other band uncovered
    gap = claims(("needs", 2830, 8000, None), ("can_do_without", 22, 707, None), ("can_do_without", 1410, 2830, None))
    assert judge_words(gap, "high", truth)["wrong"] == ["does not say it can do without the low band"]
    # "needs one of" counts only when every range of its group lies in the planted band
    either = claims(("needs_one_of", 354, 707, 1), ("needs_one_of", 707, 1410, 1), ("can_do_without", 2830, 8000, None))
    assert judge_words(either, "low", truth)["right"]
    elsewhere = claims(("needs_one_of", 354, 707, 1), ("needs_one_of", 2830, 5660, 1), ("can_do_without", 5660, 8000, None))
    assert "does not say it needs the low band" in judge_words(elsewhere, "low", truth)["wrong"]
    # the CNN taught both bands: never both dispensable, nor one whose removal costs more than the margin
    both = claims(("can_do_without", 22, 2830, None), ("can_do_without", 2830, 8000, None))
    assert judge_words(both, None, truth)["wrong"] == ["can do without both bands"]
    one = claims(("can_do_without", 2830, 8000, None))
    assert judge_words(one, None, truth)["right"]
    costly = {"high": {"decision": "costs more"}, "low": {"decision": "costs less"}}
    assert not judge_words(one, None, truth, costly)["right"]
