"""The epoch loop shared by `probe finetune` and `probe pretrain-ae`.

An `Objective` says what the loss is and how to validate; this module owns everything else:
AdamW, the schedule, micro-batch accumulation, bf16 autocast on CUDA, DDP, per-step and
per-epoch metrics, atomic `latest`/`best` checkpoints and exact resume.
"""
from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from probe.devices import saved_tensor_bytes, total_memory_bytes
from probe.errors import ConfigError, NonFiniteTraining
from probe.folds import FOLDS_FILE
from probe.outputs import MARKER, marker_kind
from probe.locks import release_run
from probe.progress import Progress, bars_enabled, duration
from probe.rundir import RunDir
from probe.seeding import seeded
from probe.train.distributed import Distributed, no_sync, wrap
from probe.train.config import TrainingConfig
from probe.train.schedulers import SCHEDULERS, Scheduler


class Objective:
    """What a training run optimises; `module` is the part whose forward the loss calls."""

    module: nn.Module

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of a micro-batch, computed through `module` (possibly DDP-wrapped)."""
        raise NotImplementedError

    def evaluate(self) -> tuple[dict[str, float], float]:
        """Validation metrics for metrics.jsonl, and the score (higher is better) that picks best.pt."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Random state of the objective's own (augmentations), which latest.pt carries for an exact resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def input_gradient_finite(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Per clip, whether the frozen classifier's own loss has a finite gradient with respect to its input: said
        when a step goes non-finite, to tell a classifier that cannot be trained through on those clips from a probe
        that diverged. None where the objective has no classifier (reconstruction)."""
        return None


def input_gradient_finite(model: nn.Module, x: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Per clip, whether `loss(model(x))` has a finite gradient with respect to `x` (the model's weights untouched)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(loss(model(x)), x, allow_unused=True)
    if gradient is None:
        return torch.ones(len(x), dtype=torch.bool)
    return torch.isfinite(gradient).flatten(1).all(1).cpu()


@dataclass
class LoopResult:
    epoch: int
    step: int
    best_score: float
    nonfinite_grad_entries: int = 0
    """Gradient entries zeroed for being NaN or infinite (`zero_nonfinite_grads`), over the whole run."""

    def finished(self, config: TrainingConfig) -> bool:
        return self.epoch >= config.epochs


def autocast_for(device: torch.device) -> dict[str, Any]:
    """bf16 autocast on CUDA; plain fp32 elsewhere."""
    return dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def is_resuming(run: RunDir, resume: bool) -> bool:
    return resume and run.latest.exists()


@dataclass
class OpenedRun:
    """A run directory with its process group and device, ready to load data."""

    run: RunDir
    dist: Distributed
    device: torch.device
    progress: bool

    def splits(self, config: TrainingConfig):
        """(dataset, training split, validation split) of the config's data and fold."""
        from probe.data import load_dataset

        # one rank generates synthetic data; the others read it
        if self.dist.is_main and config.data.partition(":")[0] == "synthetic":
            print(f"probe: note: --data {config.data}: training on synthetic clips, not recordings (give --data "
                  "esc50:DIR, folder:DIR or audio:DIR for real audio)", file=sys.stderr, flush=True)
        dataset = self.dist.main_first(lambda: load_dataset(config.data, synthetic_root=self.run.path / "data"))
        train, validation = dataset.split(config.fold)
        if config.hold_out_folds:
            train = train.subset([f for f in dataset.folds if f != config.fold and f not in config.hold_out_folds])
        if self.dist.is_main:  # what the run's checkpoints learned from (`probe.folds`)
            from probe.folds import training_record, write_record

            self.run.path.mkdir(parents=True, exist_ok=True)
            write_record(self.run.path, training_record(config, dataset.folds))
        return dataset, train, validation

    def decode(self, config: TrainingConfig, splits, sample_rate: int) -> list:
        """Each split decoded once at `sample_rate` into the run's audio cache."""
        from probe.cache import decode_split

        from probe.locks import waiting_for

        cache = shared_cache(config.cache_dir) if config.cache_dir else self.run.path / "cache"

        def decode() -> list:
            # a shared cache serves several runs, perhaps several jobs: one decodes, the others wait and read it
            with waiting_for(cache, f"decoding into {cache}") if config.cache_dir else contextlib.nullcontext():
                return [decode_split(split, sample_rate, clip_seconds=config.clip_seconds, cache_dir=cache,
                                     progress=self.progress) for split in splits]

        return self.dist.main_first(decode)  # rank 0 fills the cache; the other ranks read it


