"""The command line: exit codes, one-line errors, and the commands' outputs."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from probe.app.cli import main
from probe.models import load_classifier, save_classifier


@pytest.fixture
def classifier_checkpoint(tmp_path: Path) -> Path:
    classifier = load_classifier("small_cnn", num_classes=3, class_names=["a", "b", "c"], sample_rate=16000)
    return save_classifier(classifier, tmp_path / "clf.pt")


def test_help_lists_the_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "probe.app.cli", "--help"], capture_output=True, text=True, check=True)
    for name in ("models", "predict", "reconstruct", "download", "demo"):
        assert name in result.stdout
    shown = subprocess.run(
        [sys.executable, "-c", "import sys, probe.app.cli; probe.app.cli.main(['--help']); print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "finetune" in shown and "torch" not in shown.split(), "probe --help must not import torch"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


@pytest.mark.parametrize("argv, says", [
    (["finetune", "--data", "synthetic", "--out", "x", "--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
    (["finetune", "--data", "synthetic", "--out", "x", "--replicates", "two"], "argument --replicates: expected a whole number, got 'two'"),
    (["finetune", "--data", "synthetic", "--out", "x", "--scheduler", "linear"], "argument --scheduler: invalid choice: 'linear'"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["finetune", "--out", "x", "--data", "audio:nowhere", "--replicate", "3"],
     "probe finetune: error: unrecognized arguments: --replicate 3 (did you mean --replicates?)"),
    (["finetune", "--out", "x", "--data", "audio:nowhere", "--obj", "fidelity"], "--obj fidelity (did you mean --objective?)"),
    (["finetune", "--out", "x", "--data", "audio:nowhere", "--replicatse=3"], "--replicatse=3 (did you mean --replicates?)"),
    (["--debg", "models"], "--debg (did you mean --debug?)"),
    (["download", "weights", "--lis"], "probe download: error: unrecognized arguments: --lis (did you mean --list?)"),
])
def test_a_usage_error_is_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Like every bad input: one line saying what is wrong (and where the help is), exit code 2, no usage block."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert says in captured.err and "--help" in captured.err and "usage:" not in captured.err


def test_no_parser_takes_an_abbreviation() -> None:
    """`--replicate` is not silently taken for `--replicates`: every command's parser wants flags spelled out."""
    import argparse

    from probe.app.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) > 5 and not parser.allow_abbrev
    assert [name for name, command in commands.items() if command.allow_abbrev] == []


def test_models_lists_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mn10", "dymn10", "passt", "archisound", "random", "tiny"):
        assert name in out


def test_predict_csv_and_json(classifier_checkpoint: Path, sine_wav: Path, tmp_path: Path, capsys) -> None:
    assert main(["predict", "--classifier", "small_cnn", "--classifier-weights", str(classifier_checkpoint), str(sine_wav)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 and rows[0]["predicted_class"] in {"a", "b", "c"}
    assert {"logit_a", "logit_b", "logit_c"} <= set(rows[0])
    out = tmp_path / "p.json"
    assert main(["predict", "--classifier", "small_cnn", "--classifier-weights", str(classifier_checkpoint), str(sine_wav),
                 "--format", "json", "--out", str(out)]) == 0
    assert json.loads(out.read_text())[0]["file"] == str(sine_wav)


def test_predict_warns_that_an_untrained_classifier_gives_untrained_logits(sine_wav: Path, tmp_path: Path, capsys,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """finetune and analyse refuse an untrained classifier; predict answers, with one warning line that says so."""
    with caplog.at_level("WARNING", logger="probe.inference"):
        assert main(["predict", "--classifier", "small_cnn", str(sine_wav)]) == 0
    warnings = [r.getMessage() for r in caplog.records if "untrained" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "small_cnn has no trained weights" in warnings[0] and "logits are an untrained network's" in warnings[0]
    assert capsys.readouterr().out.startswith("file,")
    caplog.clear()
    trained = load_classifier("small_cnn", num_classes=3, class_names=["a", "b", "c"], sample_rate=16000)
    trained.untrained = None  # what code that trains it does before saving
    checkpoint = save_classifier(trained, tmp_path / "trained.pt")
    with caplog.at_level("WARNING", logger="probe.inference"):
        assert main(["predict", "--classifier", "small_cnn", "--classifier-weights", str(checkpoint), str(sine_wav)]) == 0
    assert "untrained" not in caplog.text


def test_bad_audio_exits_2_with_one_line(classifier_checkpoint: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    code = main(["predict", "--classifier", "small_cnn", "--classifier-weights", str(classifier_checkpoint), str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(bad) in err and "not an audio file" in err and "Traceback" not in err


def test_folder_runs_skip_bad_files_unless_strict(classifier_checkpoint: Path, sine_wav: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "good.wav").write_bytes(sine_wav.read_bytes())
    (folder / "bad.wav").write_text("nope")
    args = ["predict", "--classifier", "small_cnn", "--classifier-weights", str(classifier_checkpoint), str(folder)]
    assert main(args) == 1  # some files read, some not
    captured = capsys.readouterr()
    rows = {Path(r["file"]).name: r for r in csv.DictReader(io.StringIO(captured.out))}
    assert rows["bad.wav"]["error"].startswith("not an audio file") and rows["good.wav"]["predicted_class"]
    assert "1 of 2 files could not be read" in captured.err and "bad.wav" in captured.err
    assert main(args + ["--strict"]) == 2


def test_missing_weights_and_unknown_models_exit_2(tmp_path: Path, sine_wav: Path, capsys) -> None:
    assert main(["predict", "--classifier", "mn10", "--classifier-weights", str(tmp_path / "none.pt"), str(sine_wav)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", "--classifier", "nonet", str(sine_wav)]) == 2
    assert "unknown classifier" in capsys.readouterr().err
    assert main(["predict", "--classifier", "mn10", "--classifier-weights", "mn10_as", str(sine_wav)]) == 2
    assert "probe download weights mn10_as" in capsys.readouterr().err


def test_reconstruct_writes_wavs(sine_wav: Path, tmp_path: Path, capsys) -> None:
    assert main(["reconstruct", "--autoencoder", "tiny", str(sine_wav), "--out", str(tmp_path / "rec")]) == 0
    data, rate = sf.read(tmp_path / "rec" / "sine.wav")
    assert rate == 48000 and data.shape == (24000, 2) and np.isfinite(data).all()


def test_console_script_error_path(tmp_path: Path) -> None:
    probe = Path(sys.executable).with_name("probe")
    if not probe.exists():
        pytest.skip("the console script is not installed in this environment")
    result = subprocess.run([str(probe), "reconstruct", "--autoencoder", "tiny", str(tmp_path / "x.wav"), "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().startswith("probe: error:") and "x.wav" in result.stderr
