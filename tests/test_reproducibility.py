"""Reproducible end to end: the same inputs and seed give the same tables, and a report says how to remake it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.app.cli import main

pytestmark = pytest.mark.integration
METHODS = "integrated_gradients,saliency,gradient_shap,occlusion"
SEEDED_COLUMNS = {"ci_low", "ci_high", "nmi_chance", "nmi_inter", "nmi_inter_originals", "mean", "spearman",
                  "clips_constant", "passed", "mass"}
PAIRED_MEASURES = ("nmi_chance", "nmi_inter", "nmi_inter_originals")
"""The NMI measures that pair a clip with another, drawn by the seed: in nmi_summary, only their rows' means move."""
"""What --seed may change: bootstrap intervals, the NMI's pairing of clips (a derangement: nmi_chance, nmi_inter,
nmi_inter_originals; not nmi_intra or nmi_intra_shared, which pair a clip with itself), GradientSHAP's maps (mass,
only in its rows) and the randomisation check (a freshly drawn network). Means, shifts, tests and every other
method's maps must not move."""


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {str(path.relative_to(folder)): pd.read_parquet(path) for path in sorted(folder.rglob("*.parquet"))}


def analyse(runs: list[Path], out: Path, seed: int) -> dict[str, pd.DataFrame]:
    assert main(["analyse", *map(str, runs), "--out", str(out), "--methods", METHODS, "--attribution-clips", "3",
                 "--bootstrap", "200", "--seed", str(seed), "--device", "cpu", "--quiet"]) == 0
    return tables(out)


def test_the_same_seed_gives_the_same_tables_and_another_changes_only_the_seeded_columns(two_runs: list[Path],
                                                                                          tmp_path: Path) -> None:
    import torch

    state = torch.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    first, second = analyse(two_runs, tmp_path / "a1", 0), analyse(two_runs, tmp_path / "a2", 0)
    assert torch.equal(torch.get_rng_state(), state), "an analysis must not draw from or reseed torch's global generator"
    assert np.array_equal(np.random.get_state()[1], numpy_state), "nor numpy's"
    assert first.keys() == second.keys()
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, second[name], obj=name)
    methods = set(pd.concat([f for n, f in first.items() if n.endswith("attribution_band_mass.parquet")]).method)
    assert methods == set(METHODS.split(","))

    other = analyse(two_runs, tmp_path / "b", 1)
    changed: set[tuple[str, str]] = set()
    for name, frame in first.items():
        for column in frame.columns:
            a, b = frame[column], other[name][column]
            if name.endswith(("attribution_band_mass.parquet", "attribution_band_profile.parquet")) and column == "mass":
                deterministic = frame.method != "gradient_shap"  # only GradientSHAP's maps draw
                assert np.array_equal(a[deterministic].to_numpy(), b[deterministic].to_numpy()), name
            if name.endswith("nmi_summary.parquet") and column == "mean":
                deterministic = ~frame.measure.isin(PAIRED_MEASURES)
                assert np.array_equal(a[deterministic].to_numpy(), b[deterministic].to_numpy()), name
            if name.endswith("route_correlations.parquet") and column == "spearman_rho":
                deterministic = ~(frame.route_a.str.startswith("gradient shap") | frame.route_b.str.startswith("gradient shap"))
                assert deterministic.any() and np.array_equal(a[deterministic].to_numpy(), b[deterministic].to_numpy())
                continue  # GradientSHAP's routes follow its maps
            if not a.equals(b):
                changed.add((name.split("/")[-1], column))
    assert {column for _, column in changed} <= SEEDED_COLUMNS, sorted(changed)
    assert ("nmi_per_clip.parquet", "nmi_chance") in changed  # the draws do follow the seed
    overall = next(frame for name, frame in first.items() if name.endswith("band_shift_overall.parquet"))
    assert overall.ci_low.isna().all() and (overall.units < 8).all()  # 5 clips: too few for an interval
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["provenance"]["seed"] == 1 and summary["provenance"]["versions"]["captum"]


