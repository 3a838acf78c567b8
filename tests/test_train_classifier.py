"""`probe train-classifier`: a tiny CPU run learns the synthetic classes, resumes exactly, and loads back."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from probe.app.cli import main
from probe.models import load_classifier
from probe.rundir import RunDir

COMMON = ["train-classifier", "--classifier", "small_cnn", "--classifier-weights", "none", "--classifier-option", "sample_rate=16000",
          "--classifier-option", "channels=8", "--lr", "3e-3", "--batch-size", "8", "--device", "cpu", "--quiet"]
ARGS = [*COMMON, "--epochs", "12"]


def test_a_tiny_run_learns_well_above_chance(tmp_path: Path, synthetic_root: Path, capsys) -> None:
    assert main([*ARGS, "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "run")]) == 0
    run = RunDir(tmp_path / "run")
    done = json.loads(run.done.read_text())
    chance = 1 / 5
    assert done["best_val_accuracy"] >= 3 * chance
    classifier = load_classifier("small_cnn", weights=run.best)
    assert classifier.sample_rate == 16000 and classifier.frozen
    config = json.loads(run.config.read_text())["config"]
    assert config["scheduler"] == "warmup_rampdown" and config["mixup_alpha"] == 0.3 and "ae_weights" not in config
    assert "load it with" in capsys.readouterr().out


def test_resume_gives_the_same_curve(tmp_path: Path, synthetic_root: Path) -> None:
    base = [*COMMON, "--epochs", "3", "--data", f"esc50:{synthetic_root}"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--stop-after-epochs", "1"]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--resume"]) == 0
    losses = lambda name: [r["loss"] for r in RunDir(tmp_path / name).read_metrics() if r["kind"] == "step"]  # noqa: E731
    np.testing.assert_allclose(losses("b"), losses("a"), rtol=1e-5)


def test_audioset_init_needs_the_published_weights(tmp_path: Path, synthetic_root: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PROBE_HOME", str(tmp_path / "home"))
    assert main(["train-classifier", "--classifier", "mn10", "--data", f"esc50:{synthetic_root}", "--out",
                 str(tmp_path / "x"), "--epochs", "1", "--device", "cpu", "--quiet"]) == 2
    assert "mn10_as" in capsys.readouterr().err


def test_the_warmup_rampdown_schedule_has_the_recipe_shape() -> None:
    from probe.train.schedulers import SCHEDULERS

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = SCHEDULERS["warmup_rampdown"].build(optimizer, 800, 1.0)
    rates = []
    for _ in range(800):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01) and rates[100] == pytest.approx(1.0, abs=1e-6)
    assert rates[99] < 1.0 and rates[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(rates[100:], rates[101:]))


def test_the_micro_batch_sizes_itself_and_leaves_no_trace(tmp_path: Path, synthetic_root: Path) -> None:
    """A budget that fits one clip gives micro-batches of one, with the losses of a hand-chosen micro-batch of one; a
    budget that fits the batch trains exactly as a hand-chosen whole batch (the measurement draws nothing, and leaves
    the batch-norm statistics and mixup's generator as they were)."""
    base = [*COMMON, "--epochs", "2", "--data", f"esc50:{synthetic_root}"]
    runs = {"tight": ["--max-memory", "1e-9"], "one": ["--micro-batch-size", "1"],
            "roomy": ["--max-memory", "64"], "whole": ["--micro-batch-size", "8"]}
    for name, flags in runs.items():
        assert main([*base, *flags, "--out", str(tmp_path / name)]) == 0
    losses = lambda name: [r["loss"] for r in RunDir(tmp_path / name).read_metrics() if r["kind"] == "step"]  # noqa: E731
    assert losses("tight") == losses("one") and losses("roomy") == losses("whole")
    assert losses("one") != losses("whole")  # the chunking shows in the float sums: the two pairs are distinct tests
    weights = lambda name: torch.load(RunDir(tmp_path / name).best, weights_only=True)["state_dict"]  # noqa: E731
    for key, value in weights("whole").items():
        assert torch.equal(value, weights("roomy")[key]), key
