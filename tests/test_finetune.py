"""Finetuning: the frozen classifier stays untouched, the loss falls, and resume is exact."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from probe.app.cli import main
from probe.errors import ConfigError
from probe.models import load_classifier
from probe.rundir import RunDir
from probe.train.finetune import FinetuneConfig, finetune


def _config(tmp_path: Path, synthetic_root: Path, classifier: Path, **overrides) -> FinetuneConfig:
    base = FinetuneConfig(
        classifier="small_cnn", classifier_weights=str(classifier), autoencoder="tiny",
        ae_options={"sample_rate": 16000, "channels": 1, "seed": 0}, data=f"esc50:{synthetic_root}",
        out=str(tmp_path / "run"), epochs=4, learning_rate=3e-3, batch_size=4, progress=False,
    )
    return replace(base, **overrides)


def test_finetune_trains_the_ae_and_not_the_classifier(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    before = {k: v.clone() for k, v in load_classifier("small_cnn", weights=trained_classifier).state_dict().items()}
    run = finetune(_config(tmp_path, synthetic_root, trained_classifier))
    assert run.is_complete()
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert len(epochs) == 4 and epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    assert all(r["val_accuracy_bare_classifier"] == epochs[0]["val_accuracy_bare_classifier"] for r in epochs)
    after = load_classifier("small_cnn", weights=trained_classifier).state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    outputs = run.outputs
    originals = np.load(outputs / "originals.npy")
    assert np.load(outputs / "reconstructions_before.npy").shape == originals.shape
    assert np.load(outputs / "reconstructions_after.npy").shape == originals.shape
    assert len(json.loads((outputs / "clip_ids.json").read_text())) == originals.shape[0]
    config = json.loads(run.config.read_text())
    assert config["config"]["learning_rate"] == 3e-3 and config["provenance"]["versions"]["torch"]
    assert config["provenance"]["inputs"]["classifier_weights"]["sha256"]
    from probe.probes import load_autoencoder

    assert load_autoencoder(str(run.best)).name == "tiny"


def test_resume_reproduces_the_uninterrupted_curve(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    full = finetune(_config(tmp_path / "a", synthetic_root, trained_classifier, epochs=3))
    partial_config = _config(tmp_path / "b", synthetic_root, trained_classifier, epochs=3, stop_after_epochs=1)
    finetune(partial_config)
    with pytest.raises(ConfigError, match="--resume"):
        finetune(partial_config)
    resumed = finetune(replace(partial_config, stop_after_epochs=None), resume=True)
    losses = lambda run: [r["loss"] for r in run.read_metrics() if r["kind"] == "step"]  # noqa: E731
    assert len(losses(full)) == len(losses(resumed)) > 0
    np.testing.assert_allclose(losses(resumed), losses(full), rtol=1e-5)


def test_frozen_encoder_is_not_updated(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    from probe.probes import load_autoencoder

    config = _config(tmp_path, synthetic_root, trained_classifier, epochs=1, finetune_encoder=False)
    run = finetune(config)
    start = load_autoencoder("tiny", sample_rate=16000, channels=1, seed=0).state_dict()
    tuned = load_autoencoder(str(run.best)).state_dict()
    encoder = [k for k in start if k.startswith("autoencoder.encoder.")]
    decoder = [k for k in start if k.startswith("autoencoder.decoder.")]
    assert all(torch.equal(start[k], tuned[k]) for k in encoder)
    assert any(not torch.equal(start[k], tuned[k]) for k in decoder)


def test_bad_configs_are_refused(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    with pytest.raises(ConfigError, match="unknown scheduler"):
        finetune(_config(tmp_path, synthetic_root, trained_classifier, scheduler="warp"))
    with pytest.raises(ConfigError, match="nothing to train"):
        finetune(_config(tmp_path, synthetic_root, trained_classifier, finetune_encoder=False, finetune_decoder=False))
    with pytest.raises(ConfigError, match="multiple"):
        finetune(_config(tmp_path, synthetic_root, trained_classifier, batch_size=4, micro_batch_size=3))


def test_cli_finetune_with_accumulation(tmp_path: Path, synthetic_root: Path, trained_classifier: Path, capsys) -> None:
    code = main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier),
                 "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "cli-run"),
                 "--epochs", "1", "--batch-size", "4", "--micro-batch-size", "2", "--scheduler", "onecycle",
                 "--device", "cpu"])
    assert code == 0 and "complete" in capsys.readouterr().out
    assert RunDir(tmp_path / "cli-run").is_complete()


def test_cross_validation_writes_one_run_per_fold(tmp_path: Path, synthetic_root: Path, trained_classifier: Path, capsys) -> None:
    args = ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--autoencoder", "tiny",
            "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "cv"), "--epochs", "1", "--folds", "2,3"]
    assert main(args) == 0
    assert RunDir(tmp_path / "cv" / "fold-2").is_complete() and RunDir(tmp_path / "cv" / "fold-3").is_complete()
    metrics = (tmp_path / "cv" / "fold-2" / "metrics.jsonl").read_text()
    assert main(args) == 0  # complete folds are skipped, not rerun
    assert (tmp_path / "cv" / "fold-2" / "metrics.jsonl").read_text() == metrics
    assert main(args[:-1] + ["2,x"]) == 2


def test_grid_runs_each_cell_once(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    from probe.train.finetune import finetune_grid, parse_grid

    grid = parse_grid([f"classifier=small_cnn@{trained_classifier}", "autoencoder=tiny,random"])
    assert [e.name for e in grid["autoencoder"]] == ["tiny", "random"]
    config = _config(tmp_path, synthetic_root, trained_classifier, epochs=1, out=str(tmp_path / "grid"))
    runs = finetune_grid(config, {"classifier": grid["classifier"], "autoencoder": grid["autoencoder"][:1]})
    assert [r.path.name for r in runs] == ["small_cnn@small_cnn--tiny"] and runs[0].is_complete()
    written = runs[0].metrics.read_text()
    finetune_grid(config, {"classifier": grid["classifier"], "autoencoder": grid["autoencoder"][:1]})
    assert runs[0].metrics.read_text() == written
    with pytest.raises(ConfigError, match="grid items"):
        parse_grid(["classifier mn10"])
    with pytest.raises(ConfigError, match="grid items"):
        parse_grid(["lr=1,2"])


def test_grid_cells_in_worker_processes_match_the_cells_run_here(tmp_path: Path, synthetic_root: Path,
                                                                   trained_classifier: Path) -> None:
    """Two cells trained at once, each in a worker process on one thread, give the checkpoints and outputs that the
    same cells give one after another in this process on one thread; a cell's error reaches the caller whole."""
    from probe.train.finetune import GridEntry, finetune_grid

    config = _config(tmp_path, synthetic_root, trained_classifier, epochs=2)
    grid = {"autoencoder": [GridEntry("tiny", label="a"),
                            GridEntry("tiny", label="b", overrides={"ae_options": {"sample_rate": 16000, "channels": 1,
                                                                                    "seed": 1}})]}
    here = finetune_grid(replace(config, out=str(tmp_path / "here")), grid, threads=1)
    there = finetune_grid(replace(config, out=str(tmp_path / "there")), grid, jobs=2, threads=1)
    assert [r.path.name for r in here] == [r.path.name for r in there] == ["small_cnn@small_cnn--a", "small_cnn@small_cnn--b"]
    for mine, theirs in zip(here, there):
        assert theirs.is_complete()
        ours, workers = torch.load(mine.best, weights_only=True), torch.load(theirs.best, weights_only=True)
        assert all(torch.equal(ours["state_dict"][k], workers["state_dict"][k]) for k in ours["state_dict"])
        assert np.array_equal(np.load(mine.reconstructions_file("after")), np.load(theirs.reconstructions_file("after")))
    assert not torch.equal(*(torch.load(r.best, weights_only=True)["state_dict"]["autoencoder.encoder.to_in.block.block1.project.weight"]
                             for r in here)), "the two cells differ"
    broken = {"autoencoder": [GridEntry("tiny", label="fine"), GridEntry(str(tmp_path / "missing.pt"), label="broken")]}
    with pytest.raises(ConfigError, match="unknown autoencoder .*missing.pt"):
        finetune_grid(replace(config, out=str(tmp_path / "broken"), epochs=1), broken, jobs=2)
    with pytest.raises(ConfigError, match="--jobs"):
        finetune_grid(replace(config, out=str(tmp_path / "none")), grid, jobs=0)


