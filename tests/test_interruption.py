"""Killed runs: kill -9 at arbitrary points, then --resume; no checkpoint or table is ever half written."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from probe.rundir import RunDir

pytestmark = pytest.mark.slow


def test_finetune_survives_repeated_kill_9(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "probe.cli", "finetune", "--classifier", "small_cnn", "--classifier-weights",
               str(trained_classifier), "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(out),
               "--epochs", "12", "--lr", "3e-3", "--device", "cpu", "--quiet", "--resume"]
    rng = random.Random(0)
    run = RunDir(out)
    for _ in range(3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(4.0, 7.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Whatever was on disk at the moment of the kill is whole: the checkpoint loads, metrics parse.
        if run.latest.exists():
            state = torch.load(run.latest, weights_only=True)
            assert {"model", "optimizer", "epoch", "step"} <= set(state)
        assert all(isinstance(r, dict) for r in run.read_metrics())
        assert not list(out.rglob("*.tmp")), "a temporary file was left behind"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert run.is_complete()
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, 13)), "each epoch is recorded exactly once"
    steps = [r["step"] for r in run.read_metrics() if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert json.loads(run.done.read_text())["epochs"] == 12


def test_sigint_stops_with_exit_130_and_resumes(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "probe.cli", "finetune", "--classifier", "small_cnn", "--classifier-weights",
               str(trained_classifier), "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(out),
               "--epochs", "30", "--device", "cpu", "--quiet", "--resume"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    assert not RunDir(out).is_complete()
