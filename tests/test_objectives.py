"""`--objective fidelity` and `--data audio:DIR`: probing a classifier on unlabeled audio.

Known answers for the losses and the mAP; the unlabeled folder's layout and folds; and a 527-output, multi-label
classifier with seeded weights through finetune, analyse and report on a folder with no labels.
"""
from __future__ import annotations

import html
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from probe.data import load_audio_folder, load_dataset
from probe.errors import ConfigError, DatasetError
from probe.metrics import mean_average_precision
from probe.train.objectives import OBJECTIVES, fidelity_kl


def test_the_fidelity_loss_is_zero_on_the_original_and_a_known_kl_elsewhere() -> None:
    reference = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    assert fidelity_kl(reference, reference, multi_label=False) == 0.0  # the null: nothing changed
    assert fidelity_kl(reference, reference + 3.0, multi_label=False).abs() < 1e-6  # a softmax ignores a shift
    p, q = torch.softmax(reference[:1], -1), torch.softmax(torch.zeros(1, 3), -1)
    expected = float((p * (p / q).log()).sum())
    assert math.isclose(float(fidelity_kl(reference[:1], torch.zeros(1, 3), False)), expected, rel_tol=1e-6)


def test_the_multi_label_fidelity_loss_sums_binary_kls() -> None:
    reference, logits = torch.tensor([[3.0, -2.0]]), torch.tensor([[0.0, 0.0]])
    assert fidelity_kl(reference, reference, multi_label=True).abs() < 1e-7
    assert fidelity_kl(reference, reference + 3.0, multi_label=True) > 0.1  # independent sigmoids: a shift matters
    p = torch.sigmoid(reference)
    expected = float((p * (p / 0.5).log() + (1 - p) * ((1 - p) / 0.5).log()).sum())
    assert math.isclose(float(fidelity_kl(reference, logits, True)), expected, rel_tol=1e-6)


def test_mean_average_precision_known_answers() -> None:
    positives = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], dtype=bool)
    perfect = positives.astype(float)
    assert mean_average_precision(perfect, positives) == 1.0
    # class 0 ranked: clip 1 (no), clip 0 (yes), clip 2 (yes) -> (1/2 + 2/3) / 2; class 1: clip 1 first -> 1
    scores = np.array([[0.8, 0.1], [0.9, 0.9], [0.7, 0.2], [0.1, 0.3]])
    assert math.isclose(mean_average_precision(scores, positives), ((1 / 2 + 2 / 3) / 2 + 1) / 2)
    assert math.isnan(mean_average_precision(scores, np.zeros_like(positives)))
    constant = np.ones((4, 1))  # tied scores are taken together: no credit for where the positives happen to sit
    assert mean_average_precision(constant, positives[:, :1]) == mean_average_precision(constant, positives[::-1, :1]) == 0.5


def test_mean_average_precision_equals_sklearn_with_ties() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    scores, positives = rng.integers(0, 4, (40, 6)).astype(float), rng.random((40, 6)) < 0.3
    expected = np.mean([metrics.average_precision_score(positives[:, c], scores[:, c]) for c in range(6)
                        if positives[:, c].any()])
    assert math.isclose(mean_average_precision(scores, positives), expected, rel_tol=1e-12)


def test_fidelity_scores_agreement_with_the_original_decision() -> None:
    fidelity = OBJECTIVES.lookup("fidelity")
    reference = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    targets = fidelity.targets(torch.full((3,), -1), lambda: reference)
    assert torch.equal(fidelity.decisions(targets), torch.tensor([0, 1, 0]))
    metrics, score = fidelity.metrics(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), targets, multi_label=False)
    assert score == pytest.approx(2 / 3) and metrics["val_agreement"] == score and metrics["val_loss"] > 0
    assert not fidelity.needs_labels and OBJECTIVES.lookup("labels").needs_labels
    with pytest.raises(ConfigError, match="unknown objective 'nope'; known: labels, fidelity"):
        OBJECTIVES.lookup("nope")


