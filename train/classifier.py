"""`probe train-classifier`: the classifiers the study probes, from AudioSet weights to ESC-50.

EfficientAT publishes AudioSet weights only; the study's ESC-50 mn10/dymn10 were trained with its
ESC-50 recipe, which the defaults follow: 80 epochs, lr 6e-5 (dymn10: 4e-5), warm-up then a linear
ramp down, mixup 0.3, random gain of +-12 dB, random time roll, and the mel front-end in train mode
(its fmin/fmax jitter). Run directory, checkpoints and exact resume are the finetuning loop's.
`RUNDIR/best.pt` loads with `load_classifier(NAME, weights=RUNDIR/best.pt)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from probe.download import resolve_weights
from probe.errors import ConfigError
from probe.folds import refuse_leak, with_fold
from probe.models.base import WaveformClassifier
from probe.models.classifiers import load_classifier
from probe.models.registry import CLASSIFIERS
from probe.rundir import RunDir
from probe.train.config import ClassifierTrainConfig
from probe.train.objectives import classification_metrics
from probe.train.loop import (Objective, autocast_for, batched_logits, is_resuming, open_run, releasing_run, save_array,
                              start_fresh, train_loop)

class AugmentedClassification(Objective):
    """Cross-entropy under random gain, time roll and mixup; best.pt by validation accuracy."""

    def __init__(self, classifier: WaveformClassifier, val_x: torch.Tensor, val_y: torch.Tensor,
                 config: ClassifierTrainConfig, autocast: dict[str, Any]) -> None:
        self.module, self.val_x, self.val_y, self.config, self.autocast = classifier, val_x, val_y, config, autocast
        self.generator = torch.Generator().manual_seed(config.seed)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def _uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        if self.config.gain_db:
            gain_db = (self._uniform(n, 1) * 2 - 1) * self.config.gain_db
            x = x * (10 ** (gain_db / 20)).to(x.device)
        if self.config.roll:
            shifts = (self._uniform(n) * x.shape[-1]).long().tolist()
            x = torch.stack([torch.roll(clip, shift) for clip, shift in zip(x, shifts)])
        if not self.config.mixup_alpha or n < 2:
            return nn.functional.cross_entropy(module(x), y)
        lam = float(np.random.default_rng(int(self._uniform(1).item() * 2**31)).beta(self.config.mixup_alpha,
                                                                                       self.config.mixup_alpha))
        partner = torch.randperm(n, generator=self.generator).to(x.device)
        logits = module(lam * x + (1 - lam) * x[partner])
        return lam * nn.functional.cross_entropy(logits, y) + (1 - lam) * nn.functional.cross_entropy(logits, y[partner])

    def evaluate(self) -> tuple[dict[str, float], float]:
        return classification_metrics(batched_logits(self.module, self.val_x, self.config.micro, self.autocast), self.val_y)


class NoisyClassification(Objective):
    """Cross-entropy under additive white noise at a random SNR per clip, drawn afresh for every batch; best.pt by
    validation accuracy. The noise keeps a classifier from hinging on silence in bands it does not use, which a
    probe in front of it would otherwise disturb.

    `generator` may be the training loop's shuffle generator (pass the same one to `fit_classifier`), so that one
    seed fixes the order and the noise together.
    """

    def __init__(self, classifier: WaveformClassifier, val_x: torch.Tensor, val_y: torch.Tensor, micro: int,
                 autocast: dict[str, Any], generator: torch.Generator, snr_db: tuple[float, float] = (20.0, 55.0)) -> None:
        self.module, self.val_x, self.val_y, self.micro, self.autocast = classifier, val_x, val_y, micro, autocast
        self.generator, self.snr_db = generator, snr_db

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        low, high = self.snr_db
        snr_db = low + (high - low) * torch.rand(len(x), 1, generator=self.generator)
        noise_rms = x.pow(2).mean(-1, keepdim=True).sqrt() * 10 ** (-snr_db.to(x.device) / 20)
        x = x + noise_rms * torch.randn(x.shape, generator=self.generator).to(x.device)
        return nn.functional.cross_entropy(module(x), y)

    def evaluate(self) -> tuple[dict[str, float], float]:
        return classification_metrics(batched_logits(self.module, self.val_x, self.micro, self.autocast), self.val_y)


@releasing_run
def fit_classifier(config: ClassifierTrainConfig, build: Callable[[], WaveformClassifier],
                   objective: Callable[[WaveformClassifier], Any], train_x: torch.Tensor, train_y: torch.Tensor,
                   shuffle: torch.Generator | None = None, resume: bool = False) -> WaveformClassifier:
    """Train a classifier on clips already in memory (rendered, not read from a dataset) through the shared loop.

    `build()` makes the classifier after the run is seeded; `objective(classifier)` makes what it optimises. The
    run directory (`config.out`) holds metrics, latest.pt and best.pt; the returned classifier holds the last
    epoch's weights.
    """
    config = config.resolved()
    opened = open_run(config, resume)
    classifier = build().to(opened.device)
    classifier.untrained = None  # this run trains it
    if not is_resuming(opened.run, resume):
        start_fresh(opened.run, config, {})
    result = train_loop(config, opened.run, classifier, objective(classifier), train_x.to(opened.device),
                        train_y.to(opened.device), opened.device, resume, opened.dist, shuffle=shuffle)
    if result.finished(config):
        opened.run.mark_done({"epochs": config.epochs, "steps": result.step, "best_val_accuracy": result.best_score})
    return classifier.train(False)


def initial_weights(config: ClassifierTrainConfig) -> Path | None:
    """Where the classifier starts: the published AudioSet checkpoint, nothing, or a given file."""
    if config.init == "none":
        return None
    if config.init == "audioset":
        spec = CLASSIFIERS.ensure_loaded().get(config.classifier)
        if spec is None or spec.audioset_weights is None:
            raise ConfigError(None, f"no AudioSet weights for {config.classifier!r}; use --classifier-weights none or a checkpoint path")
        return resolve_weights(spec.audioset_weights)
    return resolve_weights(config.init)


@releasing_run
def train_classifier(config: ClassifierTrainConfig, resume: bool = False) -> RunDir:
    """Run (or resume) classifier training; `RUNDIR/best.pt` is the best epoch's classifier, and RUNDIR/folds.json
    says which folds it learned from. Refused when the starting checkpoint learned from the validation fold."""
    config = with_fold(config).resolved()
    if config.init not in ("audioset", "none"):
        refuse_leak("starting checkpoint", config.init, config.data, config.fold)
    opened = open_run(config, resume)
    run, dist, device = opened.run, opened.dist, opened.device
    if run.is_complete():
        return run
    dataset, train_set, val_set = opened.splits(config)
    weights = initial_weights(config)
    classifier = load_classifier(config.classifier, weights, dataset.num_classes, class_names=list(dataset.class_names),
                                 frozen=False, device=device, **config.classifier_options)
    classifier.untrained = None  # this run trains it (at least one epoch)
    train, val = opened.decode(config, (train_set, val_set), classifier.sample_rate)
    (train_x, train_y), (val_x, val_y) = train.tensors(device), val.tensors(device)
    autocast = autocast_for(device)
    objective = AugmentedClassification(classifier, val_x, val_y, config, autocast)
    if not is_resuming(run, resume) and dist.is_main:
        start_fresh(run, config, {"init_weights": weights})
    dist.barrier()
    result = train_loop(config, run, classifier, objective, train_x, train_y, device, resume, dist,
                        clip_names=train.clip_ids)
    if result.finished(config) and dist.is_main:
        run.outputs.mkdir(parents=True, exist_ok=True)
        save_array(run.val_logits_file, batched_logits(classifier, val_x, config.micro, autocast).cpu().numpy())
        run.mark_done({"epochs": config.epochs, "steps": result.step, "best_val_accuracy": result.best_score,
                       "classifier_checkpoint": str(run.best), "skipped_files": train.skipped + val.skipped})
    return run
