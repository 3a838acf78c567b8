"""One process per run directory and per download folder; `probe status` reads where every run stands."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probe.app.cli import main
from probe.rundir import RunDir

pytestmark = pytest.mark.integration


def _finetune(out: Path, synthetic_root: Path, classifier: Path, epochs: int) -> list[str]:
    return ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(classifier), "--autoencoder", "tiny",
            "--data", f"esc50:{synthetic_root}", "--out", str(out), "--epochs", str(epochs), "--lr", "3e-3",
            "--device", "cpu", "--quiet", "--resume"]


def _wait_for_an_epoch(run: RunDir, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    # an epoch's record is written before its latest.pt: wait for both, or a kill in between reads "not started"
    while not (any(r.get("kind") == "epoch" for r in run.read_metrics()) and run.latest.is_file()):
        assert process.poll() is None and time.monotonic() < deadline, "the training process ended or stalled"
        time.sleep(0.2)


def test_a_run_being_trained_refuses_a_second_process_and_status_says_so(tmp_path: Path, synthetic_root: Path,
                                                                         trained_classifier: Path, capsys):
    out = tmp_path / "grid" / "cell"
    run = RunDir(out)
    process = subprocess.Popen([sys.executable, "-m", "probe.app.cli", *_finetune(out, synthetic_root,
                                                                                   trained_classifier, 400)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_an_epoch(run, process)
        assert main(_finetune(out, synthetic_root, trained_classifier, 400)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(out) in err and f"pid {process.pid}" in err
        assert main(["status", str(tmp_path / "grid"), "--format", "json"]) == 0
        (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert row["run"] == "cell" and row["state"] == "training" and row["epoch"] >= 1 and row["epochs"] == 400
        assert row["seconds_per_epoch"] > 0 and row["best"] is not None
    finally:
        process.kill()
        process.wait()
    # the killed process's lock died with it: status reads "stopped", and the run resumes here
    assert main(["status", str(tmp_path / "grid"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "stopped"
    assert main([*_finetune(out, synthetic_root, trained_classifier, 400), "--stop-after-epochs", "1"]) == 0


def test_status_counts_states_and_names_bad_folders(tmp_path: Path, two_runs: list[Path], capsys):
    assert main(["status", str(two_runs[0].parent)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["run", "state", "epoch", "best", "s/epoch", "job"]
    assert "run0" in table and "run1" in table and table.strip().endswith("2 done")
    (tmp_path / "empty").mkdir()
    assert main(["status", str(tmp_path / "empty")]) == 2
    assert "holds no run directories" in capsys.readouterr().err


def test_a_second_download_into_one_folder_waits_for_the_first(tmp_path: Path, http_server) -> None:
    """A process holds the folder's download lock; a download into that folder waits, then completes; no lock file
    is left behind."""
    import hashlib

    from probe.download import download

    payload = b"weights" * 1000
    http_server.files["w.pt"] = payload
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from probe.locks import waiting_for\n"
        f"with waiting_for(Path({str(tmp_path)!r}), 'a test'):\n"
        "    print('held', flush=True); time.sleep(2)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    url = f"http://127.0.0.1:{http_server.server_address[1]}/w.pt"
    target = download(url, tmp_path / "w.pt", hashlib.sha256(payload).hexdigest(), progress=False)
    assert time.monotonic() - started > 0.5 and target.read_bytes() == payload  # it waited for the holder
    holder.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]


def test_a_run_that_fails_before_it_starts_leaves_no_folder_but_an_existing_one_stays(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    for out in (fresh, existing):  # the dataset is refused after the run lock (and the folder) were taken
        assert main(["finetune", "--classifier", "small_cnn", "--allow-untrained", "--data", f"esc50:{tmp_path / 'empty'}", "--out",
                     str(out), "--quiet"]) == 2
    assert "meta/esc50.csv is missing" in capsys.readouterr().err
    assert not fresh.exists()
    assert (existing / "notes.txt").read_text() == "mine"
