"""`probe finetune`: train an autoencoder in front of a frozen classifier on the classifier's loss.

Only the autoencoder learns (Palacio et al., CVPR 2018); the defaults are the audio study's:
AdamW, lr 3e-5, weight decay 1e-5, effective batch 4, 100 epochs, cosine schedule. The run
directory stores the validation reconstructions before and after, so the analyses never
re-run the models.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probe.download import resolve_weights
from probe.errors import ConfigError
from probe.fileio import safe_name
from probe.models.autoencoders import load_autoencoder
from probe.models.classifiers import load_classifier
from probe.pipeline import ProbePipeline
from probe.rundir import RunDir
from probe.train.loop import (TrainingConfig, autocast_for, batched_logits, is_resuming, open_run, run_folds, save_array,
                              start_fresh, train_loop)


@dataclass(frozen=True)
class FinetuneConfig(TrainingConfig):
    """A finetuning run: the shared training settings plus the frozen classifier."""

    classifier: str = "mn10"
    classifier_weights: str | None = None
    classifier_options: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/finetune"
    finetune_encoder: bool = True
    finetune_decoder: bool = True
    classifier_label: str | None = None
    """How analyses and reports name the classifier (default: its registry name); e.g. two mn10 checkpoints."""
    setting_label: str | None = None
    """How analyses and reports name the probe setting (default: the AE's name, plus the penalty if any)."""
    energy_penalty: float = 0.0
    """Add this times mean(y^2) / mean(x^2) (reconstruction over input energy) to the loss; 0 is the study's method."""
    gain_penalty: float = 0.0
    """Add this times the mean linear gain of a spectral-gain probe to the loss (its "preservation game")."""
    per_class: bool = False
    """One probe per class (the spectral gain), each trained on its own class's clips and applied by label."""

    min_epochs = 0  # 0 epochs: evaluate an AE behind the classifier and store the outputs, untrained

    def validate(self) -> None:
        super().validate()
        if not (self.finetune_encoder or self.finetune_decoder):
            raise ConfigError(None, "nothing to train: both the encoder and the decoder are frozen")
        if self.energy_penalty < 0 or self.gain_penalty < 0:
            raise ConfigError(None, "penalty weights must be >= 0")

    def objective_name(self) -> str:
        """How the report names what this run optimised."""
        if not self.epochs:
            return "none: not trained (a control, or an AE evaluated as it is)"
        terms = ["cross-entropy"]
        if self.energy_penalty:
            terms.append(f"{self.energy_penalty:g} x relative energy")
        if self.gain_penalty:
            terms.append(f"{self.gain_penalty:g} x mean gain")
        return " + ".join(terms) + (", one probe per class" if self.per_class else "")


class ClassifierObjective:
    """Cross-entropy of the frozen classifier on the reconstruction, plus optional parsimony terms; best.pt by val accuracy."""

    def __init__(self, pipeline: ProbePipeline, val_x: torch.Tensor, val_y: torch.Tensor, micro: int,
                 autocast: dict[str, Any], energy_penalty: float = 0.0, gain_penalty: float = 0.0) -> None:
        self.module, self.val_x, self.val_y, self.micro, self.autocast = pipeline, val_x, val_y, micro, autocast
        self.energy_penalty, self.gain_penalty = energy_penalty, gain_penalty
        if gain_penalty and not hasattr(pipeline.autoencoder, "mean_linear_gain"):
            raise ConfigError(None, "--gain-penalty needs a gain probe (--probe spectral-gain)")
        self.conditional = bool(getattr(pipeline.autoencoder, "conditional", False))
        self.bare_logits = batched_logits(pipeline.classifier, val_x, micro, autocast)
        self.bare_accuracy = accuracy(self.bare_logits, val_y)

    def loss(self, module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        labels = y if self.conditional else None
        if not self.energy_penalty:
            loss = torch.nn.functional.cross_entropy(module(x, labels=labels), y)
        else:
            logits, reconstruction = module(x, with_reconstruction=True, labels=labels)
            relative_energy = reconstruction.float().pow(2).mean() / x.float().pow(2).mean().clamp_min(1e-12)
            loss = torch.nn.functional.cross_entropy(logits, y) + self.energy_penalty * relative_energy
        if self.gain_penalty:
            loss = loss + self.gain_penalty * self.module.autoencoder.mean_linear_gain(labels)
        return loss

    def evaluate(self) -> tuple[dict[str, float], float]:
        logits = batched_logits(self.module, self.val_x, self.micro, self.autocast, self.val_y if self.conditional else None)
        val_accuracy = accuracy(logits, self.val_y)
        metrics = {"val_loss": float(torch.nn.functional.cross_entropy(logits, self.val_y)), "val_accuracy": val_accuracy,
                   "val_accuracy_bare_classifier": self.bare_accuracy}
        return metrics, val_accuracy


def finetune(config: FinetuneConfig, resume: bool = False) -> RunDir:
    """Run (or resume) one finetuning run; returns its run directory."""
    opened = open_run(config, resume)
    run, dist, device = opened.run, opened.dist, opened.device
    if run.is_complete():
        return run
    dataset, train_set, val_set = opened.splits(config)
    classifier_weights = resolve_weights(config.classifier_weights) if config.classifier_weights else None
    ae_weights = config.resolved_ae_weights()
    classifier = load_classifier(
        config.classifier, classifier_weights, dataset.num_classes, class_names=list(dataset.class_names),
        device=device, **config.classifier_options,
    )
    train, val = opened.decode(config, (train_set, val_set), classifier.sample_rate)
    (train_x, train_y), (val_x, val_y) = train.tensors(device), val.tensors(device)

    autoencoder = _load_probe(config, ae_weights, dataset.num_classes, device)
    labels = val_y if config.per_class else None
    if not (config.finetune_encoder and config.finetune_decoder):
        if not hasattr(autoencoder, "encoder"):
            raise ConfigError(None, f"{config.autoencoder} has no encoder and decoder to freeze")
        autoencoder.encoder.requires_grad_(config.finetune_encoder)
        autoencoder.decoder.requires_grad_(config.finetune_decoder)
    pipeline = ProbePipeline(autoencoder, classifier).to(device)
    autocast = autocast_for(device)
    objective = ClassifierObjective(pipeline, val_x, val_y, config.micro, autocast, config.energy_penalty,
                                    config.gain_penalty)

    if not is_resuming(run, resume) and dist.is_main:
        start_fresh(run, config, {"classifier_weights": classifier_weights, "ae_weights": ae_weights})
        save_outputs(run, "before", pipeline, val_x, val.clip_ids, config.micro, autocast, labels)
        save_array(run.outputs / "originals.npy", val_x.cpu().numpy())
        save_array(run.outputs / "targets.npy", val.targets)
        save_array(run.outputs / "logits_original.npy", objective.bare_logits.cpu().numpy())
        from probe.fileio import write_json

        write_json(run.outputs / "objective.json", {"objective": config.objective_name(), "autoencoder": config.autoencoder,
                                                    "energy_penalty": config.energy_penalty, "gain_penalty": config.gain_penalty,
                                                    "per_class": config.per_class,
                                                    "gain_floor_db": getattr(autoencoder, "floor_db", None)})
        write_json(run.outputs / "classes.json", {"class_names": list(dataset.class_names),
                                                  "category_names": list(dataset.category_names),
                                                  "class_categories": list(dataset.class_categories),
                                                  "sample_rate": classifier.sample_rate})
    dist.barrier()

    result = train_loop(config, run, autoencoder, objective, train_x, train_y, device, resume, dist)
    if not result.finished(config) or not dist.is_main:
        return run
    save_outputs(run, "after", pipeline, val_x, val.clip_ids, config.micro, autocast, labels)
    if hasattr(autoencoder, "gain_db"):
        with torch.no_grad():
            gain = autoencoder.gain_db().cpu().numpy()
        if gain.ndim == 2:  # per class: the curves, and their mean as the classifier's curve
            save_array(run.outputs / "gain_db_per_class.npy", gain)
            gain = gain.mean(0)
        save_array(run.outputs / "gain_db.npy", np.stack([autoencoder.frequencies_hz().numpy(), gain]))
    run.mark_done({"epochs": config.epochs, "steps": result.step, "best_val_accuracy": result.best_score if result.step else None,
                   "bare_classifier_accuracy": objective.bare_accuracy, "skipped_files": train.skipped + val.skipped})
    return run


def _load_probe(config: FinetuneConfig, weights: Path | None, num_classes: int, device: torch.device) -> torch.nn.Module:
    """The autoencoder (or probe) to finetune; with `per_class`, one built with a curve per class."""
    options = {**config.ae_options, **({"classes": num_classes} if config.per_class else {})}
    per_class_error = ConfigError(None, f"--per-class needs a probe with one curve per class (--probe spectral-gain), "
                                        f"not {config.autoencoder}")
    try:
        autoencoder = load_autoencoder(config.autoencoder, weights, device=device, **options)
    except TypeError as exc:  # a builder without one of the options
        raise per_class_error if config.per_class else ConfigError(None, f"{config.autoencoder}: {exc}") from None
    if config.per_class and not getattr(autoencoder, "conditional", False):
        raise per_class_error
    return autoencoder


def finetune_folds(config: FinetuneConfig, folds: list[int], resume: bool = False) -> list[RunDir]:
    """Cross-validation: one run per validation fold, in `<out>/fold-K`; complete folds are skipped."""
    return run_folds(finetune, config, folds, resume)


@dataclass(frozen=True)
class GridEntry:
    """One axis value of `--grid`: a model name with optional weights, written NAME[@WEIGHTS]."""

    name: str
    weights: str | None = None

    @classmethod
    def parse(cls, text: str) -> "GridEntry":
        name, _, weights = text.partition("@")
        if not name:
            raise ConfigError(None, f"empty model name in grid entry {text!r}")
        return cls(name, weights or None)

    @property
    def label(self) -> str:
        """A folder-safe name: the model name, plus the weights' stem when given."""
        return safe_name(self.name if not self.weights else f"{self.name}@{Path(self.weights).stem}")


GRID_AXES = ("classifiers", "autoencoder")


def parse_grid(items: list[str]) -> dict[str, list[GridEntry]]:
    """`["classifiers=mn10@W,dymn10@W", "autoencoder=archisound,random"]` -> entries per axis."""
    grid: dict[str, list[GridEntry]] = {}
    for item in items:
        axis, sep, values = item.partition("=")
        axis = {"classifier": "classifiers", "autoencoders": "autoencoder"}.get(axis, axis)
        if not sep or axis not in GRID_AXES or not values:
            raise ConfigError(None, f"grid items look like classifiers=mn10,dymn10 or autoencoder=archisound,random; got {item!r}")
        grid[axis] = [GridEntry.parse(v) for v in values.split(",") if v]
    return grid


def finetune_grid(config: FinetuneConfig, grid: dict[str, list[GridEntry]], folds: list[int] | None = None,
                  resume: bool = False) -> list[RunDir]:
    """The study's grid: one run (or one per fold) per classifier and AE setting, in OUT/CLASSIFIER--AE."""
    classifiers = grid.get("classifiers", [GridEntry(config.classifier, config.classifier_weights)])
    autoencoders = grid.get("autoencoder", [GridEntry(config.autoencoder, config.ae_weights)])
    runs = []
    for classifier in classifiers:
        for autoencoder in autoencoders:
            cell = replace(config, classifier=classifier.name, classifier_weights=classifier.weights,
                           autoencoder=autoencoder.name, ae_weights=autoencoder.weights,
                           out=str(Path(config.out) / f"{classifier.label}--{autoencoder.label}"))
            if config.progress:
                print(f"probe finetune: grid cell {classifier.label} x {autoencoder.label} -> {cell.out}", flush=True)
            runs += finetune_folds(cell, folds, resume) if folds else [finetune(cell, resume)]
    return runs


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())


@torch.no_grad()
def save_outputs(run: RunDir, label: str, pipeline: ProbePipeline, x: torch.Tensor, clip_ids: list[str], micro: int,
                 autocast: dict, labels: torch.Tensor | None = None) -> None:
    """Store the validation reconstructions and logits, so the analyses never re-run the autoencoder."""
    from probe.fileio import write_json

    pipeline.eval()
    reconstructions, logits = [], []
    label_chunks = labels.split(micro) if labels is not None else [None] * len(x.split(micro))
    for chunk, chunk_labels in zip(x.split(micro), label_chunks):
        with torch.autocast(**autocast):
            chunk_logits, reconstruction = pipeline.forward_with_reconstruction(chunk, chunk_labels)
        logits.append(chunk_logits.float().cpu())
        reconstructions.append(reconstruction.float().cpu())
    run.outputs.mkdir(parents=True, exist_ok=True)
    save_array(run.outputs / f"reconstructions_{label}.npy", torch.cat(reconstructions).numpy())
    save_array(run.outputs / f"logits_{label}.npy", torch.cat(logits).numpy())
    write_json(run.outputs / "clip_ids.json", clip_ids)
