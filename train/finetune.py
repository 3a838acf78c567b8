"""`probe finetune`: train an autoencoder in front of a frozen classifier on the classifier's loss.

Read top to bottom: config, data, models, optimiser, resume, the epoch loop, outputs.
Only the autoencoder learns (Palacio et al., CVPR 2018); the defaults are the audio study's:
AdamW, lr 3e-5, weight decay 1e-5, effective batch 4, 100 epochs, cosine schedule.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probe.cache import decode_split
from probe.data import load_dataset
from probe.download import resolve_weights
from probe.errors import ConfigError
from probe.models.autoencoders import load_autoencoder
from probe.models.classifiers import load_classifier
from probe.pipeline import ProbePipeline
from probe.rundir import RunDir
from probe.train.schedulers import SCHEDULERS


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines a finetuning run; written to RUNDIR/config.json."""

    classifier: str = "mn10"
    classifier_weights: str | None = None
    classifier_options: dict[str, Any] = field(default_factory=dict)
    autoencoder: str = "archisound"
    ae_weights: str | None = None
    ae_options: dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    fold: int = 1
    out: str = "runs/finetune"
    epochs: int = 100
    learning_rate: float = 3e-5
    weight_decay: float = 1e-5
    batch_size: int = 4
    """The effective batch: micro-batches are accumulated up to it."""
    micro_batch_size: int | None = None
    scheduler: str = "cosine"
    finetune_encoder: bool = True
    finetune_decoder: bool = True
    seed: int = 0
    device: str = "auto"
    clip_seconds: float | None = None
    stop_after_epochs: int | None = None
    """Stop (resumably) after this many epochs in this invocation; for time-sliced jobs and tests."""
    progress: bool = True

    def validate(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(None, f"unknown scheduler {self.scheduler!r}; known: {', '.join(SCHEDULERS)}")
        if not (self.finetune_encoder or self.finetune_decoder):
            raise ConfigError(None, "nothing to train: both the encoder and the decoder are frozen")
        micro = self.micro_batch_size or self.batch_size
        if self.batch_size < 1 or micro < 1 or self.batch_size % micro:
            raise ConfigError(None, f"batch size {self.batch_size} must be a positive multiple of the micro-batch {micro}")
        if self.epochs < 1:
            raise ConfigError(None, "epochs must be at least 1")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def finetune(config: FinetuneConfig, resume: bool = False) -> RunDir:
    """Run (or resume) one finetuning run; returns its run directory."""
    config.validate()
    run = RunDir(config.out)
    if run.is_complete():
        return run
    if run.latest.exists() and not resume:
        raise ConfigError(run.path, "holds an unfinished run: pass --resume to continue it, or choose another --out")
    device = pick_device(config.device)
    torch.manual_seed(config.seed)

    # --- data: decoded once into the cache, then held as tensors -------------------------------
    dataset = load_dataset(config.data, synthetic_root=run.path / "data")
    train_set, val_set = dataset.split(config.fold)
    classifier_weights = resolve_weights(config.classifier_weights) if config.classifier_weights else None
    ae_weights = resolve_weights(config.ae_weights) if config.ae_weights else None
    classifier = load_classifier(
        config.classifier, classifier_weights, dataset.num_classes, class_names=list(dataset.class_names),
        device=device, **config.classifier_options,
    )
    cache = run.path / "cache"
    seconds = config.clip_seconds
    train = decode_split(train_set, classifier.sample_rate, clip_seconds=seconds, cache_dir=cache, progress=config.progress)
    val = decode_split(val_set, classifier.sample_rate, clip_seconds=seconds, cache_dir=cache, progress=config.progress)
    train_x, train_y = train.as_tensor().to(device), torch.from_numpy(train.targets).to(device)
    val_x, val_y = val.as_tensor().to(device), torch.from_numpy(val.targets).to(device)

    # --- models: the AE learns, the classifier is frozen inside the pipeline -----------------
    autoencoder = load_autoencoder(config.autoencoder, ae_weights, device=device, **config.ae_options)
    for part, trainable in ((autoencoder.encoder, config.finetune_encoder), (autoencoder.decoder, config.finetune_decoder)):
        part.requires_grad_(trainable)
    pipeline = ProbePipeline(autoencoder, classifier).to(device)
    parameters = [p for p in autoencoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=device.type == "cuda")
    micro = config.micro_batch_size or config.batch_size
    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    scheduler = SCHEDULERS[config.scheduler](optimizer, steps_per_epoch * config.epochs, config.learning_rate)
    shuffle = torch.Generator().manual_seed(config.seed)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    # --- resume, or start a fresh run directory ------------------------------------------------
    start_epoch, step, best_accuracy = 0, 0, -1.0
    if resume and run.latest.exists():
        state = torch.load(run.latest, map_location=device, weights_only=True)
        autoencoder.load_state_dict(state["autoencoder"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, step, best_accuracy = state["epoch"], state["step"], state["best_accuracy"]
        run.truncate_metrics(lambda r: r.get("step", 0) <= step)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        run.metrics.unlink(missing_ok=True)
        run.write_config(_jsonable(config), {"classifier_weights": str(classifier_weights) if classifier_weights else None,
                                             "ae_weights": str(ae_weights) if ae_weights else None})
        _save_outputs(run, "before", pipeline, val_x, val.clip_ids, micro, autocast)
        _save_array(run.outputs / "originals.npy", val_x.cpu().numpy())
        _save_array(run.outputs / "targets.npy", val.targets)
    bare_accuracy = _accuracy(_logits(classifier, val_x, micro, autocast), val_y)

    # --- the epoch loop ---------------------------------------------------------------------
    from tqdm import tqdm

    last_epoch = config.epochs if config.stop_after_epochs is None else min(config.epochs, start_epoch + config.stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        pipeline.train()
        started, losses = time.perf_counter(), []
        order = torch.randperm(len(train_x), generator=shuffle).to(device)
        bar = tqdm(order.split(config.batch_size), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not config.progress, leave=False)
        for batch in bar:
            optimizer.zero_grad(set_to_none=True)
            batch_loss = 0.0
            for chunk in batch.split(micro):
                with torch.autocast(**autocast):
                    loss = torch.nn.functional.cross_entropy(pipeline(train_x[chunk]), train_y[chunk])
                (loss * len(chunk) / len(batch)).backward()
                batch_loss += loss.item() * len(chunk) / len(batch)
            optimizer.step()
            if scheduler is not None and config.scheduler != "plateau":
                scheduler.step()
            step += 1
            losses.append(batch_loss)
            run.append_metrics({"kind": "step", "step": step, "epoch": epoch + 1, "loss": batch_loss})
            bar.set_postfix(loss=f"{batch_loss:.3f}")
        seconds_taken = time.perf_counter() - started
        val_loss, val_accuracy = _evaluate(pipeline, val_x, val_y, micro, autocast)
        if scheduler is not None and config.scheduler == "plateau":
            scheduler.step(val_loss)
        record = {
            "kind": "epoch", "step": step, "epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
            "val_accuracy": val_accuracy, "val_accuracy_bare_classifier": bare_accuracy,
            "lr": optimizer.param_groups[0]["lr"], "clips_per_s": len(train_x) / seconds_taken,
        }
        run.append_metrics(record)
        if config.progress:
            print(f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f}, val loss {val_loss:.4f}, "
                  f"val acc {val_accuracy:.3f} (bare classifier {bare_accuracy:.3f}), {record['clips_per_s']:.1f} clips/s")
        state = {
            "autoencoder": autoencoder.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(),
            "epoch": epoch + 1, "step": step, "best_accuracy": max(best_accuracy, val_accuracy),
        }
        if val_accuracy > best_accuracy:
            best_accuracy = val_accuracy
            run.save(run.best, autoencoder.checkpoint())
        run.save(run.latest, state)

    if last_epoch < config.epochs:
        return run
    _save_outputs(run, "after", pipeline, val_x, val.clip_ids, micro, autocast)
    run.mark_done({"epochs": config.epochs, "steps": step, "best_val_accuracy": best_accuracy,
                   "bare_classifier_accuracy": bare_accuracy, "skipped_files": train.skipped + val.skipped})
    return run


def finetune_folds(config: FinetuneConfig, folds: list[int], resume: bool = False) -> list[RunDir]:
    """Cross-validation: one run per validation fold, in `<out>/fold-K`; complete folds are skipped."""
    return [finetune(replace(config, fold=fold, out=str(Path(config.out) / f"fold-{fold}")), resume=resume) for fold in folds]


def _jsonable(config: FinetuneConfig) -> dict[str, Any]:
    return {key: value for key, value in asdict(config).items() if key != "progress"}


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor, micro: int, autocast: dict) -> torch.Tensor:
    """Eval-mode logits of `model` over `x`, in micro-batches, as fp32."""
    model.eval()
    with torch.autocast(**autocast):
        return torch.cat([model(chunk).float() for chunk in x.split(micro)])


def _evaluate(pipeline: ProbePipeline, x: torch.Tensor, y: torch.Tensor, micro: int, autocast: dict) -> tuple[float, float]:
    logits = _logits(pipeline, x, micro, autocast)
    return float(torch.nn.functional.cross_entropy(logits, y)), _accuracy(logits, y)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())


@torch.no_grad()
def _save_outputs(run: RunDir, label: str, pipeline: ProbePipeline, x: torch.Tensor, clip_ids: list[str], micro: int,
                  autocast: dict) -> None:
    """Store the validation reconstructions and logits, so the analyses never re-run the autoencoder."""
    from probe.fileio import write_json

    pipeline.eval()
    reconstructions, logits = [], []
    for chunk in x.split(micro):
        with torch.autocast(**autocast):
            chunk_logits, reconstruction = pipeline.forward_with_reconstruction(chunk)
        logits.append(chunk_logits.float().cpu())
        reconstructions.append(reconstruction.float().cpu())
    run.outputs.mkdir(parents=True, exist_ok=True)
    _save_array(run.outputs / f"reconstructions_{label}.npy", torch.cat(reconstructions).numpy())
    _save_array(run.outputs / f"logits_{label}.npy", torch.cat(logits).numpy())
    write_json(run.outputs / "clip_ids.json", clip_ids)


def _save_array(path: Path, array: np.ndarray) -> None:
    from probe.fileio import atomic_write

    with atomic_write(path) as handle:
        np.save(handle, array)
