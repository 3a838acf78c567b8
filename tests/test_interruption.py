"""Killed runs: kill -9 at arbitrary points, then --resume; no checkpoint or table is ever half written."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from probe.rundir import RunDir

pytestmark = pytest.mark.integration


def test_finetune_survives_repeated_kill_9(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "probe.app.cli", "finetune", "--classifier", "small_cnn", "--classifier-weights",
               str(trained_classifier), "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(out),
               "--epochs", "12", "--lr", "3e-3", "--device", "cpu", "--quiet", "--resume"]
    rng = random.Random(0)
    run = RunDir(out)
    for _ in range(3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(4.0, 7.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Whatever was on disk at the moment of the kill is whole: the checkpoint loads, metrics parse. A kill inside
        # a write leaves that write's temporary file (SIGKILL cannot be caught); the next start removes it, below.
        if run.latest.exists():
            state = torch.load(run.latest, weights_only=True)
            assert {"model", "optimizer", "epoch", "step"} <= set(state)
        assert all(isinstance(r, dict) for r in run.read_metrics())
    (out / ".latest.pt.killed.tmp").write_bytes(b"half a checkpoint")  # as such a kill leaves it
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert run.is_complete()
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, 13)), "each epoch is recorded exactly once"
    steps = [r["step"] for r in run.read_metrics() if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert json.loads(run.done.read_text())["epochs"] == 12


def test_a_job_killed_inside_an_epoch_resumes_where_it_was(tmp_path: Path, synthetic_root: Path,
                                                           trained_classifier: Path) -> None:
    """With --checkpoint-minutes, latest.pt is also saved inside an epoch; a kill -9 there (a pre-empted job) resumes
    mid-epoch, with the same permutation and generators, to the uninterrupted run's numbers."""
    common = ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--autoencoder",
              "tiny", "--data", f"esc50:{synthetic_root}", "--epochs", "2", "--batch-size", "2", "--lr", "3e-3",
              "--device", "cpu", "--quiet"]
    from probe.app.cli import main

    assert main([*common, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "killed"
    run = RunDir(out)
    process = subprocess.Popen([sys.executable, "-m", "probe.app.cli", *common, "--out", str(out), "--checkpoint-minutes",
                                "0.00001"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len([r for r in run.read_metrics() if r["kind"] == "step"]) < 5:  # a few batches into the first epoch
        assert process.poll() is None and time.monotonic() < deadline, "the run ended or stalled"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = torch.load(run.latest, weights_only=True)
    assert state["epoch"] == 0 and state["in_epoch"]["batches_done"] >= 4  # saved inside the first epoch
    assert main([*common, "--out", str(out), "--checkpoint-minutes", "0.00001", "--resume"]) == 0
    reference = RunDir(tmp_path / "reference")
    losses = lambda r: [m["loss"] for m in r.read_metrics() if m["kind"] == "step"]  # noqa: E731
    assert losses(run) == losses(reference)
    ours, theirs = (torch.load(r.best, weights_only=False)["state_dict"] for r in (run, reference))
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    epochs = lambda r: [(m["epoch"], m["train_loss"]) for m in r.read_metrics() if m["kind"] == "epoch"]  # noqa: E731
    assert epochs(run) == epochs(reference)  # the epoch's mean loss counts the batches before the kill too


@pytest.mark.parametrize(("stop", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_sigint_and_sigterm_stop_cleanly_and_resume(tmp_path: Path, synthetic_root: Path, trained_classifier: Path,
                                                    stop: signal.Signals, code: int, said: str) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "probe.app.cli", "finetune", "--classifier", "small_cnn", "--classifier-weights",
               str(trained_classifier), "--autoencoder", "tiny", "--data", f"esc50:{synthetic_root}", "--out", str(out),
               "--epochs", "1000", "--device", "cpu", "--quiet", "--resume"]
    # A job started in the background by a non-interactive shell inherits SIGINT ignored, and Python then keeps it
    # ignored (as it should: Ctrl-C is not meant for it). The test restores the default, as a terminal would have it.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run = RunDir(out)
    deadline = time.monotonic() + 120
    # Signal once training is under way (a step on record), not after a fixed sleep that a fast machine outlasts.
    while not (run.metrics.is_file() and run.read_metrics()) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code and said in err
    assert not run.is_complete() and not list(out.rglob("*.tmp"))
    if run.latest.exists():
        assert {"model", "optimizer", "epoch"} <= set(torch.load(run.latest, weights_only=True))


def _fingerprint(folder: Path) -> dict[str, str]:
    """A hash per table, summary (less its timings), page and clip (of a WAV its samples: libsndfile stamps the time into float WAVs)."""
    import hashlib

    import soundfile as sf

    def content(path: Path) -> bytes:
        if path.suffix == ".wav":
            return sf.read(path, dtype="float32")[0].tobytes()
        if path.name == "summary.json":  # all but the timings
            return json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "timings"}).encode()
        return path.read_bytes()

    return {str(p.relative_to(folder)): hashlib.sha256(content(p)).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".json", ".csv", ".html", ".npz", ".wav")}


def _kill_at_random_points(command: list[str], rng: random.Random, low_s: float, high_s: float,
                           check: Callable[[], None], times: int = 3) -> None:
    for _ in range(times):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(low_s, high_s))
        process.send_signal(signal.SIGKILL)
        process.wait()
        check()


def test_analyse_and_report_survive_repeated_kill_9(tmp_path: Path, two_runs: list[Path]) -> None:
    flags = ["--methods", "saliency", "--attribution-clips", "3", "--bootstrap", "200", "--device", "cpu", "--quiet"]
    analysis, site = tmp_path / "analysis", tmp_path / "site"
    analyse = [sys.executable, "-m", "probe.app.cli", "analyse", *map(str, two_runs), "--out", str(analysis), *flags]
    report = [sys.executable, "-m", "probe.app.cli", "report", str(analysis), "--out", str(site), "--quiet"]
    assert subprocess.run(analyse, capture_output=True).returncode == 0
    assert subprocess.run(report, capture_output=True).returncode == 0
    analysis_print, page = _fingerprint(analysis), (site / "index.html").read_text()

    def whole() -> None:  # the analysis is deterministic: whatever a kill leaves is the earlier version, whole
        assert _fingerprint(analysis) == analysis_print
        assert (site / "index.html").read_text() == page

    rng = random.Random(1)
    _kill_at_random_points(analyse, rng, 1.0, 6.0, whole)
    _kill_at_random_points(report, rng, 1.0, 5.0, whole)
    assert subprocess.run(analyse, capture_output=True).returncode == 0
    assert subprocess.run(report, capture_output=True).returncode == 0
    whole()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"a rerun clears what the kills left: {leftovers}"


def test_a_killed_download_resumes_and_verifies(tmp_path: Path, http_server) -> None:
    payload = bytes(random.Random(2).getrandbits(8) for _ in range(3 * 1024 * 1024))
    http_server.files["dymn10_as.pt"] = payload
    http_server.delay_s = 0.02  # about 1 s for the whole file
    url = f"http://127.0.0.1:{http_server.server_address[1]}/"
    command = [sys.executable, "-m", "probe.app.cli", "download", "weights", "dymn10_as", "--dir", str(tmp_path),
               "--mirror", url]
    target, partial = tmp_path / "dymn10_as.pt", tmp_path / "dymn10_as.pt.part"

    rng = random.Random(3)
    for _ in range(2):  # kill once bytes are flowing (start-up imports take a while), at a random point after
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not target.exists(), "only a complete, verified file may carry the final name"
    assert partial.exists() and 0 < partial.stat().st_size < len(payload)
    http_server.delay_s = 0.0
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert target.read_bytes() == payload and not partial.exists()
    assert any(rng_header for _, rng_header in http_server.requests), "the rerun resumed with a Range request"