def test_an_audio_folder_is_every_file_beneath_it_with_no_classes(tmp_path: Path, sine_wav: Path) -> None:
    root = tmp_path / "recordings"
    for name in ("a/one.wav", "a/deep/two.wav", "three.wav", "meta/not-a-clip.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sine_wav, root / name)
    (root / "notes.txt").write_text("not audio")
    dataset = load_dataset(f"audio:{root}")
    assert [c.clip_id for c in dataset.clips] == ["a/deep/two.wav", "a/one.wav", "three.wav"]
    assert not dataset.labelled and dataset.num_classes == 0 and {c.target for c in dataset.clips} == {-1}
    shutil.copy(sine_wav, root / "a" / "four.wav")  # a new file moves no other clip to another fold
    again = {c.clip_id: c.fold for c in load_audio_folder(root).clips}
    assert all(again[c.clip_id] == c.fold for c in dataset.clips) and set(again.values()) <= set(dataset.folds)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio files beneath it"):
        load_audio_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(f"audio:{tmp_path / 'missing'}")


def test_labels_on_an_unlabeled_folder_are_refused_before_anything_is_written(tmp_path: Path, sine_wav: Path) -> None:
    from probe.train.finetune import FinetuneConfig, finetune

    (tmp_path / "audio").mkdir()
    shutil.copy(sine_wav, tmp_path / "audio" / "x.wav")
    config = FinetuneConfig(classifier="small_cnn", autoencoder="tiny", data=f"audio:{tmp_path / 'audio'}",
                            out=str(tmp_path / "run"), epochs=1, progress=False)
    with pytest.raises(ConfigError, match="has no labels: probe it with --objective fidelity"):
        finetune(config)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def unlabeled_folder(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """The synthetic clips without their labels: nested folders of recordings."""
    root = tmp_path_factory.mktemp("unlabeled") / "recordings"
    for index, path in enumerate(sorted((synthetic_root / "audio").glob("*.wav"))):
        (root / f"site{index % 3}").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / f"site{index % 3}" / f"take{index:02d}.wav")
    return root


@pytest.mark.integration
def test_a_527_output_tagger_goes_through_finetune_analyse_and_report_on_unlabeled_audio(
        unlabeled_folder: Path, tmp_path: Path) -> None:
    from test_huggingface import save_ast

    from probe.analyses.analyse import AnalyseConfig, analyse
    from probe.analyses.config import AttributionSettings, ShiftSettings
    from probe.audioset import audioset_class_names
    from probe.reports.build import ReportConfig, build_report
    from probe.train.finetune import FinetuneConfig, finetune

    tagger = save_ast(tmp_path / "tagger", audioset_class_names(), multi_label=True)
    run = finetune(FinetuneConfig(
        classifier=f"hf:{tagger}", autoencoder="tiny", ae_options={"sample_rate": 16000, "channels": 1}, penalty=0.5,
        data=f"audio:{unlabeled_folder}", objective="fidelity", epochs=2, learning_rate=3e-3, out=str(tmp_path / "run"),
        progress=False))
    objective = json.loads(run.objective_file.read_text())
    assert objective["multi_label"] is True and objective["targets"] == "decisions"
    assert objective["objective"].startswith("KL divergence from the classifier's output on the original (no labels)")
    classes = json.loads(run.classes_file.read_text())
    assert len(classes["class_names"]) == 527 and classes["category_names"] == ["all"]
    original = np.load(run.logits_file("original"))
    assert np.array_equal(np.load(run.targets_file), original.argmax(1))  # each clip's class: its own top class
    done = json.loads(run.done.read_text())
    assert 0 <= done["best_val_map"] <= 1 and done["bare_classifier_accuracy"] is None

    analysis = analyse(AnalyseConfig(runs=(str(run.path),), out=str(tmp_path / "analysis"), transfer=False,
                                     shifts=ShiftSettings(n_boot=100), progress=False,
                                     attributions=AttributionSettings(methods=("saliency",), max_clips=4)))
    folder = next(p for p in analysis.iterdir() if p.is_dir() and p.name != "comparison")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["setting"].endswith(" (fidelity)") and folder.name.endswith("(fidelity)")  # the objective marks it
    accuracy = summary["accuracy"]
    assert accuracy["scored_against"] == "decisions" and accuracy["original"]["top1"] == 1.0
    assert accuracy["original"]["map"] == 1.0 and 0 <= accuracy["after"]["map"] <= 1
    assert len(pd.read_parquet(folder / "band_contrast_vs_control.parquet"))  # everything else runs unchanged

    index = build_report(ReportConfig((str(analysis),), str(tmp_path / "report"), progress=False))
    page = (index.parent / "tagger" / "index.html").read_text()
    assert "trained without labels: accuracy is agreement" in page and "mAP against the original" in page
    shown = {audioset_class_names()[i] for i in np.unique(original.argmax(1))}
    listed = [name for name in audioset_class_names() if f"<tr><td>{html.escape(name)}</td>" in page]
    assert set(listed) == shown  # the per-class rows: the classes that were some clip's top class, not all 527


def test_multi_label_is_a_property_of_the_classifier_not_a_guess(tmp_path: Path) -> None:
    from probe.models.classifiers import load_classifier, save_classifier

    tagger = load_classifier("mn10", num_classes=527)  # EfficientAT's AudioSet head: 527 independent sigmoids
    assert tagger.multi_label and not load_classifier("mn10", num_classes=50).multi_label
    assert not load_classifier("small_cnn", num_classes=527, sample_rate=16000).multi_label  # no tagger weights exist
    path = save_classifier(tagger, tmp_path / "tagger.pt")
    assert load_classifier("mn10", weights=path).multi_label  # the checkpoint carries it
    assert not load_classifier("mn10", weights=path, multi_label=False).multi_label  # the caller's word wins


def test_a_hub_audioset_ast_without_problem_type_is_a_tagger(tmp_path: Path) -> None:
    from test_huggingface import save_ast

    from probe.audioset import audioset_class_names
    from probe.models.classifiers import load_classifier

    names = audioset_class_names()
    assert load_classifier(f"hf:{save_ast(tmp_path / 'as', names)}").multi_label  # AudioSet's 527 tags
    assert not load_classifier(f"hf:{save_ast(tmp_path / 'five', names[:5])}").multi_label


def test_without_labels_a_tagger_keeps_its_own_head_on_labelled_data(tmp_path: Path, synthetic_root: Path) -> None:
    """On ESC-50-layout data (5 classes here) an AudioSet tagger probed with fidelity keeps its 527 outputs: the data's
    classes play no part, and its bare accuracy is not checked against labels of other classes."""
    from probe.models.classifiers import load_classifier
    from probe.train.finetune import FinetuneConfig, finetune

    torch.manual_seed(4)
    weights = tmp_path / "mn10_as.pt"
    torch.save(load_classifier("mn10", num_classes=527).net.state_dict(), weights)  # EfficientAT's published format
    run = finetune(FinetuneConfig(classifier="mn10", classifier_weights=str(weights), probe="spectral-gain",
                                  data=f"esc50:{synthetic_root}", objective="fidelity", epochs=1,
                                  out=str(tmp_path / "run"), progress=False))
    classes = json.loads(run.classes_file.read_text())
    assert len(classes["class_names"]) == 527 and classes["category_names"] == ["all"]
    assert np.load(run.logits_file("after")).shape[1] == 527
    assert json.loads(run.objective_file.read_text())["multi_label"] is True
    assert json.loads(run.done.read_text())["bare_classifier_accuracy"] is None


def test_the_analysed_outputs_are_the_last_epochs(tmp_path: Path, synthetic_root: Path, trained_classifier: Path) -> None:
    """A run's outputs (what every analysis reads) come from its last epoch, not best.pt, and done.json says so: the
    saved gain curve is the one latest.pt (the last epoch's state) holds."""
    from probe.probes.spectral_gain import SpectralGain
    from probe.train.finetune import FinetuneConfig, finetune

    run = finetune(FinetuneConfig(classifier="small_cnn", classifier_weights=str(trained_classifier), probe="spectral-gain",
                                  autoencoder="spectral_gain", learning_rate=0.3, data=f"esc50:{synthetic_root}", epochs=3,
                                  out=str(tmp_path / "run"), progress=False))
    done = json.loads(run.done.read_text())
    assert done["analysed"] == "last epoch"
    last = torch.load(run.latest, map_location="cpu", weights_only=False)
    assert last["epoch"] == 3
    gain = SpectralGain(sample_rate=16000)
    gain.load_state_dict(last["model"])
    saved = np.load(run.curve_file("gain_db"))
    np.testing.assert_allclose(saved[1], gain.gain_db().detach().numpy(), atol=1e-5)
    assert np.ptp(saved[1]) > 0.1  # it trained: a curve that never moved could not tell the epochs apart


def test_a_run_trained_without_labels_is_marked_by_its_objective(tmp_path: Path) -> None:
    """The mark the run recorded names its setting; a run that recorded none is still told apart from labelled runs
    when it trained without labels, and a labelled run carries no mark."""
    from probe.analyses.runs import label_mark, setting_label
    from probe.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.objective_file.parent.mkdir(parents=True)
    config = {"autoencoder": "tiny", "objective": "fidelity", "setting_label": None}
    for record, mark in (({"targets": "decisions", "label_mark": "fidelity"}, "fidelity"),
                         ({"targets": "decisions"}, "fidelity"), ({"targets": "labels", "label_mark": ""}, ""),
                         ({"targets": "labels"}, "")):
        run.objective_file.write_text(json.dumps(record))
        assert label_mark(run.path, config) == mark
        assert setting_label(config, mark=label_mark(run.path, config)) == ("tiny (fidelity)" if mark else "tiny")
