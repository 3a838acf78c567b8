"""The benchmark entry point runs (a seconds-long smoke mode); its figures live in BENCHMARKS.md, never in tests."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probe.analyses.completeness import STEP_LADDER

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--device", "cpu", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| small_cnn |" in result.stdout and "speed-up" in result.stdout
    written = list(tmp_path.glob("smoke-*.json"))
    assert len(written) == 1
    data = json.loads(written[0].read_text())
    row = data["finetune"][0]
    assert row["original"]["clips_per_s"] > 0 and row["ours"]["clips_per_s"] > 0 and row["original"]["gflop_per_clip"] > 0
    assert data["versions"]["audio-probe"]


@pytest.mark.integration
def test_the_gpu_plan_runs_on_a_cpu_in_its_smoke_shape(tmp_path: Path) -> None:
    """`--gpu --smoke` runs every section of the GPU plan, tiny, on a CPU: what a lent device will run, checked here."""
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--gpu", "--smoke", "--device", "cpu", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(next(tmp_path.glob("smoke-gpu-*.json")).read_text())
    sections = {item["section"] for item in data["items"]}
    assert sections == {"finetune", "micro-batch", "long clips", "analyse"}
    failed = [(item["name"], item["result"]["failed"]) for item in data["items"] if "failed" in item["result"]]
    assert not failed, failed
    names = {item["name"] for item in data["items"]}
    assert {"original", "ours, eager", "ours, compiled", "ours, channels-last", "1 s clips, checkpointed"} <= names
    checkpointed = next(i for i in data["items"] if i["name"] == "1 s clips, checkpointed")["result"]
    assert checkpointed["checkpointing"] and checkpointed["clips_per_s"] > 0
    analysed = next(i for i in data["items"] if i["section"] == "analyse")["result"]
    assert analysed["ig_steps"] in STEP_LADDER  # chosen by completeness, and recorded beside the time
    assert "| small_cnn | ours, eager (fp32) |" in result.stdout and "`probe analyse`, small_cnn, 8 clips" in result.stdout
