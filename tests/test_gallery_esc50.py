"""The listening gallery on ESC-50's layout: on a fold 1 of 400 clips with ESC-50's classes, its rows are the study's
six example positions (8, 12, 31, 66, 86, 102), and the page renders in Chromium with working audio. The clips are
0.1 s, shorter than half the analysis STFT's window: they are padded for it, not a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.app.cli import main

pytestmark = pytest.mark.integration  # builds the study's ESC-50 layout and runs the pipeline through the CLI

RATE = 44100
SECONDS = 0.1


def _esc50_layout(root: Path) -> Path:
    """ESC-50's layout in miniature: audio/ at 44.1 kHz, meta/esc50.csv; fold 1 as ESC-50's (8 clips of each of the
    50 classes, 400 in all), fold 2 one clip per class to train on. Short tones, a pitch per class."""
    import soundfile as sf

    from probe.esc50 import CLASS_NAMES

    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    t = np.arange(int(SECONDS * RATE)) / RATE
    rows = []
    for fold, takes in ((1, 8), (2, 1)):
        for target in range(50):
            for take in range(takes):
                name = f"{fold}-{target:02d}{take}-A-{target}.wav"
                tone = 0.3 * np.sin(2 * np.pi * (200 + 60 * target) * t)
                sf.write(root / "audio" / name, tone.astype(np.float32), RATE, subtype="PCM_16")
                rows.append({"filename": name, "fold": fold, "target": target, "category": CLASS_NAMES[target],
                             "src_file": f"{target}{take}", "take": "A"})
    pd.DataFrame(rows).to_csv(root / "meta" / "esc50.csv", index=False)
    return root


@pytest.fixture(scope="module")
def study_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from probe.esc50 import CLASS_NAMES
    from probe.models.classifiers import load_classifier, save_classifier

    root = tmp_path_factory.mktemp("esc50-layout")
    data = _esc50_layout(root / "ESC-50")
    weights = save_classifier(load_classifier("small_cnn", num_classes=50, class_names=list(CLASS_NAMES),
                                              sample_rate=16000), root / "clf.pt")
    run = root / "run"
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(weights), "--probe",
                 "spectral-gain", "--epochs", "1", "--clip-seconds", str(SECONDS), "--data", f"esc50:{data}",
                 "--out", str(run), "--device", "cpu", "--quiet", "--allow-untrained"]) == 0
    assert main(["analyse", str(run), "--out", str(root / "analysis"), "--methods", "none", "--bootstrap", "200",
                 "--device", "cpu", "--quiet", "--allow-untrained"]) == 0
    assert main(["report", str(root / "analysis"), "--out", str(root / "report"), "--quiet"]) == 0
    return root


def test_the_gallery_rows_are_the_study_examples(study_gallery: Path) -> None:
    from probe.esc50 import STUDY_EXAMPLES

    summary = json.loads(next((study_gallery / "analysis").glob("*/summary.json")).read_text())
    assert tuple(row["position"] for row in summary["examples"]) == STUDY_EXAMPLES
    gallery = (study_gallery / "report" / "gallery.html").read_text()
    clip_ids = json.loads((study_gallery / "run" / "outputs" / "clip_ids.json").read_text())
    rows = gallery.split("<tbody>")[1].split("<tr>")[1:]
    assert len(rows) == len(STUDY_EXAMPLES)
    for row, position in zip(rows, STUDY_EXAMPLES):
        assert clip_ids[position] in row and row.count("<audio") == 2 and ">residual</a>" in row


def test_the_study_gallery_renders_in_chromium(study_gallery: Path) -> None:
    from browser import check_in_chromium

    check_in_chromium([study_gallery / "report" / "gallery.html"], "study-gallery")
