"""The Python API on objects: `probe.wrap` -> `probe.finetune` -> `probe.analyse` -> `probe.answer`, and the
notebook page (docs/python.md) run as printed, its python blocks in order in one namespace, with a small folder of
recordings standing in for the reader's."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import probe
from probe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python.md"


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(1, 3)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.head(waveform.abs().mean(-1, keepdim=True))


def test_wrap_keeps_the_head_and_names_its_outputs() -> None:
    classifier = probe.wrap(Tagger(), sample_rate=16000, class_names=["a", "b", "c"])
    assert isinstance(classifier, probe.WaveformClassifier)
    assert classifier.sample_rate == 16000 and classifier.class_names == ["a", "b", "c"] and not classifier.untrained
    assert probe.wrap(Tagger(), sample_rate=8000).class_names == ["class_0", "class_1", "class_2"]
    assert probe.wrap(classifier, sample_rate=16000) is classifier
    with pytest.raises(ConfigError, match="2 class names for a module with 3 outputs"):
        probe.wrap(Tagger(), sample_rate=16000, class_names=["a", "b"])
    with pytest.raises(ConfigError, match="sample_rate"):
        probe.wrap(Tagger(), sample_rate=0)


def test_the_pipeline_takes_a_wrapped_module_and_names_wrap_for_a_bare_one() -> None:
    from probe.probes import load_autoencoder

    autoencoder = load_autoencoder("tiny", sample_rate=16000, channels=1)
    with pytest.raises(TypeError, match=r"probe\.wrap\(module, sample_rate="):
        probe.ProbePipeline(autoencoder, Tagger())
    pipeline = probe.ProbePipeline(autoencoder, probe.wrap(Tagger(), sample_rate=16000))
    assert pipeline(torch.randn(2, 16000)).shape == (2, 3)
    assert not any(p.requires_grad for p in pipeline.classifier.parameters())


def test_import_probe_stays_light() -> None:
    import subprocess

    code = "import sys, probe; assert 'torch' not in sys.modules; assert callable(probe.wrap) and callable(probe.answer)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ConfigError, match="not a probe classifier yet: wrap it"):
        probe.finetune(Tagger(), "synthetic", out="unused")
    with pytest.raises(ConfigError, match="no setting 'epoch'"):
        probe.finetune("small_cnn", "synthetic", epoch=3, out="unused")
    with pytest.raises(ConfigError, match="no such folder of recordings"):
        probe.finetune("small_cnn", "no-such-folder", out="unused")
    with pytest.raises(ConfigError, match="no option 'method'"):
        probe.analyse("runs", "out", method=["saliency"])


def test_analyse_options_go_to_their_settings() -> None:
    from probe.app.api import analyse_config

    config = analyse_config("runs", "out", methods=["saliency"], margin_points=3.0, threshold_db=2.0, seed=4)
    assert config.attributions.methods == ("saliency",) and config.removal.margin_points == 3.0
    assert config.shifts.threshold_db == 2.0 and config.seed == 4 and config.runs == ("runs",)
    assert analyse_config("runs", "out", answer=False).removal is None


def page_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.mark.integration
def test_the_notebook_page_runs_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """wrap -> finetune (5 replicates, the spectral gain's default epochs) -> analyse -> answer, on a plain module."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    recordings = tmp_path / "my-recordings" / "day-1"
    recordings.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for i in range(60):  # tones and noise: any audio does
        clip = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 6000) * t) if i % 2 else 0.1 * rng.standard_normal(16000)
        sf.write(recordings / f"rec-{i:02d}.wav", clip.astype(np.float32), 16000)
    blocks = page_blocks()
    assert len(blocks) >= 4
    notebook = types.ModuleType("__main__")  # a notebook's cells run in __main__'s namespace, as here
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    namespace = notebook.__dict__
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    said = capsys.readouterr()
    assert "clips per fold" in said.out and "'can do without' cannot be shown" in said.err
    runs = sorted((tmp_path / "runs" / "notebook").glob("rep-*/done.json"))
    assert len(runs) == 5
    answer = namespace["answer"]
    assert isinstance(answer, probe.Answer) and list(answer.sentences) == ["TinyTagger"]
    assert answer.sentences["TinyTagger"].startswith("TinyTagger ")
    assert set(answer.claims.classifier) == {"TinyTagger"}
    assert (tmp_path / "analysis-notebook" / "summary.json").is_file()
    assert tuple(namespace["logits"].shape) == (2, 3)
    # the runs name the saved classifier, which another process could load
    config = (runs[0].parent / "config.json").read_text()
    assert '"classifier": "module:' in config


def test_a_factorys_module_without_a_sample_rate_is_refused_naming_it(tmp_path: Path, monkeypatch, sine_wav: Path,
                                                                      capsys) -> None:
    """No silent 32 kHz: a `package.module:factory` whose module does not say its rate is one line naming it."""
    from probe.app.cli import main

    (tmp_path / "rateless.py").write_text("from torch import nn\n\n\ndef build(num_classes=2):\n"
                                          "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["predict", "--classifier", "rateless:build", str(sine_wav)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rateless:build" in err[0] and "`sample_rate`" in err[0], err


def test_a_saved_object_loads_only_from_where_probe_keeps_them(tmp_path: Path) -> None:
    """`module:FILE` unpickles: a run naming a file outside $PROBE_HOME/classifiers is refused before it is read."""
    from probe.app.api import classifier_name
    from probe.models import load_classifier

    outside = tmp_path / "evil.pt"
    torch.save(probe.wrap(Tagger(), sample_rate=16000), outside)
    with pytest.raises(ConfigError, match="loads only from"):
        load_classifier(f"module:{outside}")
    torch.manual_seed(1)
    name, weights = classifier_name(probe.wrap(Tagger(), sample_rate=16000, name="tagger"))
    assert name.startswith("module:") and weights is None
    loaded = load_classifier(name)
    assert loaded.name == "tagger" and loaded.sample_rate == 16000 and not any(p.requires_grad for p in loaded.parameters())
    torch.manual_seed(1)
    assert classifier_name(probe.wrap(Tagger(), sample_rate=16000, name="tagger")) == (name, None)  # by content
