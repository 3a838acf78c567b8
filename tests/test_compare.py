"""`probe compare`: planted processing (low-pass, gain, delay, identity) must show up as planted."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

from probe.app.cli import main

RATE = 16000
FLAGS = ["--methods", "none", "--bootstrap", "300", "--band-sets", "octave,third_octave", "--device", "cpu", "--quiet"]


def _real_looking(rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """Pink-ish noise plus a few harmonic partials: energy in every band."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n)) / np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20) ** 0.5
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / RATE
    tones = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 440, 1320, 3500, 6000), start=1))
    signal = noise / np.abs(noise).max() + 0.3 * tones
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    for name in ("dog", "rain"):
        (root / name).mkdir()
        for i in range(6):
            sf.write(root / name / f"{i}.wav", _real_looking(rng), RATE, subtype="FLOAT")
    return root


def _process(originals: Path, out: Path, transform) -> Path:
    for path in originals.rglob("*.wav"):
        data, rate = sf.read(path, dtype="float32")
        target = out / path.relative_to(originals)
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, transform(data).astype(np.float32), rate, subtype="FLOAT")
    return out


def _compare(originals: Path, processed: Path, out: Path) -> pd.DataFrame:
    assert main(["compare", str(originals), str(processed), "--out", str(out), *FLAGS]) == 0
    folder = out / json.loads((out / "summary.json").read_text())["runs"][0]["folder"]
    overall = pd.read_parquet(folder / "band_shift_overall.parquet")
    return overall[overall.condition == "after"]


def test_a_lowpass_at_4khz_shows_in_exactly_the_bands_above(tmp_path: Path, originals: Path) -> None:
    sos = butter(8, 4000, fs=RATE, output="sos")
    overall = _compare(originals, _process(originals, tmp_path / "lp", lambda x: sosfiltfilt(sos, x)), tmp_path / "out")
    thirds = overall[overall.band_set == "third_octave"]
    assert (thirds[thirds.low_hz >= 5000].mean_shift_db < -20).all()
    assert (thirds[thirds.high_hz <= 3000].mean_shift_db.abs() < 1).all()
    assert (thirds[thirds.low_hz >= 5000].verdict == "suppressed").all()


def test_a_6db_gain_shows_everywhere_and_identity_shows_nothing(tmp_path: Path, originals: Path) -> None:
    gained = _compare(originals, _process(originals, tmp_path / "gain", lambda x: x * 10 ** (6 / 20)), tmp_path / "g")
    np.testing.assert_allclose(gained.mean_shift_db, 6.0, atol=0.05)
    same = _compare(originals, _process(originals, tmp_path / "same", lambda x: x), tmp_path / "s")
    np.testing.assert_allclose(same.mean_shift_db, 0.0, atol=1e-6)


def test_a_10ms_delay_is_found_and_compensated(tmp_path: Path, originals: Path) -> None:
    delay = int(0.010 * RATE)
    processed = _process(originals, tmp_path / "late", lambda x: np.concatenate([np.zeros(delay, np.float32), x]))
    overall = _compare(originals, processed, tmp_path / "out")
    pairs = pd.read_csv(tmp_path / "out" / "pairs.csv")
    assert (pairs.lag_samples == delay).all() and (pairs.lag_ms == 10.0).all()
    assert (overall.mean_shift_db.abs() < 0.5).all()


@pytest.mark.integration
def test_unpaired_and_unreadable_files_are_listed(tmp_path: Path, originals: Path, capsys) -> None:
    processed = _process(originals, tmp_path / "p", lambda x: x)
    (processed / "dog" / "0.wav").unlink()
    (processed / "dog" / "1.wav").write_text("not audio")
    (processed / "extra.wav").write_bytes(b"")
    _compare(originals, processed, tmp_path / "out")
    pairs = pd.read_csv(tmp_path / "out" / "pairs.csv")
    skipped = pairs[pairs.status == "skipped"]
    assert len(skipped) == 3 and (pairs.status == "paired").sum() == 10
    assert skipped.reason.str.contains("no processed counterpart").any()
    assert skipped.reason.str.contains("no original counterpart").any()
    assert main(["report", str(tmp_path / "out"), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    assert "processed" in next((tmp_path / "report").glob("*/index.html")).read_text()
    assert main(["compare", str(tmp_path / "missing"), str(processed), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.integration
def test_with_a_classifier_accuracy_and_attributions_come_too(tmp_path: Path, originals: Path) -> None:
    from probe.models import load_classifier, save_classifier

    weights = save_classifier(load_classifier("small_cnn", num_classes=2, class_names=["dog", "rain"], sample_rate=RATE,
                                              channels=4), tmp_path / "clf.pt")
    processed = _process(originals, tmp_path / "p", lambda x: x * 0.5)
    out = tmp_path / "out"
    assert main(["compare", str(originals), str(processed), "--out", str(out), "--classifier", "small_cnn", "--classifier-weights",
                 str(weights), "--methods", "saliency", "--attribution-clips", "4", "--bootstrap", "200", "--device", "cpu",
                 "--quiet", "--allow-untrained"]) == 0  # seeded weights stand in for a trained classifier
    folder = out / json.loads((out / "summary.json").read_text())["runs"][0]["folder"]
    accuracy = pd.read_parquet(folder / "accuracy_overall.parquet")
    assert set(accuracy.condition) == {"original", "after"}
    assert len(pd.read_parquet(folder / "attribution_band_mass.parquet")) > 0

    site = tmp_path / "site"  # its report renders, and reads whole in a browser
    assert main(["report", str(out), "--out", str(site), "--quiet"]) == 0
    from browser import check_in_chromium

    check_in_chromium([site / "index.html", *sorted(site.glob("*/index.html")), site / "gallery.html"], "compare")