def test_distributed_run_matches_a_single_process(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    """Two CPU ranks under torchrun (gloo) take half a batch each; DDP's averaged gradient is the whole batch's."""
    import subprocess
    import sys

    common = ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--autoencoder", "tiny",
              "--data", f"esc50:{synthetic_root}", "--epochs", "1", "--lr", "3e-3", "--device", "cpu", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "single")]) == 0
    single = RunDir(tmp_path / "single")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "probe.app.cli", *common, "--out", str(tmp_path / "ddp")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = RunDir(tmp_path / "ddp")
    assert ddp.is_complete()
    losses = lambda run: [r["loss"] for r in run.read_metrics() if r["kind"] == "step"]  # noqa: E731
    # The first loss (before any update) is the whole batch's mean on both. After it, float summation
    # order (one process vs two) decides the sign of Adam's first step for near-zero gradients, so
    # later losses agree to within a few percent only.
    np.testing.assert_allclose(losses(ddp)[0], losses(single)[0], rtol=1e-5)
    np.testing.assert_allclose(losses(ddp), losses(single), rtol=3e-2)


def test_zero_epochs_stores_an_untrained_evaluation(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    """`--epochs 0` turns any AE checkpoint into a run directory the analyses read (before == after)."""
    run = finetune(_config(tmp_path, synthetic_root, trained_classifier, epochs=0))
    assert run.is_complete() and not run.latest.exists()
    np.testing.assert_array_equal(np.load(run.outputs / "reconstructions_before.npy"),
                                  np.load(run.outputs / "reconstructions_after.npy"))
    assert json.loads(run.done.read_text())["best_val_accuracy"] is None


@pytest.mark.integration
def test_ranks_share_batch_norm_statistics_and_rank_0_writes_first(tmp_path: Path) -> None:
    """Two CPU ranks under torchrun: each rank's BatchNorm statistics become their mean over the ranks (best.pt is
    every rank's, not rank 0's), and rank 0's work (decoding, generating data) is done before the others start."""
    import subprocess
    import sys

    script = tmp_path / "ranks.py"
    script.write_text(f"""
import sys
import time
from pathlib import Path
import torch
from probe.train.distributed import init_distributed
dist, _ = init_distributed("cpu")
bn = torch.nn.BatchNorm1d(3)
bn.running_mean.fill_(float(dist.rank * 2))  # rank 0: 0, rank 1: 2
bn.running_var.fill_(float(1 + dist.rank))   # rank 0: 1, rank 1: 2
dist.average_batch_norm(torch.nn.Sequential(bn))
shared = Path({str(tmp_path / "shared.txt")!r})
def work():
    if dist.is_main:
        time.sleep(1)  # slow on purpose: the other rank must wait for it
        shared.write_text("from rank 0")
    return shared.read_text()
seen = dist.main_first(work)
line = " ".join(map(str, [dist.rank, bn.running_mean.tolist(), bn.running_var.tolist(), seen]))
sys.stdout.write(line + "\\n")  # one write: two ranks' prints of several pieces can interleave
sys.stdout.flush()
""")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = sorted(line for line in result.stdout.splitlines() if line[:1] in "01")
    assert lines == [f"{rank} [1.0, 1.0, 1.0] [1.5, 1.5, 1.5] from rank 0" for rank in (0, 1)]