TIMING_FIELDS = ("clips_per_s", "seconds")
"""The fields of an epoch record that time it: they differ between identical runs; every other field repeats."""


def shared_cache(value: str) -> Path:
    """A shared decode cache's folder: `shared` is $PROBE_HOME/cache/decoded; anything else, that folder."""
    if value == "shared":
        from probe.download import probe_home

        return probe_home() / "cache" / "decoded"
    return Path(value).expanduser()


def releasing_run(train: Callable) -> Callable:
    """Decorate a training function `train(config, resume)`: the run directory's lock (`hold_run`, taken by
    `open_run`) is given back when it returns or fails, so that one process can train a run and later resume it in
    another."""
    import functools

    @functools.wraps(train)
    def wrapper(config, *args, **kwargs):
        try:
            return train(config, *args, **kwargs)
        finally:
            run = RunDir(config.out)  # a run that failed before it started (no config.json) leaves no folder behind
            if not run.config.is_file() and marker_kind(run.path / "data") == "dataset":
                shutil.rmtree(run.path / "data", ignore_errors=True)  # the synthetic clips it made: made again alike
            release_run(run.path, tidy=() if run.config.is_file() else (FOLDS_FILE, MARKER))

    return wrapper


def open_run(config: TrainingConfig, resume: bool) -> OpenedRun:
    """Validate the config, refuse to overwrite an unfinished run, join torchrun's group, seed."""
    from probe.train.distributed import init_distributed

    from probe.folds import refuse_other_folds
    from probe.outputs import check_output

    config.validate()
    run = RunDir(config.out)
    check_output(run.path, "run", config.input_paths())
    if run.latest.exists() and not resume and not run.is_complete():
        raise ConfigError(run.path, "holds an unfinished run: pass --resume to continue it, or choose another --out")
    refuse_other_folds(run.path, config)
    dist, device = init_distributed(config.device)
    if dist.is_main:  # one process per run directory: a second is refused, naming the first
        from probe.fileio import remove_stale_temps
        from probe.locks import hold_run
        from probe.outputs import marker_kind, write_marker

        hold_run(run.path)
        if marker_kind(run.path) != "run":
            write_marker(run.path, "run")
        remove_stale_temps(run.path)  # a killed predecessor's half-written files (never the artefacts themselves)
    if config.deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic GEMMs
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(config.seed)
    return OpenedRun(run, dist, device, config.progress and dist.is_main)


def start_fresh(run: RunDir, config: TrainingConfig, inputs: dict[str, Path | None]) -> None:
    """A new run directory: no stale metrics, and the config with the inputs' provenance."""
    run.path.mkdir(parents=True, exist_ok=True)
    run.metrics.unlink(missing_ok=True)
    run.write_config(config.to_json(), {key: str(path) if path else None for key, path in inputs.items()})


