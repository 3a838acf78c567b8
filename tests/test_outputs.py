"""The output guard: probe writes, replaces or resumes only folders it made for the same command; a user's folder is
refused with one line and exit 2, its files untouched. Also the honest defaults (no untrained classifier, synthetic
data said) and the one CLI convention (global flags anywhere, one name per concept, old names deprecated)."""
from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from probe.app.cli import build_parser, main
from probe.app.flags import Deprecated
from probe.errors import ConfigError
from probe.outputs import MARKER, check_output, claim_output, marker_kind, staged_directory

QUICK_ANALYSIS = ["--methods", "none", "--bootstrap", "200", "--no-transfer", "--device", "cpu", "--quiet"]


def _hostile(tmp_path: Path, name: str = "mine") -> Path:
    """A folder holding a user's own file."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"three years of field notes\n")
    return folder


def _intact(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert hashlib.sha256((folder / "notes.txt").read_bytes()).hexdigest() == hashlib.sha256(
        b"three years of field notes\n").hexdigest()


def _refused(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("probe: error:")]
    assert len(errors) == 1 and str(folder) in errors[0] and "notes.txt" in errors[0], err
    _intact(folder)


# --- the guard itself -------------------------------------------------------------------------------------------


def test_new_empty_and_own_kind_folders_pass_and_others_are_refused(tmp_path: Path) -> None:
    check_output(tmp_path / "new", "analysis")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", "analysis")
    claim_output(tmp_path / "ours", "analysis")
    assert marker_kind(tmp_path / "ours") == "analysis"
    (tmp_path / "ours" / "table.csv").write_text("x\n")
    check_output(tmp_path / "ours", "analysis")
    with pytest.raises(ConfigError, match="holds an analysis .*, not an HTML report"):
        check_output(tmp_path / "ours", "report")
    with pytest.raises(ConfigError, match=r"holds 1 entry \(notes.txt\) that probe did not write"):
        check_output(_hostile(tmp_path), "analysis")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_output(tmp_path / "file", "analysis")


def test_root_home_and_working_folder_and_their_parents_are_refused(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home" / "me"
    work = home / "project"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for folder, said in (("/", "filesystem root"), ("~", "your home folder"), (str(home), "your home folder"),
                         (".", "the working folder"), ("..", "your home folder"), (str(tmp_path), "a folder above")):
        with pytest.raises(ConfigError, match=said):
            check_output(folder, "demo")
    check_output("out", "demo")  # a new folder inside the working folder is fine


def test_an_output_inside_an_input_or_holding_one_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    claim_output(run, "analysis")
    with pytest.raises(ConfigError, match="holds the input"):
        check_output(run, "analysis", inputs=[run])
    with pytest.raises(ConfigError, match="is inside the input"):
        check_output(run / "analysis", "analysis", inputs=[run])
    (run / "x.pt").touch()
    with pytest.raises(ConfigError, match="holds the input"):  # a file input inside the output counts too
        check_output(tmp_path / "new" / "..", "analysis", inputs=[run / "x.pt"])
    check_output(tmp_path / "elsewhere", "analysis", inputs=[run, run / "x.pt", tmp_path / "missing"])


def test_folders_an_earlier_probe_wrote_are_recognised_and_a_lock_alone_is_empty(tmp_path: Path) -> None:
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text("")
    check_output(run, "run")  # no marker, but only a run writes these
    check_output(tmp_path / "old-run", "run")
    with pytest.raises(ConfigError, match="holds a training run, not an analysis"):
        check_output(run, "analysis")
    grid = tmp_path / "grid"
    (grid / "a--b").mkdir(parents=True)
    (grid / "a--b" / "config.json").write_text("{}")
    (grid / "a--b" / "done.json").write_text("{}")
    check_output(grid, "runs")
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".lock").write_text("")  # a run killed before it marked its folder
    check_output(killed, "run")
    config_only = tmp_path / "mine"
    config_only.mkdir()
    (config_only / "config.json").write_text("{}")  # a user's config alone is no run
    with pytest.raises(ConfigError, match="that probe did not write"):
        check_output(config_only, "run")


def test_a_staged_replacement_refuses_before_touching_anything(tmp_path: Path) -> None:
    folder = _hostile(tmp_path)
    with pytest.raises(ConfigError):
        with staged_directory(folder, "report"):
            raise AssertionError("never reached")
    _intact(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left either


# --- every command that writes a folder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory: pytest.TempPathFactory, two_runs: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("guard") / "analysis"
    assert main(["analyse", str(two_runs[0]), "--out", str(out), *QUICK_ANALYSIS]) == 0
    return out


def test_analyse_refuses_a_users_folder_and_reruns_onto_its_own(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    folder = _hostile(tmp_path)
    assert main(["analyse", str(two_runs[0]), "--out", str(folder), *QUICK_ANALYSIS]) == 2
    _refused(capsys, folder)
    own = tmp_path / "analysis"
    assert main(["analyse", str(two_runs[0]), "--out", str(own), *QUICK_ANALYSIS]) == 0
    assert main(["analyse", str(two_runs[0]), "--out", str(own), *QUICK_ANALYSIS]) == 0
    assert marker_kind(own) == "analysis"


def test_analyse_into_its_own_run_is_refused_and_the_run_stays(two_runs: list[Path], capsys) -> None:
    before = sorted(str(p.relative_to(two_runs[1])) for p in two_runs[1].rglob("*"))
    assert main(["analyse", str(two_runs[1]), "--out", str(two_runs[1]), *QUICK_ANALYSIS]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert sorted(str(p.relative_to(two_runs[1])) for p in two_runs[1].rglob("*")) == before


def test_report_and_figures_refuse_a_users_folder_and_rerun_onto_their_own(tmp_path: Path, analysis_dir: Path,
                                                                           capsys) -> None:
    folder = _hostile(tmp_path)
    assert main(["report", str(analysis_dir), "--out", str(folder), "--jobs", "1", "--quiet"]) == 2
    _refused(capsys, folder)
    assert main(["figures", str(analysis_dir), "--out", str(folder), "--format", "png"]) == 2
    _refused(capsys, folder)
    for command, out in (("report", tmp_path / "report"), ("figures", tmp_path / "figures")):
        extra = ["--jobs", "1", "--quiet"] if command == "report" else ["--format", "png"]
        for _ in range(2):
            assert main([command, str(analysis_dir), "--out", str(out), *extra]) == 0
        assert marker_kind(out) == ("report" if command == "report" else "figures")
    assert main(["figures", str(analysis_dir), "--out", str(tmp_path / "report"), "--format", "png"]) == 2
    assert "holds an HTML report, not a figures folder" in capsys.readouterr().err


def _audio_folder(folder: Path, rate: int = 16000) -> Path:
    folder.mkdir(parents=True)
    t = np.arange(rate // 2) / rate
    for index in range(2):
        sf.write(folder / f"clip{index}.wav", (0.3 * np.sin(2 * np.pi * 440 * (index + 1) * t)).astype(np.float32), rate)
    return folder


def test_compare_and_reconstruct_refuse_a_users_folder(tmp_path: Path, capsys) -> None:
    originals = _audio_folder(tmp_path / "originals")
    folder = _hostile(tmp_path)
    compare_flags = [flag for flag in QUICK_ANALYSIS if flag != "--no-transfer"]
    assert main(["compare", str(originals), str(originals), "--out", str(folder), *compare_flags]) == 2
    _refused(capsys, folder)
    assert main(["reconstruct", "--autoencoder", "tiny", str(originals), "--out", str(folder)]) == 2
    _refused(capsys, folder)
    assert main(["reconstruct", "--autoencoder", "tiny", str(originals), "--out", str(originals / "rec")]) == 2
    assert "inside the input" in capsys.readouterr().err
    out = tmp_path / "rec"
    for _ in range(2):
        assert main(["reconstruct", "--autoencoder", "tiny", str(originals), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "clip0.wav", "clip1.wav"]


def test_demo_refuses_a_users_folder(tmp_path: Path, capsys) -> None:
    folder = _hostile(tmp_path)
    assert main(["demo", "--out", str(folder), "--quiet"]) == 2
    _refused(capsys, folder)


def test_training_commands_refuse_a_users_folder(tmp_path: Path, synthetic_root: Path, trained_classifier: Path,
                                                 capsys) -> None:
    data = ["--data", f"esc50:{synthetic_root}", "--device", "cpu", "--quiet", "--epochs", "1"]
    folder = _hostile(tmp_path)
    commands = [
        ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--autoencoder",
         "identity", "--epochs", "0", *data[:4]],
        ["finetune", "--classifier", "small_cnn", "--classifier-weights", str(trained_classifier), "--grid",
         "autoencoder=identity", "--epochs", "0", *data[:4]],
        ["pretrain-ae", "--autoencoder", "tiny", "--ae-option", "sample_rate=16000", "--ae-option", "channels=1", *data],
        ["train-classifier", "--classifier", "small_cnn", "--classifier-weights", "none", "--classifier-option",
         "sample_rate=16000", *data],
        ["train-classifier", "--classifier", "small_cnn", "--classifier-weights", "none", "--classifier-option",
         "sample_rate=16000", "--folds", "1,2", *data],
    ]
    for command in commands:
        assert main([*command, "--out", str(folder)]) == 2, command
        _refused(capsys, folder)
    # a finetune onto its own run resumes or returns it, as before
    run = tmp_path / "run"
    for _ in range(2):
        assert main([*commands[0], "--out", str(run)]) == 0
    assert marker_kind(run) == "run"


# --- honest defaults ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["finetune", "pretrain-ae", "train-classifier"])
def test_training_without_data_is_refused_in_one_line(command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """No silent synthetic data: every training command needs --data (synthetic clips only when asked for)."""
    monkeypatch.chdir(tmp_path)
    assert main([command, "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data" in err[0] and "required" in err[0], err
    assert not (tmp_path / "x").exists()


def test_finetune_with_nothing_else_is_refused_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "--data", "synthetic", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mn10 has no trained weights" in err[0] and "--classifier-weights" in err[0] \
        and "--allow-untrained" in err[0], err
    assert not (tmp_path / "x").exists()


def test_an_untrained_classifier_is_refused_downstream_and_said_on_every_page(tmp_path: Path, synthetic_root: Path,
                                                                              capsys) -> None:
    run = tmp_path / "run"
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-option", "sample_rate=16000", "--autoencoder",
                 "identity", "--epochs", "0", "--data", f"esc50:{synthetic_root}", "--out", str(run), "--device", "cpu",
                 "--allow-untrained", "--quiet"]) == 0
    assert main(["analyse", str(run), "--out", str(tmp_path / "a"), *QUICK_ANALYSIS]) == 2
    assert "no trained weights" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["analyse", str(run), "--out", str(tmp_path / "a"), *QUICK_ANALYSIS, "--allow-untrained"]) == 0
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "report"), "--jobs", "1", "--quiet"]) == 0
    pages = sorted((tmp_path / "report").rglob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        html = page.read_text()
        assert "warning-banner" in html and "The classifier is untrained" in html and "synthetic" in html, page


def test_a_checkpoint_saved_untrained_is_refused(tmp_path: Path, synthetic_root: Path, capsys) -> None:
    from probe.models import load_classifier, save_classifier

    weights = save_classifier(load_classifier("small_cnn", num_classes=5, sample_rate=16000), tmp_path / "raw.pt")
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-weights", str(weights), "--autoencoder",
                 "identity", "--epochs", "0", "--data", f"esc50:{synthetic_root}", "--out", str(tmp_path / "run"),
                 "--device", "cpu", "--quiet"]) == 2
    assert "was saved untrained" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_synthetic_data_is_said_at_the_start(tmp_path: Path, trained_classifier: Path, capsys) -> None:
    from probe.train.finetune import FinetuneConfig
    from probe.train.loop import open_run, releasing_run

    @releasing_run
    def splits_only(config, resume=False):
        return open_run(config, resume).splits(config)

    splits_only(FinetuneConfig(classifier="small_cnn", classifier_weights=str(trained_classifier), autoencoder="identity",
                               epochs=0, out=str(tmp_path / "run"), device="cpu"))
    err = capsys.readouterr().err
    assert "probe: note: --data synthetic: training on synthetic clips, not recordings" in err


# --- one CLI convention ------------------------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_flag_has_help_and_a_metavar_in_words() -> None:
    for name, parser in _subparsers().items():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, Deprecated)):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings or action.dest)
            metavar = action.metavar if action.metavar is not None else (
                None if action.nargs == 0 or action.choices is not None else action.dest.upper())
            if metavar and action.option_strings:
                assert not re.search(r"[A-Z]_[A-Z]", str(metavar)), (name, action.option_strings, metavar)


def test_global_flags_work_after_the_command(tmp_path: Path, capsys) -> None:
    for name, parser in _subparsers().items():
        flags = {flag for action in parser._actions for flag in action.option_strings}
        assert {"--debug", "-v", "--verbose", "-q", "--quiet"} <= flags, name
    assert main(["status", str(tmp_path / "none"), "--quiet"]) == 2
    with pytest.raises(ConfigError):  # --debug after the command re-raises instead of printing one line
        main(["status", str(tmp_path / "none"), "--debug"])
    args = build_parser().parse_args(["--debug", "models", "-q"])
    assert args.debug and args.quiet and not args.verbose


def test_analyze_is_analyse(two_runs: list[Path], tmp_path: Path) -> None:
    assert build_parser().parse_args(["analyze", "run"]).command == "analyse"
    assert main(["analyze", str(two_runs[0]), "--out", str(tmp_path / "a"), *QUICK_ANALYSIS]) == 0
    assert marker_kind(tmp_path / "a") == "analysis"


def test_registry_choices_are_checked_and_listed(capsys) -> None:
    parser = build_parser()
    for argv in (["finetune", "--out", "x", "--scheduler", "linear"], ["analyse", "r", "--correction", "bonferroni"],
                 ["analyse", "r", "--band-sets", "octave,bark"], ["analyse", "r", "--methods", "lime"]):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(argv)
        assert stopped.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
    assert parser.parse_args(["analyse", "r", "--band-sets", "octave,mel"]).band_sets == ("octave", "mel")
    help_text = _subparsers()["finetune"].format_help()
    assert "cosine" in help_text and "plateau" in help_text


def test_old_spellings_still_work_and_say_what_replaces_them(tmp_path: Path, capsys) -> None:
    parser = build_parser()
    cases = [
        (["predict", "a.wav", "--classifier", "mn10", "--weights", "w.pt"], "classifier_weights", "w.pt", "--classifier-weights"),
        (["predict", "a.wav", "--classifier", "mn10", "--out", "p.csv"], "out_file", "p.csv", "--out-file"),
        (["compare", "a", "b", "--weights", "w.pt"], "classifier_weights", "w.pt", "--classifier-weights"),
        (["reconstruct", "a.wav", "--autoencoder", "tiny", "--weights", "w.pt"], "ae_weights", "w.pt", "--ae-weights"),
        (["reconstruct", "a.wav", "--autoencoder", "tiny", "--out-dir", "rec"], "out", "rec", "--out"),
        (["train-classifier", "--data", "synthetic", "--out", "o", "--init", "none"], "init", "none", "--classifier-weights"),
        (["train-classifier", "--data", "synthetic", "--out", "o", "--option", "a=1", "--classifier-option", "b=2"], "classifier_option",
         ["b=2", "a=1"], "--classifier-option"),
        (["download", "weights", "--dir", "w"], "out", "w", "--out"),
        (["status", "g", "--json"], "format", "json", "--format json"),
        (["finetune", "--data", "synthetic", "--out", "o", "--parallel", "3"], "jobs", 3, "--jobs"),
    ]
    for argv, dest, value, instead in cases:
        args = parser.parse_args(argv)
        got = getattr(args, dest)
        assert (sorted(got) == sorted(value)) if isinstance(value, list) else got == value, argv
        assert f"is deprecated and goes in the next release; use {instead}" in capsys.readouterr().err, argv
    from probe.train.finetune import parse_grid

    assert [e.name for e in parse_grid(["classifiers=mn10,dymn10"])["classifier"]] == ["mn10", "dymn10"]
    assert "--grid classifiers= is deprecated" in capsys.readouterr().err


def test_reconstruct_through_an_old_flag_end_to_end(tmp_path: Path, sine_wav: Path, capsys) -> None:
    assert main(["reconstruct", "--autoencoder", "tiny", str(sine_wav), "--out-dir", str(tmp_path / "rec")]) == 0
    assert (tmp_path / "rec" / "sine.wav").is_file()
    assert "--out-dir is deprecated" in capsys.readouterr().err


def test_exit_codes_separate_bad_input_from_runtime_failures() -> None:
    from probe.errors import CheckpointError, DownloadError, RuntimeFailure, WriteError

    assert ConfigError(None, "x").exit_code == CheckpointError(None, "x").exit_code == 2
    assert RuntimeFailure(None, "x").exit_code == WriteError(None, "x").exit_code == DownloadError(None, "x").exit_code == 3
