"""Parsimony probes: the spectral-gain module and the energy penalty, on real small runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from probe.app.cli import main
from probe.probes import load_autoencoder
from probe.probes.spectral_gain import SpectralGain
from probe.rundir import RunDir


def test_spectral_gain_starts_as_the_identity_and_round_trips(tmp_path: Path) -> None:
    x = torch.randn(2, 1, 8000)
    banded = SpectralGain(sample_rate=16000, n_fft=512, hop_length=128)
    assert banded.raw_gain.shape == (64,) and torch.allclose(banded.band_to_bin.sum(1), torch.ones(257))
    assert torch.allclose(banded.gain_db(), torch.zeros(257), atol=1e-5) and torch.allclose(banded(x), x, atol=1e-5)
    probe = SpectralGain(sample_rate=16000, n_fft=512, hop_length=128, bands=0)  # one gain per bin
    assert torch.allclose(probe(x), x, atol=1e-5)
    with torch.no_grad():
        probe.raw_gain[probe.frequencies_hz() > 2000] = -30.0  # deep in the floor
    torch.save(probe.checkpoint(), tmp_path / "gain.pt")
    loaded = load_autoencoder(str(tmp_path / "gain.pt"))
    assert isinstance(loaded, SpectralGain) and loaded.sample_rate == 16000
    y = loaded(x)[0, 0].detach().numpy()
    spectrum = lambda s: np.abs(np.fft.rfft(s)) ** 2  # noqa: E731
    freqs = np.fft.rfftfreq(8000, 1 / 16000)
    high = freqs > 2500
    ratio_db = 10 * np.log10(spectrum(y)[high].sum() / spectrum(x[0, 0].numpy())[high].sum())
    assert ratio_db < -30  # the floor is -60 dB; STFT leakage across the 2 kHz edge caps the measured drop


def _finetune(tmp_path: Path, synthetic_root: Path, classifier: Path, name: str, *extra: str) -> RunDir:
    args = ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(classifier), "--data",
            f"esc50:{synthetic_root}", "--out", str(tmp_path / name), "--device", "cpu", "--quiet", *extra]
    assert main(args) == 0
    return RunDir(tmp_path / name)


def _relative_energy(run: RunDir) -> float:
    return float(np.mean(np.load(run.outputs / "reconstructions_after.npy") ** 2) /
                 np.mean(np.load(run.outputs / "originals.npy") ** 2))


def test_the_energy_penalty_lowers_the_reconstruction_energy(tmp_path: Path, synthetic_root: Path,
                                                             trained_classifier: Path) -> None:
    common = ["--autoencoder", "tiny", "--epochs", "3", "--lr", "3e-3", "--batch-size", "5"]
    plain = _finetune(tmp_path, synthetic_root, trained_classifier, "plain", *common)
    penalised = _finetune(tmp_path, synthetic_root, trained_classifier, "penalised", *common, "--energy-penalty", "2")
    assert _relative_energy(penalised) < 0.8 * _relative_energy(plain)
    assert "relative energy" in (penalised.outputs / "objective.json").read_text()


def test_the_spectral_gain_probe_lowers_its_gains(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    run = _finetune(tmp_path, synthetic_root, trained_classifier, "gain", "--probe", "spectral-gain")
    frequencies, gain_db = np.load(run.outputs / "gain_db.npy")
    assert frequencies[-1] == 8000 and gain_db.mean() < -0.5
    assert _relative_energy(run) < 1
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--autoencoder",
                 "tiny", "--gain-penalty", "0.1", "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "bad"),
                 "--epochs", "1", "--device", "cpu", "--quiet"]) == 2


def test_the_identity_control_reproduces_the_bare_classifier(tmp_path: Path, synthetic_root: Path, trained_classifier: Path,
                                                              capsys) -> None:
    run = _finetune(tmp_path, synthetic_root, trained_classifier, "identity", "--probe", "identity")
    originals = np.load(run.outputs / "originals.npy")
    assert np.array_equal(np.load(run.outputs / "reconstructions_after.npy"), originals)
    assert "not trained" in (run.outputs / "objective.json").read_text()
    assert np.allclose(np.load(run.outputs / "logits_after.npy"), np.load(run.outputs / "logits_original.npy"), atol=1e-5)
    # Through the study's chain (16 -> 48 kHz stereo -> mono -> 16 kHz) with no autoencoder: the resampler alone.
    chain = _finetune(tmp_path, synthetic_root, trained_classifier, "chain", "--probe", "identity",
                      "--ae-option", "sample_rate=48000", "--ae-option", "channels=2")
    from probe.analyses.runs import load_run

    assert load_run(chain.path).label == "small_cnn--identity@48kHz"
    reconstruction = np.load(chain.outputs / "reconstructions_after.npy")
    assert not np.array_equal(reconstruction, originals)
    spectrum = lambda s: np.abs(np.fft.rfft(s, axis=-1)) ** 2  # noqa: E731
    freqs = np.fft.rfftfreq(originals.shape[-1], 1 / 16000)
    passband = (freqs > 50) & (freqs < 6000)
    shift_db = 10 * np.log10(spectrum(reconstruction)[:, passband].sum() / spectrum(originals)[:, passband].sum())
    assert abs(shift_db) < 0.05
    # Nothing to train: asking for epochs is a clear error.
    assert main(["finetune", "--probe", "identity", "--epochs", "2", "--classifier", "small_cnn", "--classifier-weights",
                 str(trained_classifier), "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "nothing to train" in capsys.readouterr().err


def test_per_class_gains_are_trained_only_by_their_own_class(tmp_path: Path) -> None:
    probe = SpectralGain(sample_rate=16000, n_fft=512, hop_length=128, classes=3)
    x = torch.randn(4, 1, 4000)
    labels = torch.tensor([1, 1, 1, 1])
    loss = probe(x, labels).pow(2).mean() + probe.mean_linear_gain(labels)
    loss.backward()
    moved = probe.raw_gain.grad.abs().sum(1)
    assert moved[1] > 0 and moved[0] == 0 and moved[2] == 0
    with torch.no_grad():
        probe.raw_gain[0, probe.raw_gain.shape[1] // 2:] = -30.0  # class 0 drops its upper bands
    pair = torch.randn(1, 1, 4000).repeat(2, 1, 1)
    out = probe(pair, torch.tensor([0, 2]))
    assert torch.allclose(out[1], pair[1], atol=1e-5) and not torch.allclose(out[0], pair[0], atol=1e-2)
    torch.save(probe.checkpoint(), tmp_path / "gain.pt")
    loaded = load_autoencoder(str(tmp_path / "gain.pt"))
    assert loaded.classes == 3 and torch.allclose(loaded(pair, torch.tensor([0, 2])), out, atol=1e-6)
    with pytest.raises(ValueError, match="one label per clip"):
        probe(pair)


def test_probe_finetune_per_class_writes_a_curve_per_class(tmp_path: Path, synthetic_root: Path, trained_classifier: Path,
                                                            capsys) -> None:
    run = _finetune(tmp_path, synthetic_root, trained_classifier, "per-class", "--probe", "spectral-gain", "--per-class",
                    "--epochs", "3")
    class_frequencies, *curves = np.load(run.outputs / "gain_db_per_class.npy")  # first row: the frequencies (Hz)
    curves = np.stack(curves)
    frequencies, mean_curve = np.load(run.outputs / "gain_db.npy")
    assert np.array_equal(class_frequencies, frequencies)
    assert curves.shape == (5, len(frequencies)) and np.allclose(curves.mean(0), mean_curve)
    assert not np.allclose(curves[0], curves[1])  # each class learned from its own clips
    assert main(["finetune", "--autoencoder", "tiny", "--per-class", "--epochs", "1", "--classifier", "small_cnn",
                 "--classifier-weights", str(trained_classifier), "--data", f"esc50:{synthetic_root}",
                 "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--per-class needs" in capsys.readouterr().err


def _registered_probes() -> list[str]:
    from probe.probes import PROBES

    return PROBES.names()


@pytest.mark.parametrize("name", _registered_probes())
def test_every_probe_type_is_offered_and_fills_its_defaults(name: str) -> None:
    """The registry is the one place a probe type is declared: the CLI offers it and the config takes its defaults."""
    from probe.app.cli import build_parser
    from probe.probes import get_probe
    from probe.train.config import FinetuneConfig

    spec = get_probe(name)
    finetune = next(a for a in build_parser()._subparsers._group_actions[0].choices["finetune"]._actions
                    if "--probe" in a.option_strings)
    assert name in finetune.choices
    config = FinetuneConfig(probe=name).resolved()
    assert (config.epochs, config.learning_rate) == (spec.epochs, spec.learning_rate)
    assert config.autoencoder == (spec.model or FinetuneConfig().autoencoder)
    assert config.penalty == (spec.penalty.default if spec.penalty else None)
    # a probe type named by the model it builds is found from that model alone
    if spec.model:
        assert FinetuneConfig(autoencoder=spec.model).probe_spec.name == name


def test_a_penalty_flag_of_another_probe_type_is_refused(capsys) -> None:
    assert main(["finetune", "--data", "synthetic", "--probe", "identity", "--energy-penalty", "1", "--out", "unused", "--epochs", "0"]) == 2
    assert "--energy-penalty belongs to --probe autoencoder" in capsys.readouterr().err


def test_the_cost_of_a_run_reads_its_probe_types_default_epochs() -> None:
    """A grid or replicates without --epochs: the cost estimate that orders the runs fills in the probe's default."""
    from probe.probes import get_probe
    from probe.train.finetune import FinetuneConfig, expected_cost

    gain = get_probe("spectral-gain")
    assert expected_cost(FinetuneConfig(probe="spectral-gain")) == pytest.approx(gain.epochs * 0.1)
    assert expected_cost(FinetuneConfig(autoencoder="tiny")) == get_probe("autoencoder").epochs
    assert expected_cost(FinetuneConfig(probe="identity")) == 0.0
