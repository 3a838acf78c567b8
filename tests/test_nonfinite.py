"""A training never goes on through NaN: a classifier whose input gradient is NaN on digital silence (an RMS
normalisation, as deployed classifiers have) stops the run at the first such step with one line and exit code 3,
naming the batch's clips and the classifier as the cause; nothing non-finite is saved. `--zero-nonfinite-grads` trains
through it and records how many gradient entries it zeroed. `probe analyse` refuses a run with non-finite outputs in
one line."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from probe.app.cli import main

RATE = 16000

SILENCE_NET = textwrap.dedent('''
    import torch
    from torch import nn


    class SilenceNet(nn.Module):
        """Logits from the clip's RMS and its level-normalised waveform: finite on silence, but the square root's
        gradient at 0 times the zero waveform is NaN there."""

        sample_rate = 16000
        class_names = ["low", "high"]

        def __init__(self):
            super().__init__()
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            rms = x.pow(2).mean(-1, keepdim=True).sqrt()
            normalised = x / (rms + 1e-6)
            features = torch.cat([rms, normalised.abs().mean(-1, keepdim=True),
                                  (normalised[:, 1:] - normalised[:, :-1]).abs().mean(-1, keepdim=True)], -1)
            return self.head(features)


    def build(num_classes=2):
        torch.manual_seed(0)
        return SilenceNet()
''')


@pytest.fixture
def silent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two classes of half-second tones, a third of the clips exact digital silence; the classifier as a module."""
    (tmp_path / "silence_net.py").write_text(SILENCE_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    t = np.arange(RATE // 2) / RATE
    for name, hz in (("low", 300.0), ("high", 3000.0)):
        (tmp_path / "clips" / name).mkdir(parents=True)
        for i in range(9):
            clip = np.zeros_like(t) if i % 3 == 0 else 0.3 * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6))
            sf.write(tmp_path / "clips" / name / f"{name}-{i}.wav", clip.astype(np.float32), RATE)
    return tmp_path


def finetune(folder: Path, out: str, *extra: str) -> int:
    return main(["finetune", "--classifier", "silence_net:build", "--allow-untrained", "--data",
                 f"folder:{folder / 'clips'}", "--probe", "spectral-gain", "--epochs", "2", "--batch-size", "6",
                 "--out", str(folder / out), "--device", "cpu", "-q", *extra])


def test_a_nan_gradient_on_silence_stops_the_run_with_one_line(silent_folder: Path, capsys) -> None:
    assert finetune(silent_folder, "run") == 3
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("probe: error: ")]
    assert len(errors) == 1 and all(line.startswith("probe finetune: warning: ") for line in err[:-1]), err
    line = errors[0]
    assert "non-finite gradient at epoch 1, step 1" in line
    assert "the classifier's own input gradient is non-finite on" in line
    flagged = line.split("non-finite on ", 1)[1].split(" (", 1)[0].split(", ")
    assert flagged and all(name.split("-")[-1].split(".")[0] in ("0", "3", "6") for name in flagged), flagged
    assert "--zero-nonfinite-grads" in line
    run = silent_folder / "run"
    assert not (run / "done.json").exists() and not (run / "best.pt").exists()
    assert not (run / "latest.pt").exists()  # the first step failed: there was no good epoch to keep


def test_zeroing_trains_through_and_counts(silent_folder: Path, capsys) -> None:
    assert finetune(silent_folder, "run", "--zero-nonfinite-grads") == 0
    assert "complete" in capsys.readouterr().out
    run = silent_folder / "run"
    done = json.loads((run / "done.json").read_text())
    assert done["nonfinite_grad_entries"] > 0
    assert json.loads((run / "config.json").read_text())["config"]["zero_nonfinite_grads"] is True
    state = torch.load(run / "best.pt", weights_only=True)
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)] + [
        v for inner in state.values() if isinstance(inner, dict) for v in inner.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(torch.isfinite(t).all() for t in tensors)
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    counts = [r["nonfinite_grad_entries"] for r in epochs if r["kind"] == "epoch"]
    assert counts == sorted(counts) and counts[-1] == done["nonfinite_grad_entries"]

    # a run whose stored outputs hold NaN (trained before probe stopped such runs) is refused in one line
    after = run / "outputs" / "logits_after.npy"
    logits = np.load(after)
    logits[0, 0] = np.nan
    np.save(after, logits)
    capsys.readouterr()
    assert main(["analyse", str(run), "--out", str(silent_folder / "analysis")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run) in err[0] and "non-finite after logits" in err[0], err
    assert not (silent_folder / "analysis").exists()