def _finetune_outputs(tmp_path: Path, synthetic_root: Path, classifier: Path, name: str, *extra: str) -> tuple[list, dict]:
    out = tmp_path / name
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(classifier), "--data",
                 f"esc50:{synthetic_root}", "--out", str(out), "--device", "cpu", "--quiet", "--epochs", "2",
                 "--batch-size", "5", "--seed", "3", *extra]) == 0
    from probe.train.loop import TIMING_FIELDS

    losses = [{k: v for k, v in record.items() if k not in TIMING_FIELDS}
              for record in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    arrays = {path.name: np.load(path) for path in sorted((out / "outputs").glob("*.npy"))}
    return losses, arrays


@pytest.mark.parametrize("probe_args", [("--autoencoder", "tiny", "--lr", "3e-3"), ("--probe", "spectral-gain")],
                         ids=["tiny-ae", "spectral-gain"])
def test_finetuning_twice_with_one_seed_gives_the_same_losses_and_outputs(tmp_path: Path, synthetic_root: Path,
                                                                          trained_classifier: Path, probe_args) -> None:
    losses, arrays = _finetune_outputs(tmp_path, synthetic_root, trained_classifier, "first", *probe_args)
    again, again_arrays = _finetune_outputs(tmp_path, synthetic_root, trained_classifier, "second", *probe_args,
                                            "--deterministic")
    assert losses == again and len(losses) > 2
    assert arrays.keys() == again_arrays.keys() and "reconstructions_after.npy" in arrays
    for name, array in arrays.items():
        assert np.array_equal(array, again_arrays[name]), name


def test_the_reports_reproduce_block_remakes_the_tables_in_a_fresh_folder(tmp_path: Path, synthetic_root: Path,
                                                                           trained_classifier: Path) -> None:
    """Commands with relative paths, run in one folder; the report's block, pasted into a shell in another folder
    holding the same inputs, gives the same tables."""
    first, fresh = tmp_path / "first", tmp_path / "fresh"
    for folder in (first, fresh):
        shutil.copytree(synthetic_root, folder / "data")
        shutil.copy(trained_classifier, folder / "clf.pt")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}

    def probe(*args: str) -> None:
        result = subprocess.run(["probe", *args], cwd=first, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]

    common = ["--classifier", "small_cnn", "--classifier-weights", "clf.pt", "--data", "esc50:data", "--epochs", "1",
              "--lr", "3e-3", "--device", "cpu", "--quiet"]
    probe("finetune", *common, "--autoencoder", "tiny", "--ae-option", "sample_rate=16000", "--ae-option", "channels=1",
          "--out", "runs/tiny")
    probe("finetune", *common, "--probe", "spectral-gain", "--out", "runs/gain")
    probe("analyse", "runs/tiny", "runs/gain", "--out", "analysis", "--methods", "saliency,gradient_shap",
          "--attribution-clips", "3", "--bootstrap", "100", "--device", "cpu", "--quiet")
    probe("report", "analysis", "--out", "report", "--quiet")

    index = (first / "report" / "index.html").read_text()
    block = unescape(re.search(r'<pre class="reproduce">(.*?)</pre>', index, flags=re.S).group(1)).strip().splitlines()
    assert len(block) == 4 and block[0].startswith("probe finetune") and block[-1].startswith("probe report")
    page = (first / "report" / "small_cnn" / "index.html").read_text()
    assert "Made with probe" in page and "training seed 0" in page and "analysis seed 0" in page
    result = subprocess.run(["bash", "-e", "-c", "\n".join(block)], cwd=fresh, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    remade = tables(fresh / "analysis")
    assert remade.keys() == tables(first / "analysis").keys()
    for name, frame in tables(first / "analysis").items():
        pd.testing.assert_frame_equal(frame, remade[name], obj=name)
