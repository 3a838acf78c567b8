"""The benchmark entry point runs (a seconds-long smoke mode); its figures live in BENCHMARKS.md, never in tests."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
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
