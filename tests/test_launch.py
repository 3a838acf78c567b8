"""The grid as submitit tasks (`--launcher local`): 2 classifiers x 2 probe settings x 2 folds on synthetic data, with
per-fold classifiers from `probe train-classifier --folds`; one task killed mid-epoch resumes to the result of an
uninterrupted run; `probe analyse GRID` then pools every fold's clips; a leak is refused before anything is
submitted."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from probe.app.cli import main
from probe.rundir import RunDir

pytestmark = pytest.mark.integration
pytest.importorskip("submitit")

CLASSIFIER = ["train-classifier", "--classifier", "small_cnn", "--classifier-weights", "none", "--classifier-option", "sample_rate=16000",
              "--classifier-option", "channels=8", "--lr", "3e-3", "--batch-size", "8", "--device", "cpu", "--quiet", "--epochs", "1"]
EPOCHS = 3


def _grid(root: Path, synthetic_root: Path, out: Path) -> list[str]:
    return ["finetune", "--grid", f"classifier=small_cnn@{root}/clfA/fold-{{fold}}/best.pt,"
            f"small_cnn@{root}/clfB/fold-{{fold}}/best.pt", f"autoencoder=tiny,{root}/pre/fold-{{fold}}/best.pt",
            "--ae-option", "sample_rate=16000", "--ae-option", "channels=1", "--epochs", str(EPOCHS), "--lr", "3e-3",
            "--data", f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(out), "--device", "cpu", "--quiet",
            "--launcher", "local", "--cpus-per-task", "1"]


def test_a_grid_of_local_tasks_resumes_a_killed_task_exactly_and_pools_its_folds(tmp_path: Path, synthetic_root: Path,
                                                                                capsys):
    for name, seed in (("clfA", "0"), ("clfB", "1")):
        assert main([*CLASSIFIER, "--seed", seed, "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / name),
                     "--folds", "1,2"]) == 0
    assert main(["pretrain-ae", "--autoencoder", "tiny", "--ae-option", "sample_rate=16000", "--ae-option", "channels=1",
                 "--epochs", "1", "--batch-size", "8", "--micro-batch-size", "8", "--lr", "3e-3", "--device", "cpu",
                 "--data", f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(tmp_path / "pre"), "--quiet"]) == 0
    grid = tmp_path / "grid"
    victim = RunDir(grid / "small_cnn@clfA--tiny" / "fold-2")
    import subprocess
    import sys

    first = subprocess.Popen([sys.executable, "-m", "probe.app.cli", *_grid(tmp_path, synthetic_root, grid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not any(r.get("kind") == "epoch" for r in victim.read_metrics()):  # the task is between epochs 1 and 6
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else "stalled"
        time.sleep(0.1)
    pid = json.loads((victim.path / ".lock").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # mid-epoch: its latest.pt is an epoch behind
    assert first.wait(timeout=600) == 1  # the other seven completed; the killed one is named
    assert f"{victim.path}: job" in first.stderr.read()
    assert not victim.is_complete()

    assert main(_grid(tmp_path, synthetic_root, grid)) == 0  # resubmitted: seven return at once, one resumes
    runs = sorted(grid.glob("*/fold-*"))
    assert len(runs) == 8 and all(RunDir(run).is_complete() for run in runs)
    assert all((run / "job.json").is_file() for run in runs)
    assert main(["status", str(grid)]) == 0 and capsys.readouterr().out.strip().endswith("8 done")

    # the same cell, never interrupted, on one thread in this process: the same losses and weights
    stored = json.loads(victim.config.read_text())["config"]
    from probe.train.cells import torch_threads
    from probe.train.config import FinetuneConfig
    from probe.train.finetune import finetune

    with torch_threads(1):
        reference = finetune(FinetuneConfig(**{**stored, "hold_out_folds": tuple(stored["hold_out_folds"]),
                                               "out": str(tmp_path / "reference"), "progress": False}))
    losses = lambda run: [r["loss"] for r in run.read_metrics() if r["kind"] == "step"]  # noqa: E731
    assert losses(victim) == losses(reference) and len(losses(victim)) > 0
    ours, theirs = (torch.load(run.best, weights_only=False)["state_dict"] for run in (victim, reference))
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    analysis = tmp_path / "analysis"
    assert main(["analyse", str(grid), "--out", str(analysis), "--methods", "none", "--bootstrap", "200",
                 "--device", "cpu", "--quiet"]) == 0
    import probe.analyses

    pooled = probe.analyses.load(analysis)["band_contrast_pooled"]
    assert set(pooled.folds) == {"1,2"} and len(pooled.groupby(["classifier", "setting"])) == 4


def test_a_leak_is_refused_before_anything_is_submitted(tmp_path: Path, synthetic_root: Path, capsys):
    assert main([*CLASSIFIER, "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "clf"), "--folds", "1"]) == 0
    out = tmp_path / "grid"
    code = main(["finetune", "--grid", f"classifier=small_cnn@{tmp_path}/clf/fold-1/best.pt", "autoencoder=identity",
                 "--epochs", "0", "--data", f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(out),
                 "--launcher", "local", "--quiet"])
    assert code == 2 and "validation fold 2" in capsys.readouterr().err and not out.exists()


def test_a_failed_task_is_one_line_with_its_own_error(tmp_path: Path, capsys):
    """Every task failed: exit 2, and the line names the run and the task's error, not the path of its log."""
    assert main(["finetune", "--grid", "classifier=nosuchnet", "autoencoder=identity", "--epochs", "0", "--folds", "1", "--data", "synthetic",
                 "--out", str(tmp_path / "grid"), "--launcher", "local", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nosuchnet--identity" in err and "unknown classifier 'nosuchnet'" in err
