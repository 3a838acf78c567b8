"""A user's own classifier as it is: a plugin with a fixed 360-class head, its own class names and waveform input,
through predict, finetune (unlabeled audio, the fidelity objective), analyse and report in fresh `probe`
processes, as a user registers it (`PROBE_PLUGINS`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf



PLUGIN = '''
import torch
from torch import nn

from probe.models.base import WaveformClassifier
from probe.models.registry import register_classifier

NOTES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
NAMES = [f"{NOTES[i // 5 % 12]}{i // 60 + 1}{(i % 5) * 20 - 40:+d}c" for i in range(360)]


class PitchNet(nn.Module):
    """Waveform (B, L) at 16 kHz -> 360 pitch logits: a 1-D CNN with no mel front-end."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(1, 16, 256, stride=16), nn.ReLU(), nn.Conv1d(16, 32, 8, stride=4), nn.ReLU())
        self.head = nn.Linear(32, 360)

    def forward(self, waveform):
        return self.head(self.conv(waveform[:, None]).mean(-1))


@register_classifier("pitch_net", sample_rate=16000, description="a pitch network with its own 360-class head")
def build(num_classes=360, trained=False):
    torch.manual_seed(0)  # stands in for the pretrained weights the builder would load
    classifier = WaveformClassifier("pitch_net", nn.Identity(), PitchNet(), sample_rate=16000, class_names=NAMES)
    classifier.untrained = None  # the builder loaded trained weights of its own
    return classifier
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "pitch_plugin.py").write_text(PLUGIN)
    return {**os.environ, "PROBE_PLUGINS": "pitch_plugin",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def probe(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "probe.app.cli", *args], env=env, capture_output=True, text=True)
    assert result.returncode == code, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Unlabeled 1 s recordings at 16 kHz: harmonic tones at several pitches, in nested folders."""
    root = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for index in range(30):
        f0 = 110 * 2 ** (index / 10)
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5)) * 0.2 + 0.01 * rng.standard_normal(t.size)
        folder = root / f"session{index % 3}"
        folder.mkdir(exist_ok=True)
        sf.write(folder / f"take{index:02d}.wav", tone.astype(np.float32), 16000)
    return root


@pytest.mark.integration
def test_a_fixed_head_plugin_goes_through_every_command(env: dict[str, str], recordings: Path, tmp_path: Path) -> None:
    import io
    import re

    predicted = probe(env, "predict", "--classifier", "pitch_net", str(recordings / "session0"))
    rows = list(pd.read_csv(io.StringIO(predicted.stdout)).predicted_class)
    assert len(rows) == 10 and all(re.fullmatch(r"[A-G]#?\d[+-]\d+c", name) for name in rows), rows
    assert "logit_class_0" not in predicted.stdout

    probe(env, "predict", "--classifier", "pitch_net", "--num-classes", "50", str(recordings / "session0"), code=2)

    run = tmp_path / "run"
    probe(env, "finetune", "--classifier", "pitch_net", "--data", f"audio:{recordings}", "--objective", "fidelity",
          "--probe", "spectral-gain", "--epochs", "2", "--batch-size", "6", "--out", str(run), "--device", "cpu",
          "--quiet")
    classes = json.loads((run / "outputs" / "classes.json").read_text())
    assert len(classes["class_names"]) == 360 and classes["class_names"][0] == "C1-40c"
    assert classes["category_names"] == ["all"]

    analysis = tmp_path / "analysis"
    probe(env, "analyse", str(run), "--out", str(analysis), "--methods", "saliency", "--attribution-clips", "4",
          "--bootstrap", "200", "--device", "cpu", "--quiet")
    folder = next(p for p in analysis.iterdir() if p.is_dir() and p.name != "comparison")
    arrays = np.load(folder / "arrays.npz")
    maps = arrays["attribution_class_saliency_original"]
    assert maps.shape[1] == 257  # time-frequency maps on the inspection layer's bins, not mass over samples
    profile = pd.read_parquet(folder / "attribution_band_profile.parquet")
    assert profile.high_hz.max() == 8000 and profile.low_hz.notna().all()
    bands = pd.read_parquet(folder / "band_contrast_vs_control.parquet")
    assert {"octave", "third_octave", "mel"} <= set(bands.band_set)

    report = tmp_path / "report"
    probe(env, "report", str(analysis), "--out", str(report), "--jobs", "1", "--quiet")
    pages = {page: page.read_text() for page in report.rglob("*.html")}
    decided = set(pd.read_parquet(folder / "accuracy_per_class.parquet")["class"])
    assert decided and all(re.fullmatch(r"[A-G]#?\d[+-]\d+c", name) for name in decided)
    assert any(name in html for name in decided for html in pages.values())
    for page, html in pages.items():
        assert "ESC-50" not in html and "animals" not in html.lower(), page


@pytest.mark.integration
def test_a_fixed_head_asked_for_another_class_count_is_one_line(env: dict[str, str], tmp_path: Path,
                                                                 synthetic_root: Path) -> None:
    result = probe(env, "finetune", "--classifier", "pitch_net", "--data", f"esc50:{synthetic_root}", "--probe",
                   "spectral-gain", "--epochs", "1", "--out", str(tmp_path / "run"), "--device", "cpu", code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fixed 360-class head" in lines[0] and "5 classes" in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_a_plain_module_with_a_fixed_head_is_counted_not_renamed(tmp_path: Path, monkeypatch) -> None:
    """A `package.module:factory` returning a bare 360-output module without names: asked for the data's 5 classes
    it is refused (its outputs are counted, not taken on trust); asked for nothing, it gets 360 names."""
    from probe.errors import ConfigError
    from probe.models import load_classifier

    (tmp_path / "bare_net.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    sample_rate = 16000\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.head = nn.Linear(1, 360)\n"
        "    def forward(self, x):\n"
        "        return self.head(x.mean(-1, keepdim=True))\n\n"
        "def build(num_classes=360):\n"
        "    return Net()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="fixed 360-class head and cannot be re-headed to 5"):
        load_classifier("bare_net:build", num_classes=5, class_names=list("abcde"))
    assert load_classifier("bare_net:build").num_classes == 360
