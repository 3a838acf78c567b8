"""Reconstruction pretraining: the MSE falls, best.pt is an AE that finetune starts from, and the STFT loss is sane."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from probe.app.cli import main
from probe.errors import ConfigError
from probe.probes import load_autoencoder
from probe.rundir import RunDir
from probe.train.losses import multi_resolution_stft_loss
from probe.train.pretrain import PretrainConfig, pretrain_autoencoder


def _config(tmp_path: Path, synthetic_root: Path, **overrides) -> PretrainConfig:
    settings = dict(autoencoder="tiny", ae_options={"sample_rate": 16000, "channels": 2, "seed": 0},
                    data=f"esc50:{synthetic_root}", out=str(tmp_path / "pre"), epochs=3, learning_rate=3e-3,
                    batch_size=4, micro_batch_size=2, progress=False)
    return PretrainConfig(**{**settings, **overrides})


def test_study_defaults() -> None:
    config = PretrainConfig()
    assert (config.epochs, config.batch_size // config.micro, config.micro) == (70, 16, 4)
    assert config.autoencoder == "random" and config.stft_weight == 0


def test_pretraining_lowers_the_reconstruction_error(tmp_path: Path, synthetic_root: Path) -> None:
    run = pretrain_autoencoder(_config(tmp_path, synthetic_root, stft_weight=0.1))
    assert run.is_complete()
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert len(epochs) == 3 and epochs[-1]["val_mse"] < epochs[0]["val_mse"]
    assert all(r["val_loss"] > r["val_mse"] for r in epochs)  # the STFT term is added
    pretrained = load_autoencoder(str(run.best))
    assert pretrained.name == "tiny" and pretrained.sample_rate == 16000


def test_pretrained_checkpoint_starts_a_finetune(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    pre = pretrain_autoencoder(_config(tmp_path, synthetic_root, epochs=1))
    code = main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier),
                 "--autoencoder", str(pre.best), "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "ft"),
                 "--epochs", "1", "--device", "cpu", "--quiet"])
    assert code == 0 and RunDir(tmp_path / "ft").is_complete()


def test_cli_pretrain_and_bad_flags(tmp_path: Path, synthetic_root: Path, capsys) -> None:
    args = ["pretrain-ae", "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "cli"),
            "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--quiet"]
    assert main(args) == 0
    assert "best.pt" in capsys.readouterr().out
    assert main(args[:-1] + ["--stft-weight", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "stft-weight" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="micro-batch"):
        pretrain_autoencoder(_config(tmp_path, synthetic_root, batch_size=6, micro_batch_size=4))


def test_stft_loss_known_answers() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8000)
    assert float(multi_resolution_stft_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    quieter = float(multi_resolution_stft_loss(0.5 * x, x))
    # Halving the amplitude: spectral convergence 0.5 and log-magnitude error ln 2 at every bin.
    assert quieter == pytest.approx(0.5 + torch.log(torch.tensor(2.0)).item(), rel=1e-4)
    noise = float(multi_resolution_stft_loss(torch.randn(2, 1, 8000), x))
    assert noise > quieter


def test_held_out_folds_play_no_part_in_pretraining(tmp_path: Path, synthetic_root: Path) -> None:
    """The fold the probes will be analysed on is neither trained nor selected on (the demo holds out fold 1)."""
    from probe.train.distributed import Distributed
    from probe.train.loop import OpenedRun

    config = _config(tmp_path, synthetic_root, fold=2, hold_out_folds=(1,))
    _, train, validation = OpenedRun(RunDir(tmp_path / "x"), Distributed(), torch.device("cpu"), False).splits(config)
    assert {c.fold for c in validation.clips} == {2} and {c.fold for c in train.clips} == {3, 4, 5}
    with pytest.raises(ConfigError, match="both the validation fold and held out"):
        _config(tmp_path, synthetic_root, fold=1, hold_out_folds=(1,)).validate()
    out = tmp_path / "cli"
    assert main(["pretrain-ae", "--autoencoder", "tiny", "--data",
                 f"esc50:{synthetic_root}", "--out", str(out), "--epochs", "1", "--batch-size", "4", "--fold", "2",
                 "--hold-out", "1", "--quiet"]) == 0
    import json

    assert json.loads(RunDir(out).config.read_text())["config"]["hold_out_folds"] == [1]
