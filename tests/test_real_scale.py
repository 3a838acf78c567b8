"""Real scale: the study's models in their published checkpoint formats (seeded weights), 5 s clips at 32 kHz, one
training step of the full ArchiSound AE behind each classifier, every default analysis method, and the report.

The tiny models elsewhere in the suite miss what only the real ones have: PaSST's patch grid and its prints, the
AE's 48 kHz stereo chain, DyMN's dynamic convolutions, attribution passes of half a gigabyte."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from probe.app.cli import main
from probe.rundir import RunDir

pytestmark = pytest.mark.validation

CLASSIFIERS = ("mn10", "dymn10", "passt")
TARGETS = {"train": (0,), "val": (20, 30)}  # ESC-50 targets (a subset keeps ESC-50's 50 classes)
FAST_ATTRIBUTIONS = ["--attribution-clips", "1", "--ig-steps", "2", "--shap-samples", "1", "--randomisation-stages", "1",
                     "--occlusion-patch", "64,250", "--bootstrap", "200"]
"""Every default method, each made cheap: PaSST at the defaults costs about 100 s per clip and condition here."""


def _esc50_folder(root: Path) -> Path:
    """An ESC-50 release in miniature: 44.1 kHz, 5 s WAVs in audio/, meta/esc50.csv; fold 1 validates."""
    import soundfile as sf

    from probe.esc50 import CLASS_NAMES

    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(5 * 44100) / 44100
    rows = []
    for split, targets in TARGETS.items():
        for target in targets:
            name = f"{2 if split == 'train' else 1}-{target}-A-0.wav"
            tone = 0.2 * np.sin(2 * np.pi * (300 + 50 * target) * t) + 0.02 * rng.standard_normal(len(t))
            sf.write(root / "audio" / name, tone.astype(np.float32), 44100, subtype="PCM_16")
            rows.append({"filename": name, "fold": 2 if split == "train" else 1, "target": target,
                         "category": CLASS_NAMES[target], "src_file": f"src{target}", "take": "A"})
    pd.DataFrame(rows).to_csv(root / "meta" / "esc50.csv", index=False)
    return root


def _published_checkpoints(folder: Path) -> dict[str, Path]:
    """Seeded weights in each model's published format: EfficientAT's plain state_dicts (mn10, dymn10), PaSST's
    network state_dict as hear21passt builds it, and ArchiSound's hub file (keys prefixed `autoencoder.`)."""
    import contextlib
    import io

    from audio_encoders_pytorch import AutoEncoder1d, TanhBottleneck
    from hear21passt.base import get_model_passt

    from probe.models import load_classifier

    folder.mkdir()
    paths = {}
    for seed, name in enumerate(("mn10", "dymn10")):
        torch.manual_seed(seed)
        paths[name] = folder / f"{name}_esc50.pt"
        torch.save(load_classifier(name, num_classes=50).net.state_dict(), paths[name])
    torch.manual_seed(2)
    with contextlib.redirect_stdout(io.StringIO()):
        passt = get_model_passt(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=50)
    paths["passt"] = folder / "passt-s-f128-p16-s10-ap.476-swa-fold1.pt"
    torch.save(passt.state_dict(), paths["passt"])
    torch.manual_seed(3)
    autoencoder = AutoEncoder1d(in_channels=2, patch_size=4, channels=32, multipliers=[1, 2, 4, 8, 8, 8, 1],
                                factors=[2, 2, 2, 1, 1, 1], num_blocks=[2, 2, 8, 8, 8, 8], bottleneck=TanhBottleneck())
    paths["archisound"] = folder / "pytorch_model.bin"
    torch.save({f"autoencoder.{k}": v for k, v in autoencoder.state_dict().items()}, paths["archisound"])
    return paths


def test_the_study_models_finetune_analyse_and_report_at_real_scale(tmp_path: Path, capsys) -> None:
    data = _esc50_folder(tmp_path / "esc50")
    weights = _published_checkpoints(tmp_path / "weights")
    runs = tmp_path / "runs"
    grid = "classifier=" + ",".join(f"{name}@{weights[name]}" for name in CLASSIFIERS)
    assert main(["finetune", "--grid", grid, "--autoencoder", "archisound", "--ae-weights", str(weights["archisound"]),
                 "--data", f"esc50:{data}", "--epochs", "1", "--batch-size", "1", "--out", str(runs),
                 "--device", "cpu", "--quiet"]) == 0
    run_dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    assert [p.name.split("@")[0] for p in run_dirs] == sorted(CLASSIFIERS)
    for path in run_dirs:
        run = RunDir(path)
        assert run.is_complete() and json.loads(run.done.read_text())["epochs"] == 1
        steps = [r for r in run.read_metrics() if r["kind"] == "step"]
        assert len(steps) == 1 and np.isfinite(steps[0]["loss"])  # one training clip: one step
        originals = np.load(run.originals_file)
        assert originals.shape == (2, 5 * 32000)  # the validation clips at the classifiers' 32 kHz
        for condition in ("before", "after"):
            reconstruction = np.load(run.reconstructions_file(condition))
            assert reconstruction.shape == originals.shape and np.isfinite(reconstruction).all()
            assert np.load(run.logits_file(condition)).shape == (2, 50)

    analysis, site = tmp_path / "analysis", tmp_path / "site"
    capsys.readouterr()
    assert main(["analyse", *map(str, run_dirs), "--out", str(analysis), *FAST_ATTRIBUTIONS, "--device", "cpu",
                 "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "torch.Size" not in printed.out + printed.err, "hear21passt's shape prints reached the user"
    summary = json.loads((analysis / "summary.json").read_text())
    assert len(summary["runs"]) == 3
    methods = {"integrated_gradients", "saliency", "gradient_shap", "occlusion"}
    for entry in summary["runs"]:
        folder = analysis / entry["folder"]
        run_summary = json.loads((folder / "summary.json").read_text())
        for table in run_summary["tables"]:
            assert (folder / f"{table}.parquet").is_file() and (folder / f"{table}.csv").is_file(), table
        mass = pd.read_parquet(folder / "attribution_band_mass.parquet")
        assert set(mass.method) == methods and set(mass.condition) == {"original", "after"}
        assert np.isfinite(mass["mass"]).all()
        # one attributed clip: the check says why it did not run; integrated gradients' fixed steps are measured
        assert "at least 8 clips" in run_summary["attributions"]["randomisation_not_run"]
        assert run_summary["attributions"]["completeness"]["steps"] == 2
        assert len(pd.read_parquet(folder / "attribution_completeness.parquet")) == 1
        shifts = pd.read_parquet(folder / "band_shift_overall.parquet")
        assert len(shifts) and set(shifts.band_set) == {"octave", "third_octave", "mel"}

    assert main(["report", str(analysis), "--out", str(site), "--quiet"]) == 0
    index = (site / "index.html").read_text()
    for name in CLASSIFIERS:
        page = next(site.glob(f"{name}*/index.html"))
        html = page.read_text()
        assert "<html" in html and "</html>" in html
        for reference in __import__("re").findall(r'(?:src|href)="([^"#:]+)"', html):
            assert (page.parent / reference).resolve().exists(), f"{page}: {reference} is missing"
        assert page.parent.name in index
