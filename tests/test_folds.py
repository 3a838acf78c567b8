"""Fold leakage: per-fold weights through `{fold}` templates, training folds recorded by every training run, a run that
would validate on a fold its checkpoint learned refused with the one-line error, unknown folds warned about."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from probe.app.cli import main
from probe.errors import ConfigError
from probe.folds import FoldRecord, read_record, refuse_leak, select_on_next, suspected_leak, with_fold
from probe.rundir import RunDir
from probe.train.config import FinetuneConfig

CLASSIFIER = ["train-classifier", "--classifier", "small_cnn", "--classifier-weights", "none", "--classifier-option", "sample_rate=16000",
              "--classifier-option", "channels=8", "--lr", "3e-3", "--batch-size", "8", "--device", "cpu", "--quiet", "--epochs", "1"]
IDENTITY = ["finetune", "--classifier", "small_cnn", "--autoencoder", "identity", "--epochs", "0", "--device", "cpu",
            "--quiet"]


@pytest.fixture(scope="module")
def per_fold_classifiers(tmp_path_factory, synthetic_root: Path) -> Path:
    """`probe train-classifier --folds 1,2`: OUT/fold-1/best.pt learned folds 2-5, OUT/fold-2/best.pt folds 1, 3-5."""
    out = tmp_path_factory.mktemp("classifiers") / "clf"
    assert main([*CLASSIFIER, "--data", f"esc50:{synthetic_root}", "--out", str(out), "--folds", "1,2"]) == 0
    return out


def test_every_training_run_records_its_folds_beside_and_inside_its_checkpoint(per_fold_classifiers: Path,
                                                                               synthetic_root: Path, tmp_path: Path):
    record = read_record(per_fold_classifiers / "fold-2" / "best.pt")
    assert record == FoldRecord(f"esc50:{synthetic_root.resolve()}", (1, 3, 4, 5), 2, ())
    moved = tmp_path / "elsewhere.pt"  # a copy away from its run directory still says what it learned
    shutil.copy(per_fold_classifiers / "fold-2" / "best.pt", moved)
    assert read_record(moved) == record


def test_a_fold_1_checkpoint_validated_on_fold_2_is_refused(per_fold_classifiers: Path, synthetic_root: Path,
                                                            tmp_path: Path, capsys):
    out = tmp_path / "leak"
    code = main([*IDENTITY, "--classifier-weights", str(per_fold_classifiers / "fold-1" / "best.pt"),
                 "--data", f"esc50:{synthetic_root}", "--fold", "2", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(per_fold_classifiers / "fold-1" / "best.pt") in err and "validation fold 2" in err
    assert not out.exists(), "nothing is written for a refused run"
    # cross-validation with the one checkpoint: refused before any fold runs
    code = main([*IDENTITY, "--classifier-weights", str(per_fold_classifiers / "fold-1" / "best.pt"),
                 "--data", f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(out)])
    assert code == 2 and not out.exists()


def test_a_fold_template_gives_each_fold_its_own_checkpoint(per_fold_classifiers: Path, synthetic_root: Path,
                                                            tmp_path: Path, capsys):
    template = str(per_fold_classifiers / "fold-{fold}" / "best.pt")
    out = tmp_path / "cv"
    assert main([*IDENTITY, "--classifier-weights", template, "--data", f"esc50:{synthetic_root}", "--folds", "1,2",
                 "--out", str(out)]) == 0
    for fold in (1, 2):
        stored = json.loads(RunDir(out / f"fold-{fold}").config.read_text())["config"]
        assert stored["classifier_weights"] == template.format(fold=fold) and stored["fold"] == fold
        # no training leak, but fold K's best.pt was selected on fold K: recorded and warned about (rule 8)
        note = json.loads(RunDir(out / f"fold-{fold}").done.read_text())["possible_leakage"]
        assert f"selected (best.pt) by its score on validation fold {fold}" in note and "trained on" not in note
    err = capsys.readouterr().err
    assert err.count("warning: the classifier checkpoint") == 2 and "--hold-out" in err


def test_select_on_next_gives_each_scored_fold_a_checkpoint_that_never_saw_it(synthetic_root: Path, tmp_path: Path,
                                                                              capsys):
    """`--folds 1,2 --select-on next`: OUT/fold-K holds K out and picks best.pt on the next fold, so finetuning fold K
    with OUT/fold-{fold}/best.pt is clean: no leak refused, no selection caution. The folder is then theirs."""
    data, out = f"esc50:{synthetic_root}", tmp_path / "clf"
    assert main([*CLASSIFIER, "--data", data, "--out", str(out), "--folds", "1,2", "--select-on", "next"]) == 0
    identity = f"esc50:{synthetic_root.resolve()}"
    assert read_record(out / "fold-1" / "best.pt") == FoldRecord(identity, (3, 4, 5), 2, (1,))
    assert read_record(out / "fold-2" / "best.pt") == FoldRecord(identity, (1, 4, 5), 3, (2,))
    assert f"{out / 'fold-1'} selects on fold 2 and holds out fold 1" in capsys.readouterr().out
    assert main([*IDENTITY, "--classifier-weights", str(out / "fold-{fold}" / "best.pt"), "--data", data,
                 "--folds", "1,2", "--out", str(tmp_path / "cv")]) == 0
    for fold in (1, 2):
        assert "possible_leakage" not in json.loads(RunDir(tmp_path / "cv" / f"fold-{fold}").done.read_text())
    assert "warning" not in capsys.readouterr().err
    # the same folder with the other plan holds other runs: refused, not returned as if they were these
    assert main([*CLASSIFIER, "--data", data, "--out", str(out), "--folds", "1,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"probe: error: {out / 'fold-1'}: holds a run validated on fold 2, holding out fold 1; this one is "
                   "validated on fold 1: choose another --out")
    assert main([*CLASSIFIER, "--data", data, "--out", str(tmp_path / "one"), "--select-on", "next"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--select-on next takes effect with --folds" in err
    assert not (tmp_path / "one").exists()


def test_select_on_next_wraps_round_skips_held_out_folds_and_leaves_a_fold_to_train_on():
    five = lambda: (1, 2, 3, 4, 5)  # noqa: E731
    assert select_on_next(5, (), five) == (1, (5,))
    assert select_on_next(1, (2,), five) == (3, (1, 2))
    with pytest.raises(ConfigError, match="1 of the data's 5 folds remain"):
        select_on_next(1, (2, 3, 4), five)
    with pytest.raises(ConfigError, match="the data has folds 1, 2, 3, 4, 5"):
        select_on_next(6, (), five)


def test_one_checkpoint_of_unknown_folds_for_several_folds_is_warned_about_once(trained_classifier: Path,
                                                                                synthetic_root: Path, tmp_path: Path,
                                                                                capsys):
    assert read_record(trained_classifier) is None  # saved without a record: its folds are unknown
    assert main([*IDENTITY, "--classifier-weights", str(trained_classifier), "--data", f"esc50:{synthetic_root}",
                 "--folds", "1,2", "--out", str(tmp_path / "cv")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and str(trained_classifier) in err and "{fold}" in err


def test_published_fold_checkpoints_are_known_without_downloading():
    record = read_record("passt_esc50_fold1")
    assert record.trained_on == (2, 3, 4, 5)
    assert refuse_leak("classifier", "passt_esc50_fold1", "esc50:/anywhere", 1) == record
    with pytest.raises(ConfigError, match="trained on folds 2, 3, 4, 5, which include validation fold 3"):
        refuse_leak("classifier", "passt_esc50_fold1", "esc50:/anywhere", 3)
    assert refuse_leak("classifier", "passt_esc50_fold1", "folder:/mine", 3) == record  # another dataset's folds
    assert read_record("passt_as") is None and read_record("mn10") is None


def test_templates_fill_only_fold():
    config = FinetuneConfig(classifier="passt", classifier_weights="passt_esc50_fold{fold}", fold=3,
                            autoencoder="runs/pre/fold-{fold}/best.pt")
    filled = with_fold(config)
    assert filled.classifier_weights == "passt_esc50_fold3" and filled.autoencoder == "runs/pre/fold-3/best.pt"
    assert with_fold(config, 5).classifier_weights == "passt_esc50_fold5"
    with pytest.raises(ConfigError, match="only {fold}"):
        with_fold(FinetuneConfig(classifier_weights="x_{folds}.pt"))


def test_a_near_perfect_bare_classifier_of_unknown_folds_is_flagged():
    assert "0.995" in suspected_leak(None, 0.995)
    assert suspected_leak(None, 0.96) is None  # ESC-50's published level on unseen folds
    assert suspected_leak(FoldRecord("esc50", (2, 3, 4, 5)), 1.0) is None  # known not to have learned the fold


def test_the_report_says_a_suspected_leak_once_per_classifier(tmp_path: Path):
    from probe.reports.data import AnalysedRun
    from probe.reports.findings import cautions

    note = suspected_leak(None, 1.0)
    runs = [AnalysedRun(tmp_path, {"label": f"mn10--{s}", "classifier": "mn10", "possible_leakage": note})
            for s in ("pretrained", "random")]
    said = cautions(runs)
    assert len(said) == 1 and said[0].startswith("Caution, possible fold leakage: the bare classifier scores 1.000")
    assert cautions([AnalysedRun(tmp_path, {"label": "x", "possible_leakage": None})]) == []


def test_a_grid_of_fold_templates_names_cells_by_what_they_hold(per_fold_classifiers: Path, synthetic_root: Path,
                                                                tmp_path: Path):
    """The study's leak-free grid: per-fold classifiers (and AEs) through templates; cells named without the fold,
    every fold's run under its cell, and the setting's label the same on every fold (so that folds pool)."""
    template = f"{per_fold_classifiers}/fold-{{fold}}/best.pt"
    assert main(["finetune", "--grid", f"classifier=small_cnn@{template}", "autoencoder=identity", "--epochs", "0",
                 "--data", f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(tmp_path / "grid"), "--device",
                 "cpu", "--quiet"]) == 0
    cell = tmp_path / "grid" / "small_cnn@clf--identity"
    assert sorted(p.name for p in cell.iterdir() if p.is_dir()) == ["fold-1", "fold-2"]
    configs = [json.loads(RunDir(cell / f"fold-{k}").config.read_text())["config"] for k in (1, 2)]
    assert [c["classifier_weights"] for c in configs] == [template.format(fold=k) for k in (1, 2)]


def test_probe_analyse_pools_the_folds_and_every_table_names_its_run(per_fold_classifiers: Path, synthetic_root: Path,
                                                                     tmp_path: Path):
    """Two folds of one (classifier, setting): the pooled contrast is over both folds' clips (its mean per band is the
    mean of every clip's contrast), each fold's table stays beside it, and `probe.analyses.load` gives each table
    across runs with run, classifier, setting, fold and seed columns."""
    import numpy as np

    import probe.analyses

    grid = tmp_path / "grid"
    assert main(["finetune", "--grid", f"classifier=small_cnn@{per_fold_classifiers}/fold-{{fold}}/best.pt",
                 "autoencoder=spectral_gain", "--probe", "spectral-gain", "--epochs", "1", "--data",
                 f"esc50:{synthetic_root}", "--folds", "1,2", "--out", str(grid), "--device", "cpu", "--quiet"]) == 0
    runs = sorted(str(p) for p in grid.glob("*/fold-*"))
    assert len(runs) == 2
    analysis = tmp_path / "analysis"
    assert main(["analyse", str(grid), "--out", str(analysis), "--methods", "none", "--bootstrap", "200", "--device",
                 "cpu", "--quiet"]) == 0  # the grid's folder stands for its runs
    assert [entry["path"] for entry in json.loads((analysis / "summary.json").read_text())["runs"]] == runs
    tables = probe.analyses.load(analysis)
    per_clip = tables["band_shift_per_clip"]
    assert set(per_clip.fold) == {1, 2} and per_clip.seed.unique().tolist() == [0]
    for name, frame in tables.items():
        if name in json.loads((analysis / "summary.json").read_text())["comparison_tables"]:
            continue
        assert {"run", "classifier", "setting", "fold", "seed"} <= set(frame.columns), name
    pooled = tables["band_contrast_pooled"]
    pooled = pooled[pooled.band_set == "octave"].sort_values("band_index")
    assert pooled.folds.unique().tolist() == ["1,2"] and pooled.setting.nunique() == 1
    after = per_clip[(per_clip.band_set == "octave") & (per_clip.condition == "after")]
    expected = after.groupby("band_index").contrast_db.mean().loc[pooled.band_index]
    assert pooled.mean_shift_db.to_numpy() == pytest.approx(expected.to_numpy(), nan_ok=True)
    assert pooled.clips.max() == after.clip_id.nunique() == sum(
        len(json.loads((Path(run) / "outputs" / "clip_ids.json").read_text())) for run in runs)
    assert np.isin(pooled.verdict, ["suppressed", "boosted", "preserved", "inconclusive", "too few clips",
                                    "too narrow", "noise floor"]).all()
    described = json.loads((analysis / "summary.json").read_text())["comparison"]["pooled"]
    (entry,) = described.values()  # what the report's answer reads
    assert entry["folds"] == "1,2" and "sentence" in entry["bands"]["octave"]


def test_a_grid_folder_with_no_complete_run_is_a_one_line_error(tmp_path: Path, capsys):
    (tmp_path / "grid" / "cell").mkdir(parents=True)
    (tmp_path / "grid" / "cell" / "config.json").write_text("{}")  # started, never finished
    assert main(["analyse", str(tmp_path / "grid"), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "grid") in err and "no complete finetune run (1 unfinished" in err
    assert not (tmp_path / "a").exists()


def test_a_shared_cache_decodes_each_split_once_for_the_whole_grid(per_fold_classifiers: Path, trained_classifier: Path,
                                                                   synthetic_root: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert main(["finetune", "--grid", f"classifier=small_cnn@{per_fold_classifiers}/fold-1/best.pt,"
                 f"small_cnn@{trained_classifier}", "autoencoder=identity", "--epochs", "0", "--data",
                 f"esc50:{synthetic_root}", "--out", str(tmp_path / "grid"), "--cache-dir", str(cache), "--device",
                 "cpu", "--quiet"]) == 0
    runs = sorted(p for p in (tmp_path / "grid").iterdir() if p.is_dir())
    assert len(runs) == 2 and all(RunDir(run).is_complete() and not (run / "cache").exists() for run in runs)
    assert len(list(cache.glob("*.npy"))) == 2  # the training and the validation split, once for both cells
    assert json.loads(RunDir(runs[0]).config.read_text())["config"]["cache_dir"] == str(cache)
