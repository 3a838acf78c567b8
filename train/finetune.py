"""`probe finetune`: train an autoencoder in front of a frozen classifier on the classifier's loss.

Only the autoencoder learns (Palacio et al., CVPR 2018); the defaults are the audio study's:
AdamW, lr 3e-5, weight decay 1e-5, effective batch 4, 100 epochs, cosine schedule. The run
directory stores the validation reconstructions before and after, so the analyses never
re-run the models.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from probe.download import resolve_weights
from probe.data import categories_of
from probe.errors import ConfigError
from probe.fileio import safe_name, write_json
from probe.folds import refuse_leaks, suspected_leak, warn_shared, with_fold
from probe.probes.autoencoder import WaveformAutoencoder
from probe.probes.loading import load_autoencoder
from probe.models.classifiers import load_classifier, require_trained
from probe.pipeline import ProbePipeline
from probe.probes import Penalty
from probe.progress import Progress
from probe.rundir import AFTER, BEFORE, ORIGINAL, RunDir
from probe.sizing import Sizing, size_dataset
from probe.train.config import FinetuneConfig
from probe.train.objectives import OBJECTIVES, LabelObjective, TaskObjective, accuracy
from probe.train.loop import (Objective, autocast_for, batched_logits, is_resuming, open_run, releasing_run, run_folds,
                              save_array, start_fresh, train_loop)


class ClassifierObjective(Objective):
    """The frozen classifier's loss on the probe's output (`task`: against the labels, or against its own output on the
    original), plus the probe's penalty; best.pt by the task's score (val accuracy, agreement or mAP). `labelled`:
    `val_labels` are the classifier's own classes, so its bare accuracy can be checked even when the task needs none."""

    def __init__(self, pipeline: ProbePipeline, val_x: torch.Tensor, val_labels: torch.Tensor, micro: int,
                 autocast: dict[str, Any], penalty: Penalty | None = None, weight: float = 0.0,
                 conditional: bool = False, task: TaskObjective = LabelObjective(), labelled: bool = True) -> None:
        self.module, self.val_x, self.micro, self.autocast, self.task = pipeline, val_x, micro, autocast, task
        self.penalty, self.weight = (penalty, weight) if penalty is not None and weight else (None, 0.0)
        self.conditional = conditional
        self.multi_label = bool(pipeline.classifier.multi_label)
        self.bare_logits = batched_logits(pipeline.classifier, val_x, micro, autocast)
        self.val_y = task.targets(val_labels, lambda: self.bare_logits)
        # the leak check's number (`probe.folds.suspected_leak`), wherever the clips have the classifier's classes
        self.bare_accuracy = accuracy(self.bare_logits, val_labels) if labelled else None

    def loss(self, module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        labels = self.task.decisions(y) if self.conditional else None
        reconstruction = None
        if self.penalty is not None and self.penalty.needs_reconstruction:
            logits, reconstruction = module(x, with_reconstruction=True, labels=labels)
        else:
            logits = module(x, labels=labels)
        loss = self.task.loss(logits, y, self.multi_label)
        if self.penalty is None:
            return loss
        return loss + self.weight * self.penalty.term(self.module.autoencoder, x, reconstruction, labels)

    def input_gradient_finite(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from probe.train.loop import input_gradient_finite

        return input_gradient_finite(self.module.classifier, x, lambda logits: self.task.loss(logits, y, self.multi_label))

    def evaluate(self) -> tuple[dict[str, float], float]:
        labels = self.task.decisions(self.val_y) if self.conditional else None
        logits = batched_logits(self.module, self.val_x, self.micro, self.autocast, labels)
        metrics, score = self.task.metrics(logits, self.val_y, self.multi_label)
        bare = {"val_accuracy_bare_classifier": self.bare_accuracy} if self.bare_accuracy is not None else {}
        return {**metrics, **bare}, score


@releasing_run
def finetune(config: FinetuneConfig, resume: bool = False) -> RunDir:
    """Run (or resume) one finetuning run; returns its run directory. Refused before anything is written when the
    classifier or the AE start learned from the validation fold (`probe.folds`)."""
    config = with_fold(config).resolved()
    config.validate()  # a malformed config says so before anything about its classifier
    config.refuse_untrained()
    classifier_folds, selected_here = refuse_leaks(config)
    spec = config.probe_spec
    opened = open_run(config, resume)
    run, dist, device = opened.run, opened.dist, opened.device
    if run.is_complete():
        return run
    # the checkpoints first: a mistyped path is said before any data is generated or decoded
    classifier_weights = resolve_weights(config.classifier_weights) if config.classifier_weights else None
    ae_weights = config.resolved_ae_weights()
    dataset, train_set, val_set = opened.splits(config)
    task = OBJECTIVES.lookup(config.objective)  # an unlabeled --data with labels is refused by config.validate()
    # Without labels the classifier keeps its own head and classes (an AudioSet tagger's 527), whatever the data has.
    classifier = load_classifier(
        config.classifier, classifier_weights, config.num_classes or (dataset.num_classes if task.needs_labels else None),
        class_names=list(dataset.class_names) if task.needs_labels else None, device=device,
        **config.classifier_options,
    )
    require_trained(classifier, config.allow_untrained)
    data_classes = dataset.labelled and list(dataset.class_names) == classifier.class_names
    if dist.is_main and config.epochs and not config.probe_spec.control:
        say_sizing(config, dataset)
    train, val = opened.decode(config, (train_set, val_set), classifier.sample_rate)
    (train_x, train_labels), (val_x, val_labels) = train.tensors(device), val.tensors(device)

    autoencoder = _load_probe(config, ae_weights, classifier.num_classes, device)
    if not (config.finetune_encoder and config.finetune_decoder):
        if not isinstance(autoencoder, WaveformAutoencoder):
            raise ConfigError(None, f"{config.autoencoder} has no encoder and decoder to freeze")
        autoencoder.encoder.requires_grad_(config.finetune_encoder)
        autoencoder.decoder.requires_grad_(config.finetune_decoder)
    pipeline = ProbePipeline(autoencoder, classifier).to(device)
    autocast = autocast_for(device)
    objective = ClassifierObjective(pipeline, val_x, val_labels, config.micro, autocast, spec.penalty,
                                    config.penalty or 0.0, config.per_class, task, data_classes)
    train_y = task.targets(train_labels, lambda: batched_logits(classifier, train_x, config.micro, autocast))
    decisions = task.decisions(objective.val_y)
    labels = decisions if config.per_class else None

    if dist.is_main:
        for note in selected_here:
            print(f"probe finetune: warning: {note}", file=sys.stderr, flush=True)
    if not is_resuming(run, resume) and dist.is_main:
        start_fresh(run, config, {"classifier_weights": classifier_weights, "ae_weights": ae_weights,
                                  **({"classifier_source": classifier.source_file} if classifier.source_file else {})})
        save_outputs(run, BEFORE, pipeline, val_x, val.clip_ids, config.micro, autocast, labels)
        save_array(run.originals_file, val_x.cpu().numpy())
        save_array(run.targets_file, decisions.cpu().numpy())
        write_json(run.clip_groups_file, [c.group or c.clip_id for c in val.clips])
        save_array(run.logits_file(ORIGINAL), objective.bare_logits.cpu().numpy())
        write_json(run.objective_file, {"objective": config.objective_name(), "probe": spec.name,
                                        "autoencoder": config.autoencoder, "penalty": config.penalty,
                                        "per_class": config.per_class, "control": spec.control,
                                        "targets": "labels" if task.needs_labels else "decisions",
                                        "label_mark": config.objective if task.marks_runs else "",
                                        "multi_label": classifier.multi_label,
                                        **({"classifier_untrained": classifier.untrained} if classifier.untrained else {}),
                                        "ae_sample_rate": int(getattr(autoencoder, "sample_rate", 0) or classifier.sample_rate),
                                        **(spec.record(autoencoder) if spec.record else {})})
        category_names, class_categories = ((dataset.category_names, dataset.class_categories) if data_classes
                                            else categories_of(classifier.class_names, getattr(dataset, "root", None)))
        write_json(run.classes_file, {"class_names": list(classifier.class_names), "category_names": list(category_names),
                                      "class_categories": list(class_categories), "sample_rate": classifier.sample_rate})
    dist.barrier()

    result = train_loop(config, run, autoencoder, objective, train_x, train_y, device, resume, dist,
                        clip_names=train.clip_ids)
    if not result.finished(config) or not dist.is_main:
        return run
    save_outputs(run, AFTER, pipeline, val_x, val.clip_ids, config.micro, autocast, labels)
    for name, curve in (spec.save_curves(autoencoder) if spec.save_curves else {}).items():
        save_array(run.curve_file(name), curve)
    leak = "; ".join(filter(None, [suspected_leak(classifier_folds, objective.bare_accuracy), *selected_here]))
    best = f"best_{task.score_key(classifier.multi_label)}"
    run.mark_done({"epochs": config.epochs, "steps": result.step, best: result.best_score if result.step else None,
                   "analysed": "last epoch",  # its outputs: best.pt is chosen on the validation clips the analyses read
                   "bare_classifier_accuracy": objective.bare_accuracy, "skipped_files": train.skipped + val.skipped,
                   **({"nonfinite_grad_entries": result.nonfinite_grad_entries} if config.zero_nonfinite_grads else {}),
                   **({"possible_leakage": leak} if leak else {})})
    return run


SIZED: set[tuple[str, int]] = set()
"""The (data, analysed fold) pairs whose sizing this process has said: a grid or replicates say it once."""


def say_sizing(config: FinetuneConfig, dataset) -> None:
    """What the data's analysed fold can show (`probe.sizing`), before the first run on it trains: the counts as a
    progress line, the words out of reach as warnings."""
    if (config.data, config.fold) in SIZED:
        return
    SIZED.add((config.data, config.fold))
    say = Progress(config.progress, prefix="probe finetune: ")
    for line in size_dataset(dataset, config.fold).lines():
        if line.startswith("warning: "):
            print(f"probe finetune: {line}", file=sys.stderr, flush=True)
        else:
            say(line)


def _load_probe(config: FinetuneConfig, weights: Path | None, num_classes: int, device: torch.device) -> torch.nn.Module:
    """The autoencoder (or probe) to finetune; with `per_class`, one built with a curve per class."""
    options = {**config.ae_options, **({"classes": num_classes} if config.per_class else {})}
    try:
        return load_autoencoder(config.autoencoder, weights, device=device, **options)
    except TypeError as exc:  # a builder without one of the options
        raise ConfigError(None, f"{config.autoencoder}: {exc}") from None


def finetune_folds(config: FinetuneConfig, folds: list[int], resume: bool = False, jobs: int = 1) -> list[RunDir]:
    """Cross-validation: one run per validation fold, in `<out>/fold-K`, `jobs` at a time; complete folds are skipped.
    Every fold's leakage is checked before any run starts."""
    from probe.train.loop import fold_configs

    check_cells(fold_configs(config, folds))
    return run_folds(finetune, config, folds, resume, jobs)


def with_replicates(cells: list[FinetuneConfig], count: int) -> list[FinetuneConfig]:
    """Each cell as `count` replicates that differ only in their seed (seed, seed + 1, ...), in CELL/rep-k; one: the
    cells as they are."""
    if count < 1:
        raise ConfigError(None, f"--replicates takes a count of at least 1, got {count}")
    if count == 1:
        return list(cells)
    return [replace(cell, seed=cell.seed + k, replicate=k + 1, out=str(Path(cell.out) / f"rep-{k + 1}"))
            for cell in cells for k in range(count)]


def finetune_replicates(config: FinetuneConfig, count: int, folds: list[int] | None = None, resume: bool = False,
                        jobs: int = 1) -> list[RunDir]:
    """One run (or one per fold) as `count` replicates, `jobs` at a time: the unit the answer's words rest on."""
    from probe.train.cells import cell_names, claim_runs, run_cells
    from probe.train.loop import fold_configs

    cells = with_replicates(fold_configs(config, folds) if folds else [config], count)
    check_cells(cells)
    claim_runs(config.out, cells)
    say = Progress(config.progress, prefix="probe finetune: ")
    say(f"{len(cells)} run(s): " + ", ".join(cell_names(cells)) + (f"; {min(jobs, len(cells))} at a time" if jobs > 1 else ""))
    return run_cells(finetune, cells, resume, jobs, None, say, cost=expected_cost)


def check_cells(cells: list[FinetuneConfig]) -> None:
    """Refuse a grid or cross-validation where any cell would leak, before any cell runs; warn once about a
    checkpoint of unknown folds that serves several validation folds."""
    filled = [with_fold(cell) for cell in cells]
    for cell in filled:
        cell.refuse_untrained()
        refuse_leaks(cell)
    warn_shared(filled, lambda text: print(f"probe finetune: {text}", file=sys.stderr, flush=True))


@dataclass(frozen=True)
class GridEntry:
    """One axis value of a grid: a model name with optional weights (`--grid` writes NAME[@WEIGHTS]), and optionally
    the label analyses and reports give it and further config fields for its cells."""

    name: str
    weights: str | None = None
    label: str | None = None
    """How analyses and reports name it (classifier_label / setting_label); default: from the config."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Further FinetuneConfig fields for its cells (a probe setting's probe type, penalty, learning rate, ...)."""

    @classmethod
    def parse(cls, text: str) -> "GridEntry":
        name, _, weights = text.partition("@")
        if not name:
            raise ConfigError(None, f"empty model name in grid entry {text!r}")
        return cls(name, weights or None)

    @property
    def folder(self) -> str:
        """A folder-safe name: the label, else the model name plus the weights' stem when given. A `{fold}` template
        is named by what it holds per fold (`runs/pre/fold-{fold}/best.pt`: pre; `passt_esc50_fold{fold}`:
        passt_esc50), since the cell's folds are its subfolders."""
        if self.label:
            return safe_name(self.label)
        if "{fold}" in self.name:
            return safe_name(_template_stem(self.name))
        if not self.weights:
            return safe_name(self.name)
        if "{fold}" not in self.weights:
            return safe_name(f"{self.name}@{Path(self.weights).stem}")
        stem = _template_stem(self.weights)
        return safe_name(self.name if stem == self.name else f"{self.name}@{stem}")


def _template_stem(template: str) -> str:
    """The telling part of a per-fold checkpoint template: its last path part that is neither the fold nor a
    run's generic best.pt/latest.pt."""
    import re

    parts = [re.sub(r"[_-]?fold[_-]?\{fold\}|\{fold\}", "", Path(part).stem if i == 0 else part)
             for i, part in enumerate(reversed(Path(template).parts))]
    return next((part for part in parts if part and part not in ("best", "latest")), "fold")


GRID_AXES = ("classifier", "autoencoder")
DEPRECATED_GRID_AXES = {"classifiers": "classifier", "autoencoders": "autoencoder"}
"""Old spellings of the axes: they still work for one release, with a note."""


def parse_grid(items: list[str]) -> dict[str, list[GridEntry]]:
    """`["classifier=mn10@W,dymn10@W", "autoencoder=archisound,random"]` -> entries per axis."""
    grid: dict[str, list[GridEntry]] = {}
    for item in items:
        axis, sep, values = item.partition("=")
        if axis in DEPRECATED_GRID_AXES:
            print(f"probe: --grid {axis}= is deprecated and goes in the next release; use {DEPRECATED_GRID_AXES[axis]}=",
                  file=sys.stderr)
            axis = DEPRECATED_GRID_AXES[axis]
        if not sep or axis not in GRID_AXES or not values:
            raise ConfigError(None, f"grid items look like classifier=mn10,dymn10 or autoencoder=archisound,random; got {item!r}")
        grid[axis] = [GridEntry.parse(v) for v in values.split(",") if v]
    return grid


def grid_cell(config: FinetuneConfig, classifier: GridEntry, setting: GridEntry) -> FinetuneConfig:
    """The run of one grid cell, in OUT/CLASSIFIER--SETTING."""
    return replace(config, classifier=classifier.name, classifier_weights=classifier.weights,
                   classifier_label=classifier.label or config.classifier_label,
                   autoencoder=setting.name, ae_weights=setting.weights,
                   setting_label=setting.label or config.setting_label or _fold_free(setting),
                   out=str(Path(config.out) / f"{classifier.folder}--{setting.folder}"),
                   **{**classifier.overrides, **setting.overrides})


def _fold_free(entry: GridEntry) -> str | None:
    """A per-fold template's name for every fold (its folder), so that a setting's folds share one label; None for
    an entry without a template (its label comes from the model, as for a single run)."""
    return entry.folder if "{fold}" in entry.name + (entry.weights or "") else None


def grid_cells(config: FinetuneConfig, grid: dict[str, list[GridEntry]],
               folds: list[int] | None = None) -> list[FinetuneConfig]:
    """The grid's runs: one (or one per fold) per classifier and probe setting, in OUT/CLASSIFIER--SETTING[/fold-K]."""
    from probe.train.loop import fold_configs

    unknown = set(grid) - set(GRID_AXES)
    if unknown:
        raise ConfigError(None, f"unknown grid axis {sorted(unknown)[0]!r}; the axes are {', '.join(GRID_AXES)}")
    classifiers = grid.get("classifier", [GridEntry(config.classifier, config.classifier_weights)])
    settings = grid.get("autoencoder", [GridEntry(config.autoencoder, config.ae_weights)])
    names = [entry.name for entry in classifiers]  # two checkpoints of one model: named by their folders
    classifiers = [replace(entry, label=entry.label or entry.folder) if names.count(entry.name) > 1 else entry
                   for entry in classifiers]
    cells = []
    for classifier in classifiers:
        for setting in settings:
            cell = grid_cell(config, classifier, setting)
            cells += fold_configs(cell, folds) if folds else [cell]
    return cells


def finetune_grid(config: FinetuneConfig, grid: dict[str, list[GridEntry]], folds: list[int] | None = None,
                  resume: bool = False, jobs: int = 1, threads: int | None = None, replicates: int = 1) -> list[RunDir]:
    """The study's grid (`grid_cells`), `jobs` runs at a time in worker processes, with `threads` torch threads each
    (`probe.train.cells.run_cells`)."""
    from probe.train.cells import cell_names, claim_runs, run_cells

    cells = with_replicates(grid_cells(config, grid, folds), replicates)
    say = Progress(config.progress, prefix="probe finetune: ")
    check_cells(cells)
    claim_runs(config.out, cells)
    say(f"{len(cells)} run(s): " + ", ".join(cell_names(cells)) + (f"; {min(jobs, len(cells))} at a time" if jobs > 1 else ""))
    return run_cells(finetune, cells, resume, jobs, threads, say, cost=expected_cost)


def expected_cost(config: FinetuneConfig) -> float:
    """A rough relative cost of a run, to start the long ones first: epochs, a tenth as much for a probe type with
    a small model of its own (the spectral gain) than for an autoencoder; nothing for a control."""
    config = config.resolved()  # a cell's epochs may be its probe type's default, filled in here
    spec = config.probe_spec
    return 0.0 if spec.control else config.epochs * (0.1 if spec.model is not None else 1.0)


@torch.no_grad()
def save_outputs(run: RunDir, label: str, pipeline: ProbePipeline, x: torch.Tensor, clip_ids: list[str], micro: int,
                 autocast: dict, labels: torch.Tensor | None = None) -> None:
    """Store the validation reconstructions and logits, so the analyses never re-run the autoencoder."""
    pipeline.eval()
    reconstructions, logits = [], []
    label_chunks = labels.split(micro) if labels is not None else [None] * len(x.split(micro))
    for chunk, chunk_labels in zip(x.split(micro), label_chunks):
        with torch.autocast(**autocast):
            chunk_logits, reconstruction = pipeline.forward_with_reconstruction(chunk, chunk_labels)
        logits.append(chunk_logits.float().cpu())
        reconstructions.append(reconstruction.float().cpu())
    run.outputs.mkdir(parents=True, exist_ok=True)
    save_array(run.reconstructions_file(label), torch.cat(reconstructions).numpy())
    save_array(run.logits_file(label), torch.cat(logits).numpy())
    write_json(run.clip_ids_file, clip_ids)


@dataclass(frozen=True)
class StepTiming:
    """One training step of a run timed on this device: seconds per step and per validation clip, and the counts
    that scale them to the whole run."""

    device: str
    step_s: float
    val_clip_s: float
    steps_per_epoch: int
    val_clips: int
    epochs: int
    sizing: Sizing
    """What the data the step was timed on can show (read from the same load)."""

    @property
    def run_s(self) -> float:
        return self.epochs * (self.steps_per_epoch * self.step_s + 2 * self.val_clips * self.val_clip_s)


def time_one_step(config: FinetuneConfig) -> StepTiming:
    """Time one optimiser step of `config`'s run (its classifier, probe, batch and clip length, on its device) on its
    first training clips (a second step where the first was short: mostly set-up), without writing anything: for
    `probe finetune --dry-run`.
    A validation pass is counted as two forward passes over the validation clips (before and after), each clip at a
    third of a training step's per-clip cost (a forward without the backward)."""
    import tempfile
    import time

    from probe.cache import decode_split
    from probe.data import load_dataset
    from probe.devices import pick_device

    config = with_fold(config).resolved()
    device = pick_device(config.device)
    task = OBJECTIVES.lookup(config.objective)
    with tempfile.TemporaryDirectory(prefix="probe-dry-run-") as scratch:
        dataset = load_dataset(config.data, synthetic_root=Path(scratch) / "data")
        train_set, val_set = dataset.split(config.fold)
        if not len(train_set):
            raise ConfigError(dataset.root, f"no training clips outside fold {config.fold}")
        classifier = load_classifier(
            config.classifier, resolve_weights(config.classifier_weights) if config.classifier_weights else None,
            config.num_classes or (dataset.num_classes if task.needs_labels else None),
            class_names=list(dataset.class_names) if task.needs_labels else None, device=device,
            **config.classifier_options)
        batch = replace(train_set, clips=train_set.clips[:config.batch_size])
        decoded = decode_split(batch, classifier.sample_rate, clip_seconds=config.clip_seconds,
                               cache_dir=Path(scratch) / "cache", progress=False)
    x, labels = decoded.tensors(device)
    autoencoder = _load_probe(config, config.resolved_ae_weights(), classifier.num_classes, device)
    pipeline = ProbePipeline(autoencoder, classifier).to(device)
    autocast = autocast_for(device)
    micro = config.micro
    objective = ClassifierObjective(pipeline, x, labels, micro, autocast, config.probe_spec.penalty,
                                    config.penalty or 0.0, config.per_class, task, dataset.labelled)
    y = objective.val_y
    trainable = [p for p in autoencoder.parameters() if p.requires_grad]

    def step() -> float:
        started = time.perf_counter()
        pipeline.train()
        for chunk in torch.arange(len(x)).split(micro):
            with torch.autocast(**autocast):
                loss = objective.loss(pipeline, x[chunk], y[chunk])
            if trainable:
                loss.backward()
        for parameter in trainable:
            parameter.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    step_s = step()
    if step_s < 2.0:  # a short step is mostly its first call's set-up: time a second one (a long one is not)
        step_s = step()
    steps = max(1, math.ceil(len(train_set) / config.batch_size))
    return StepTiming(str(device), step_s * config.batch_size / len(x), step_s / len(x) / 3, steps, len(val_set),
                      config.epochs, size_dataset(dataset, config.fold))
