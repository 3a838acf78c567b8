"""Batches of files, short files and quiet third parties: what a user sees when a glob meets real folders."""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from probe.app.cli import main
from probe.models import load_classifier, save_classifier
from probe.zoo import model_specs


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    classifier = load_classifier("small_cnn", num_classes=3, class_names=["a", "b", "c"], sample_rate=16000)
    return save_classifier(classifier, tmp_path / "clf.pt")


def _wav(path: Path, samples: int, rate: int = 16000) -> Path:
    sf.write(path, (0.3 * np.sin(np.arange(samples) / 7)).astype(np.float32), rate, subtype="FLOAT")
    return path


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {Path(row["file"]).name: row for row in csv.DictReader(io.StringIO(text))}


def test_one_bad_file_does_not_lose_the_good_ones(checkpoint: Path, tmp_path: Path, capsys) -> None:
    good, other = _wav(tmp_path / "good.wav", 16000), _wav(tmp_path / "other.wav", 8000)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    args = ["predict", "--classifier", "small_cnn", "--classifier-weights", str(checkpoint)]
    assert main([*args, str(good), str(bad), str(other)]) == 1
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["good.wav"]["predicted_class"] and rows["other.wav"]["predicted_class"]
    assert rows["bad.wav"]["error"].startswith("not an audio file") and not rows["bad.wav"].get("predicted_class")
    lines = captured.err.strip().splitlines()
    assert sum(str(bad) in line and "not an audio file" in line for line in lines) == 1
    assert not any(str(good) in line for line in lines) and "Traceback" not in captured.err

    worse = tmp_path / "worse.wav"
    worse.write_bytes(b"")
    assert main([*args, str(bad), str(worse)]) == 2  # none could be read
    err = capsys.readouterr().err
    assert str(bad) in err and str(worse) in err and "none of the 2 files" in err
    assert main([*args, "--strict", str(good), str(bad), str(other)]) == 2  # --strict stops at the first failure
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and str(bad) in err


def test_reconstruct_goes_through_a_batch_too(tmp_path: Path, capsys) -> None:
    good = _wav(tmp_path / "good.wav", 4800, rate=48000)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    out = tmp_path / "rec"
    assert main(["reconstruct", "--autoencoder", "tiny", str(good), str(bad), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert (out / "good.wav").is_file() and not (out / "bad.wav").exists()
    assert str(bad) in captured.err and f"{good} -> " in captured.out


@pytest.mark.parametrize("name", [spec.name for spec in model_specs("classifier")])
def test_every_classifier_takes_a_file_of_one_sample_ten_ms_or_one_sample_short_of_its_window(name: str) -> None:
    classifier = load_classifier(name, num_classes=5)
    for length in sorted({1, classifier.sample_rate // 100, classifier.min_samples - 1}):
        waveform, padded_from = classifier.pad_short(torch.zeros(1, length) + 0.1)
        assert padded_from == length and waveform.shape[-1] == classifier.min_samples
        with torch.inference_mode():
            logits = classifier(waveform)
        assert logits.shape == (1, 5) and torch.isfinite(logits).all()
    unpadded, none = classifier.pad_short(torch.zeros(1, classifier.min_samples))
    assert none is None and unpadded.shape[-1] == classifier.min_samples


def test_predict_pads_short_files_and_says_so(checkpoint: Path, tmp_path: Path, capsys) -> None:
    files = [_wav(tmp_path / "one.wav", 1), _wav(tmp_path / "ten_ms.wav", 160), _wav(tmp_path / "long.wav", 16000)]
    assert main(["predict", "--classifier", "small_cnn", "--classifier-weights", str(checkpoint), *map(str, files)]) == 0
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["one.wav"]["padded_from_samples"] == "1" and rows["ten_ms.wav"]["padded_from_samples"] == "160"
    assert rows["long.wav"]["padded_from_samples"] == "" and all(r["predicted_class"] for r in rows.values())
    assert "2 file(s) shorter than small_cnn takes were zero-padded" in captured.err


def test_passt_prints_nothing_of_its_own(capsys, monkeypatch) -> None:
    import hear21passt.models.passt as upstream

    monkeypatch.setattr(upstream, "first_RUN", True)  # hear21passt prints tensor shapes on its first forward pass
    classifier = load_classifier("passt", num_classes=5)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("error")  # nor its warnings about short clips and torch.stft, which are expected
        classifier(torch.zeros(1, classifier.min_samples))
    assert capsys.readouterr().out == ""
    print("a print of ours")  # stdout itself is untouched outside PaSST's call
    assert capsys.readouterr().out == "a print of ours\n"


def test_known_harmless_warnings_are_hidden_and_others_still_show() -> None:
    from probe.analyses.spectral import mel_maps
    from probe.progress import EMPTY_MEL_FILTER, bars_enabled, without_known_warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mel_maps(np.zeros((1, 800), np.float32), 8000)  # 128 mel bands at 8 kHz: some hold no STFT bin
    with pytest.warns(UserWarning, match="this one matters"):
        with without_known_warnings(EMPTY_MEL_FILTER):
            warnings.warn("this one matters", UserWarning)
    assert bars_enabled(True) is False  # pytest's captured stderr is no terminal: no bars, one line per epoch