def train_loop(config: TrainingConfig, run: RunDir, model: nn.Module, objective: Objective,
               train_x: torch.Tensor, train_y: torch.Tensor, device: torch.device, resume: bool,
               dist: Distributed = Distributed(), shuffle: torch.Generator | None = None,
               clip_names: Sequence[str] | None = None) -> LoopResult:
    """Train `model`'s trainable parameters on `objective`; resumable at every epoch end.

    `model` is what learns (an autoencoder, a probe, or a classifier being trained) and what
    best.pt holds, through its `checkpoint()`. `shuffle` orders the clips (default: one seeded by
    `config.seed`); an objective that draws from the same generator shares its state in latest.pt.
    A step whose loss or gradient is not finite stops the run (`NonFiniteTraining`) before anything of it is
    saved, naming the batch's clips (`clip_names`, in `train_x`'s order); `config.zero_nonfinite_grads` zeroes
    and counts such gradient entries instead.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        if config.epochs:
            raise ConfigError(None, f"{getattr(model, 'name', type(model).__name__)} has nothing to train: "
                                    "run it with --epochs 0 (it is a control)")
        return LoopResult(0, 0, -math.inf)
    if config.micro_batch_size is None:
        micro = sized_micro_batch(config, objective, train_x, train_y, device, shuffle)
        if micro < config.batch_size:
            Progress(config.progress and dist.is_main)(
                f"micro-batch {micro} (of batch {config.batch_size}): what fits the memory budget (--max-memory; "
                "--micro-batch-size sets it)")
        config = replace(config, micro_batch_size=micro)
    training = Training.start(config, run, model, objective, parameters, len(train_x), device, dist, shuffle)
    training.clip_names = list(clip_names) if clip_names is not None else None
    in_epoch = training.resume() if is_resuming(run, resume) else None
    result = training.result
    last_epoch = config.epochs if config.stop_after_epochs is None else min(config.epochs, result.epoch + config.stop_after_epochs)
    for epoch in range(result.epoch, last_epoch):
        training.run_epoch(epoch, train_x, train_y, in_epoch)
        in_epoch = None
    return result


def sized_micro_batch(config: TrainingConfig, objective: Objective, train_x: torch.Tensor, train_y: torch.Tensor,
                      device: torch.device, shuffle: torch.Generator | None = None) -> int:
    """The largest micro-batch (a divisor of the batch) whose activations fit the memory budget: the bytes autograd
    keeps per clip, measured on one and two clips with saved-tensor hooks, times three (their gradients and the
    allocator's slack take about as much again each). The measurement leaves no trace: the generators, the
    modules' buffers and the objective's own state are restored."""
    if len(train_x) < 2:
        return config.batch_size
    budget = config.max_memory_gb * 2**30 if config.max_memory_gb else training_memory_bytes(device)
    buffers = {name: buffer.detach().clone() for name, buffer in objective.module.named_buffers()}
    state, shuffle_state = objective.state_dict(), shuffle.get_state() if shuffle is not None else None

    def saved(clips: int) -> int:
        def loss() -> None:
            with torch.autocast(**autocast_for(device)):
                objective.loss(objective.module, train_x[:clips], train_y[:clips])

        return saved_tensor_bytes(loss)

    try:
        with seeded(0):
            per_clip = max(1, saved(2) - saved(1))
    finally:
        with torch.no_grad():
            for name, buffer in objective.module.named_buffers():
                buffer.copy_(buffers[name])
        objective.load_state_dict(state)
        if shuffle is not None:
            shuffle.set_state(shuffle_state)
    fits = max(1, int(budget // (3 * per_clip)))
    return max(d for d in range(1, config.batch_size + 1) if config.batch_size % d == 0 and d <= fits)


def training_memory_bytes(device: torch.device) -> int:
    """What training's activations may take: half the GPU on CUDA, half the RAM on a CPU (the weights, the optimiser
    and the data hold the rest)."""
    return total_memory_bytes(device) // 2


@dataclass
class Training:
    """One training between its steps: the model, its optimiser and schedule, the generators, and where it stands."""

    config: TrainingConfig
    run: RunDir
    model: nn.Module
    objective: Objective
    module: nn.Module
    """What the steps call: the objective's module, wrapped for DDP and compiled where asked."""
    optimizer: torch.optim.Optimizer
    schedule: Scheduler
    scheduler: Any
    shuffle: torch.Generator
    dist: Distributed
    device: torch.device
    result: LoopResult
    clip_names: list[str] | None = None
    epoch_started: float = 0.0

    @classmethod
    def start(cls, config: TrainingConfig, run: RunDir, model: nn.Module, objective: Objective,
              parameters: list[nn.Parameter], clips: int, device: torch.device, dist: Distributed,
              shuffle: torch.Generator | None) -> "Training":
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay,
                                      fused=device.type == "cuda")
        schedule = SCHEDULERS.lookup(config.scheduler)
        steps = math.ceil(clips / config.batch_size) * config.epochs
        module = wrap(objective.module, dist, device)
        if config.compile and device.type == "cuda":
            module = torch.compile(module)
        return cls(config, run, model, objective, module, optimizer, schedule,
                   schedule.build(optimizer, steps, config.learning_rate),
                   shuffle if shuffle is not None else torch.Generator().manual_seed(config.seed), dist, device,
                   LoopResult(0, 0, -math.inf))

    def resume(self) -> dict | None:
        """Load latest.pt: weights, optimiser, schedule, generators, where it stood. Returns what an interrupted
        epoch had done (its permutation, its batches), or None when latest.pt was saved at an epoch end."""
        state = torch.load(self.run.latest, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.shuffle.set_state(state["shuffle_rng"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device; RNG states live on the CPU
        if state.get("cuda_rng") and torch.cuda.is_available():  # dropout, noise and mixup draws on the GPU
            torch.cuda.set_rng_state_all([rng.cpu() for rng in state["cuda_rng"]])
        if "objective" in state:
            self.objective.load_state_dict(state["objective"])
        self.result = LoopResult(state["epoch"], state["step"], state["best_score"],
                                 int(state.get("nonfinite_grad_entries", 0)))
        if self.dist.is_main:
            self.run.truncate_metrics(lambda r: r.get("step", 0) <= self.result.step)
        return state.get("in_epoch")

    def save_latest(self, in_epoch: dict | None = None) -> None:
        """latest.pt: everything `resume` reads, and inside an epoch what it had done."""
        self.run.save(self.run.latest, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "shuffle_rng": self.shuffle.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "objective": self.objective.state_dict(),
            "epoch": self.result.epoch, "step": self.result.step, "best_score": self.result.best_score,
            "nonfinite_grad_entries": self.result.nonfinite_grad_entries,
            **({"in_epoch": in_epoch} if in_epoch is not None else {}),
        })

    def run_epoch(self, epoch: int, train_x: torch.Tensor, train_y: torch.Tensor, in_epoch: dict | None) -> None:
        """One epoch: its batches (from where an interrupted one stopped), saved every --checkpoint-minutes, then
        its end."""
        from tqdm import tqdm

        config, dist = self.config, self.dist
        self.objective.module.train()
        started, losses, done, previous_s = time.perf_counter(), [], 0, 0.0
        self.epoch_started = started  # the epoch's wall time, validation included, gives the ETA of the rest
        if in_epoch is not None:  # the permutation drawn before the interruption, and the batches already taken
            order, done = in_epoch["order"].to(self.device), int(in_epoch["batches_done"])
            losses, previous_s = [float(v) for v in in_epoch["losses"]], float(in_epoch["seconds"])
        else:
            order = torch.randperm(len(train_x), generator=self.shuffle).to(self.device)
        batches = [b for b in order.split(config.batch_size) if len(b) >= dist.world_size]
        bar = tqdm(total=sum(map(len, batches)), initial=sum(map(len, batches[:done])),
                   desc=f"epoch {epoch + 1}/{config.epochs}", unit="clip",
                   disable=not bars_enabled(config.progress and dist.is_main), leave=False, dynamic_ncols=True)
        every_s = config.checkpoint_minutes * 60 if config.checkpoint_minutes else None
        saved_at = time.perf_counter()
        for number, batch in enumerate(batches[done:], done + 1):
            step_started = time.perf_counter()
            losses.append(self.step(batch, train_x, train_y))
            if self.result.step == 1 and dist.is_main:  # the run's first step: what the whole run should take
                step_s = time.perf_counter() - step_started
                Progress(config.progress)(f"the first step took {step_s:.2f} s: about "
                                          f"{duration(step_s * len(batches) * config.epochs)} of training steps for "
                                          f"{config.epochs} epoch(s), validation not included")
            if dist.is_main:
                self.run.append_metrics({"kind": "step", "step": self.result.step, "epoch": epoch + 1,
                                         "loss": losses[-1]}, durable=False)
            bar.update(len(batch))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if every_s is not None and number < len(batches) and time.perf_counter() - saved_at >= every_s:
                if dist.is_main:
                    self.save_latest({"order": order.cpu(), "batches_done": number, "losses": losses,
                                      "seconds": previous_s + time.perf_counter() - started})
                saved_at = time.perf_counter()
        bar.close()
        self.end_epoch(epoch, losses, sum(map(len, batches)), previous_s + time.perf_counter() - started)

    def step(self, batch: torch.Tensor, train_x: torch.Tensor, train_y: torch.Tensor) -> float:
        """One optimiser step on `batch`, a micro-batch at a time; returns the batch's mean loss."""
        dist, config = self.dist, self.config
        self.optimizer.zero_grad(set_to_none=True)
        chunks = dist.shard(batch).split(config.micro)
        batch_loss = torch.zeros((), device=self.device)
        for index, chunk in enumerate(chunks):
            with no_sync(self.module, sync=index == len(chunks) - 1), torch.autocast(**autocast_for(self.device)):
                loss = self.objective.loss(self.module, train_x[chunk], train_y[chunk])
            # Weighted so that DDP's mean over ranks gives the mean over the whole batch.
            weighted = loss * len(chunk) * dist.world_size / len(batch)
            weighted.backward()
            batch_loss += weighted.detach() / dist.world_size
        if dist.enabled:
            torch.distributed.all_reduce(batch_loss)
        self.refuse_nonfinite(batch, train_x, train_y, batch_loss)
        self.optimizer.step()
        if self.scheduler is not None and not self.schedule.per_epoch:
            self.scheduler.step()
        self.result.step += 1
        return float(batch_loss)

    def refuse_nonfinite(self, batch: torch.Tensor, train_x: torch.Tensor, train_y: torch.Tensor,
                         batch_loss: torch.Tensor) -> None:
        """Stop before a step whose loss or gradient is NaN or infinite changes the weights, or (with
        `zero_nonfinite_grads` and a finite loss) zero and count the gradient's non-finite entries."""
        gradients = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        loss_finite = bool(torch.isfinite(batch_loss))
        # one host sync for every gradient, not one per parameter (on a GPU each would stall the step)
        if loss_finite and (not gradients or bool(torch.stack([torch.isfinite(g).all() for g in gradients]).all())):
            return
        if loss_finite and self.config.zero_nonfinite_grads:
            for gradient in gradients:
                bad = ~torch.isfinite(gradient)
                self.result.nonfinite_grad_entries += int(bad.sum())
                gradient[bad] = 0.0
            return
        raise NonFiniteTraining(self.run.path, self.describe_nonfinite(batch, train_x, train_y, loss_finite))

    def describe_nonfinite(self, batch: torch.Tensor, train_x: torch.Tensor, train_y: torch.Tensor,
                           loss_finite: bool) -> str:
        """One line: where, on which clips, and whether the classifier itself is at fault."""
        indices = batch.tolist()
        names = [self.clip_names[i] if self.clip_names else f"training clip {i}" for i in indices]
        what = "gradient" if loss_finite else "loss"
        text = (f"non-finite {what} at epoch {self.result.epoch + 1}, step {self.result.step + 1}, on the batch "
                f"{', '.join(names)}")
        try:
            finite = self.objective.input_gradient_finite(train_x[batch], train_y[batch])
        except Exception as exc:  # the diagnosis must not hide the failure it explains
            finite, text = None, f"{text} (the classifier's input gradient could not be checked: {exc})"
        if finite is not None:
            flagged = [name for name, ok in zip(names, finite.tolist()) if not ok]
            text += (f"; the classifier's own input gradient is non-finite on {', '.join(flagged)} (it cannot be "
                     "trained through there: digital silence is a common cause)" if flagged
                     else "; the classifier's own input gradient is finite on them")
        fix = ("pass --zero-nonfinite-grads to zero such gradient entries and count them, or leave those clips out"
               if loss_finite else "lower --lr, or leave those clips out")
        last = f"{self.run.latest.name} holds the last good epoch" if self.run.latest.exists() else "nothing was saved"
        return f"{text}; {last}; {fix}"

    def refuse_nonfinite_weights(self) -> None:
        bad = [name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise NonFiniteTraining(self.run.path, f"weights became non-finite by epoch {self.result.epoch + 1} "
                                                   f"({', '.join(bad[:3])}); lower --lr")

    def end_epoch(self, epoch: int, losses: list[float], clips: int, seconds: float) -> None:
        """Validate, step a per-epoch schedule, record the epoch, keep best.pt and latest.pt."""
        config, dist, result = self.config, self.dist, self.result
        dist.average_batch_norm(self.model)  # a classifier in training: its statistics are every rank's, not rank 0's
        self.refuse_nonfinite_weights()  # nothing non-finite is saved, nor marked complete
        metrics, score = self.objective.evaluate()
        if self.scheduler is not None and self.schedule.per_epoch:
            self.scheduler.step(metrics["val_loss"])
        record = {"kind": "epoch", "step": result.step, "epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                  **metrics, "lr": self.optimizer.param_groups[0]["lr"], "clips_per_s": clips / seconds,
                  "seconds": round(seconds, 3),
                  **({"nonfinite_grad_entries": self.result.nonfinite_grad_entries} if self.config.zero_nonfinite_grads else {})}
        result.epoch = epoch + 1
        improved = score > result.best_score
        result.best_score = max(result.best_score, score)
        if dist.is_main:
            self.run.append_metrics(record)
            shown = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in metrics.items())
            left = config.epochs - result.epoch
            Progress(config.progress and dist.is_main)(
                f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f}, {shown}, "
                f"{record['clips_per_s']:.3g} clips/s"
                + (f", about {duration(left * (time.perf_counter() - self.epoch_started))} left" if left else ""))
            if improved:
                self.run.save(self.run.best, {**self.model.checkpoint(), **self.run.fold_entry()})
            self.save_latest()
        dist.barrier()


Config = TypeVar("Config", bound=TrainingConfig)


def fold_configs(config: Config, folds: list[int], select_on: str = "scored") -> list[Config]:
    """Cross-validation's runs: one per fold K, in `<out>/fold-K`, validated where `SELECT_ON[select_on]` says (on K,
    or on the next fold with K held out)."""
    import functools

    from probe.data import dataset_folds
    from probe.folds import SELECT_ON

    select = SELECT_ON.lookup(select_on)
    data_folds = functools.cache(lambda: dataset_folds(config.data))
    configs = []
    for fold in folds:
        selected, held = select(fold, tuple(config.hold_out_folds), data_folds)
        configs.append(replace(config, fold=selected, hold_out_folds=held, out=str(Path(config.out) / f"fold-{fold}")))
    return configs


def run_folds(train: Callable[[Config, bool], RunDir], config: Config, folds: list[int], resume: bool = False,
              jobs: int = 1, select_on: str = "scored", say: Callable[[str], None] | None = None) -> list[RunDir]:
    """Cross-validation: one run per fold (`fold_configs`), `jobs` at a time (`probe.train.cells`); complete folds are
    skipped. `say` is told where each run selects when that is not its own fold."""
    from probe.folds import fold_list
    from probe.train.cells import claim_runs, run_cells

    cells = fold_configs(config, folds, select_on)
    claim_runs(config.out, cells)
    for fold, cell in zip(folds, cells):
        if say is not None and cell.fold != fold:
            say(f"{cell.out} selects on fold {cell.fold} and holds out {fold_list(cell.hold_out_folds)}")
    return run_cells(train, cells, resume, jobs)


@torch.no_grad()
def batched_logits(model: nn.Module, x: torch.Tensor, micro: int, autocast: dict[str, Any],
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """Eval-mode outputs of `model` over `x`, in micro-batches, as fp32; `labels` go along for a class-conditional probe."""
    model.eval()
    with torch.autocast(**autocast):
        if labels is None:
            return torch.cat([model(chunk).float() for chunk in x.split(micro)])
        return torch.cat([model(chunk, labels=y).float() for chunk, y in zip(x.split(micro), labels.split(micro))])


def save_array(path, array: np.ndarray) -> None:
    """np.save, atomically."""
    from probe.fileio import atomic_write

    with atomic_write(path) as handle:
        np.save(handle, array)
