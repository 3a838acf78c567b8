"""The four one-file recipes of "Extending probe" (docs/extending.md), exactly as the page prints them, work end to end.

Each recipe's code block is taken from docs/extending.md, written to a file, and loaded as a plugin
(`PROBE_PLUGINS`) by a fresh `probe` process: the new classifier must appear in `probe models`, the new
probe in `probe finetune --help` and in a run's objective, the new analysis's table in the analysis
folder and on the report's classifier page, and the new attribution method's maps in the attribution tables.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("my_classifier", "my_probe", "my_analysis", "my_attribution", "my_waveform_classifier")

pytestmark = pytest.mark.integration


EXTENDING = ROOT / "docs" / "extending.md"


def page_recipes() -> dict[str, str]:
    """The page's python blocks whose first line names one of the recipe files."""
    blocks = re.findall(r"```python\n(.*?)```", EXTENDING.read_text(), flags=re.S)
    found = {}
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# ") and first[2:].removesuffix(".py") in RECIPES:
            found[first[2:].removesuffix(".py")] = block
    return found


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugins")
    recipes = page_recipes()
    assert set(recipes) == set(RECIPES), "docs/extending.md must show the five recipes"
    for name, code in recipes.items():
        (folder / f"{name}.py").write_text(code)
    env = {**os.environ, "PROBE_PLUGINS": ",".join(RECIPES),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    return env


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "probe.app.cli", *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_recipes_add_a_classifier_a_probe_an_analysis_and_an_attribution_method(plugin_env: dict[str, str], synthetic_root: Path,
                                                              tmp_path: Path) -> None:
    assert "mel_linear" in probe(plugin_env, "models", "--kind", "classifier").stdout
    assert "loudness" in probe(plugin_env, "models", "--kind", "autoencoder").stdout
    help_text = probe(plugin_env, "finetune", "--help").stdout
    assert "loudness" in help_text and "--level-penalty" in help_text

    run = tmp_path / "run"
    probe(plugin_env, "finetune", "--classifier", "mel_linear", "--probe", "loudness", "--data", f"esc50:{synthetic_root}",
          "--epochs", "3", "--batch-size", "5", "--out", str(run), "--device", "cpu", "--quiet", "--allow-untrained")
    objective = json.loads((run / "outputs" / "objective.json").read_text())
    assert objective["probe"] == "loudness" and "0.1 x linear gain" in objective["objective"]
    after, originals = np.load(run / "outputs" / "reconstructions_after.npy"), np.load(run / "outputs" / "originals.npy")
    assert np.mean(after**2) < np.mean(originals**2)  # the level penalty pulled the gain below 0 dB

    analysis, report = tmp_path / "analysis", tmp_path / "report"
    assert "input_x_gradient" in probe(plugin_env, "analyse", "--help").stdout
    probe(plugin_env, "analyse", str(run), "--out", str(analysis), "--methods", "saliency,input_x_gradient", "--bootstrap", "100",
          "--no-transfer", "--device", "cpu", "--quiet", "--allow-untrained")
    folder = next(p for p in analysis.iterdir() if p.is_dir() and p.name != "comparison")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["tables"]["peak_level"] == "peak_level" and summary["probe"] == "loudness"
    peaks = pd.read_parquet(folder / "peak_level.parquet")
    assert set(peaks.condition) == {"original", "before", "after"}
    assert (peaks[peaks.condition == "after"].peak_dbfs.to_numpy() < peaks[peaks.condition == "original"].peak_dbfs.to_numpy()).all()

    mass = pd.read_parquet(folder / "attribution_band_mass.parquet")
    assert set(mass.method) == {"saliency", "input_x_gradient"} and mass[mass.method == "input_x_gradient"].mass.notna().all()

    probe(plugin_env, "report", str(analysis), "--out", str(report), "--quiet")
    page = (report / "mel_linear" / "index.html").read_text()
    assert "peak_level" in page and "linear gain" in page


def test_a_waveform_in_plugin_with_its_own_front_end_is_attributed_in_time_and_frequency(
        plugin_env: dict[str, str], synthetic_root: Path, tmp_path: Path) -> None:
    """Its front-end is a module of its own (not nn.Identity): the analysis attributes it through the STFT layer."""
    run, analysis = tmp_path / "run", tmp_path / "analysis"
    probe(plugin_env, "finetune", "--classifier", "wave_conv", "--probe", "spectral-gain", "--data",
          f"esc50:{synthetic_root}", "--epochs", "1", "--batch-size", "5", "--out", str(run), "--device", "cpu",
          "--quiet", "--allow-untrained")
    probe(plugin_env, "analyse", str(run), "--out", str(analysis), "--methods", "integrated_gradients",
          "--ig-steps", "8", "--bootstrap", "100", "--no-transfer", "--device", "cpu", "--quiet", "--allow-untrained")
    folder = next(p for p in analysis.iterdir() if p.is_dir() and p.name != "comparison")
    summary = json.loads((folder / "summary.json").read_text())
    assert "stft" in json.dumps(summary), "a waveform-in network's maps are the inspection layer's"
    mass = pd.read_parquet(folder / "attribution_band_mass.parquet")
    assert set(mass.method) == {"integrated_gradients"} and mass.mass.notna().all()


def test_a_plugin_that_does_not_import_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "PROBE_PLUGINS": "no_such_plugin_module"}
    result = subprocess.run([sys.executable, "-m", "probe.app.cli", "models"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no_such_plugin_module" in result.stderr
