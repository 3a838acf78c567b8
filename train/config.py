"""The training configs: frozen dataclasses whose defaults are the only ones (the CLI builds its flags from them).

Nothing here imports torch, so `probe --help` can read the defaults at once.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from probe.errors import ConfigError
from probe.probes import PROBES, ProbeSpec, get_probe, probe_for


def refuse_unlabeled(data: str, instead: str) -> None:
    """A `ConfigError` when `data` names clips without labels (`--data audio:DIR`), saying what to do `instead`."""
    from probe.data import is_labeled

    if not is_labeled(data):
        raise ConfigError(None, f"--data {data} has no labels: {instead}")


@dataclass(frozen=True)
class TrainingConfig:
    """What every autoencoder training run shares; written to RUNDIR/config.json."""

    autoencoder: str = "archisound"
    ae_weights: str | None = None
    ae_options: dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    fold: int = 1
    hold_out_folds: tuple[int, ...] = ()
    """Folds left out of training and validation alike (the fold a later analysis scores: a pretrained AE must
    neither train nor be selected on it)."""
    out: str = "runs/train"
    epochs: int = 100
    learning_rate: float = 3e-5
    weight_decay: float = 1e-5
    batch_size: int = 4
    """The effective batch: micro-batches are accumulated up to it."""
    micro_batch_size: int | None = None
    """Clips per forward and backward pass; None: the largest that fits the memory budget, measured on the first
    clips (`probe.train.loop.sized_micro_batch`)."""
    max_memory_gb: float | None = None
    """What a micro-batch's activations may take, in GB; None: half the GPU on CUDA, half the RAM on a CPU."""
    scheduler: str = "cosine"
    seed: int = 0
    device: str = "auto"
    clip_seconds: float | None = None
    compile: bool = False
    """torch.compile the training forward (CUDA only; pays off on long runs)."""
    stop_after_epochs: int | None = None
    """Stop (resumably) after this many epochs in this invocation; for time-sliced jobs and tests."""
    deterministic: bool = False
    """torch's deterministic algorithms (and no cuDNN autotuning): on CUDA, a rerun gives the same numbers, slower;
    an operation with no deterministic CUDA implementation is then an error instead of a silent difference."""
    checkpoint_minutes: float | None = None
    """Also save latest.pt inside an epoch once this many minutes have passed since the last save (a pre-empted or
    killed job then loses at most that much, and resumes exactly where it was); None: at epoch ends only."""
    cache_dir: str | None = None
    """Where the decoded clips are cached: None, the run's own cache/; a folder several runs share (`shared`:
    $PROBE_HOME/cache/decoded) decodes each dataset, rate and length once, one process at a time."""
    zero_nonfinite_grads: bool = False
    """Zero the NaN or infinite entries of a step's gradient and count them (recorded in metrics.jsonl and done.json),
    instead of stopping the run at the first such step: for a classifier whose input gradient is undefined on a few
    clips (digital silence through a square root). A non-finite loss still stops the run."""
    progress: bool = True

    min_epochs = 1  # a class attribute, not a field

    @property
    def micro(self) -> int:
        """The micro-batch; before the training loop sizes it, the whole batch."""
        return self.micro_batch_size or self.batch_size

    def validate(self) -> None:
        from probe.train.schedulers import SCHEDULERS

        SCHEDULERS.lookup(self.scheduler)
        if self.batch_size < 1 or self.micro < 1 or self.batch_size % self.micro:
            raise ConfigError(None, f"batch size {self.batch_size} must be a positive multiple of the micro-batch {self.micro}")
        if self.epochs < self.min_epochs:
            raise ConfigError(None, f"epochs must be at least {self.min_epochs}")
        if self.learning_rate <= 0:
            raise ConfigError(None, f"the learning rate must be positive, got {self.learning_rate}")
        if self.checkpoint_minutes is not None and self.checkpoint_minutes <= 0:
            raise ConfigError(None, f"--checkpoint-minutes must be positive, got {self.checkpoint_minutes}")
        if self.fold in self.hold_out_folds:
            raise ConfigError(None, f"fold {self.fold} cannot be both the validation fold and held out")

    def resolved_ae_weights(self) -> Path | None:
        """The AE's starting weights as a local path (a published name is looked up in the weights folder)."""
        from probe.download import resolve_weights

        return resolve_weights(self.ae_weights) if self.ae_weights else None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "progress"}

    def input_paths(self) -> tuple[str, ...]:
        """What the run reads from disk (the data's folder, starting weights), for the output guard
        (`probe.outputs`): the run's folder may neither lie inside one nor hold one."""
        return tuple(path for path in (self.data.partition(":")[2], *self.weights_read()) if path)

    def weights_read(self) -> tuple[str | None, ...]:
        """The checkpoints the run starts from."""
        return (self.ae_weights,)


@dataclass(frozen=True)
class FinetuneConfig(TrainingConfig):
    """A finetuning run: the shared training settings, the probe and the frozen classifier.

    `probe`, `epochs`, `learning_rate` and `penalty` left as None take the probe type's defaults
    (`probe.probes`); `resolved()` fills them in, and the run directory records the resolved values.
    """

    classifier: str = "mn10"
    classifier_weights: str | None = None
    classifier_options: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    """Re-head the classifier to this many classes (a builder that can); None: the data's classes with labels, the
    classifier's own head without."""
    out: str = "runs/finetune"
    probe: str | None = None
    """A registered probe type; None: the one that builds `autoencoder`, else the study's (autoencoder)."""
    epochs: int | None = None  # type: ignore[assignment]
    learning_rate: float | None = None  # type: ignore[assignment]
    penalty: float | None = None
    """The weight of the probe's extra loss term (the AE's relative energy, the spectral gain's mean gain)."""
    finetune_encoder: bool = True
    finetune_decoder: bool = True
    classifier_label: str | None = None
    """How analyses and reports name the classifier (default: its registry name); e.g. two mn10 checkpoints."""
    setting_label: str | None = None
    """How analyses and reports name the probe setting (default: the AE's name, plus the penalty if any)."""
    per_class: bool = False
    """One probe per class (the spectral gain), each trained on its own class's clips and applied by label."""
    objective: str = "labels"
    """What the classifier's loss compares against (`probe.train.objectives`): `labels` (cross-entropy, the study's),
    or `fidelity` (the KL divergence from its own output on the original: no labels needed)."""
    allow_untrained: bool = False
    """Probe a classifier without trained weights (refused otherwise: its preferences say nothing of a trained one)."""
    replicate: int | None = None
    """Which of several replicates this run is (`probe finetune --replicates K`: runs that differ only in their seed,
    the unit of the answer's words); None: a run on its own."""

    min_epochs = 0  # 0 epochs: evaluate an AE behind the classifier and store the outputs, untrained

    def weights_read(self) -> tuple[str | None, ...]:
        return (self.ae_weights, self.classifier_weights)

    @property
    def probe_spec(self) -> ProbeSpec:
        return get_probe(self.probe) if self.probe else probe_for(self.autoencoder)

    def resolved(self) -> "FinetuneConfig":
        """The same run with the probe type's defaults filled in, and a classifier folder (`hf:./ast`) made absolute."""
        from probe.models.classifiers import canonical_classifier_name

        spec = self.probe_spec
        return replace(self, probe=spec.name, autoencoder=spec.model or self.autoencoder,
                       classifier=canonical_classifier_name(self.classifier),
                       epochs=spec.epochs if self.epochs is None else self.epochs,
                       learning_rate=spec.learning_rate if self.learning_rate is None else self.learning_rate,
                       penalty=spec.penalty_weight(self.penalty) if spec.penalty else None)

    def validate(self) -> None:
        if self.epochs is None or self.learning_rate is None:
            return self.resolved().validate()
        super().validate()
        spec = self.probe_spec
        if not (self.finetune_encoder or self.finetune_decoder):
            raise ConfigError(None, "nothing to train: both the encoder and the decoder are frozen")
        if self.penalty is not None and spec.penalty is None:
            raise ConfigError(None, f"--probe {spec.name} has no penalty term")
        if self.penalty is not None and self.penalty < 0:
            raise ConfigError(None, "penalty weights must be >= 0")
        from probe.train.objectives import OBJECTIVES

        if OBJECTIVES.lookup(self.objective).needs_labels:
            refuse_unlabeled(self.data, "probe it with --objective fidelity")
        if self.per_class and not spec.per_class:
            raise ConfigError(None, f"--per-class needs a probe with one curve per class "
                                    f"({', '.join(s.name for s in PROBES.values() if s.per_class)}), not {spec.name}")

    def refuse_untrained(self) -> None:
        """A built-in classifier without weights is untrained: refused (before anything is written) unless
        `allow_untrained`. A checkpoint saved untrained is caught when it loads (`require_trained`)."""
        if not self.allow_untrained and self.classifier_weights is None and _is_builtin_classifier(self.classifier):
            raise ConfigError(None, f"--classifier {self.classifier} has no trained weights: give them with "
                                    "--classifier-weights PATH (or a name from `probe download weights --list`), or "
                                    "pass --allow-untrained to probe an untrained network on purpose")

    def objective_name(self) -> str:
        """How the report names what this run optimised."""
        from probe.train.objectives import OBJECTIVES

        config = self.resolved()
        return config.probe_spec.objective_name(config.epochs, config.penalty, config.per_class,
                                                OBJECTIVES.lookup(config.objective).describes)


def _is_builtin_classifier(name: str) -> bool:
    """Whether `name` is one of probe's own classifiers (built from code, so untrained without weights; a plugin's
    builder may load weights of its own, and is judged when it loads)."""
    from probe.models.registry import CLASSIFIERS

    spec = CLASSIFIERS.ensure_loaded().get(name)
    return spec is not None and spec.builder.__module__.startswith("probe.")


@dataclass(frozen=True)
class PretrainConfig(TrainingConfig):
    """Reconstruction pretraining; the defaults are the study's ESC-50 setting."""

    autoencoder: str = "random"
    out: str = "runs/pretrain"
    epochs: int = 70
    batch_size: int = 64
    micro_batch_size: int | None = 4
    stft_weight: float = 0.0
    """Weight of the multi-resolution STFT loss added to the MSE (0: MSE only, as in the study)."""

    def validate(self) -> None:
        super().validate()
        if self.stft_weight < 0:
            raise ConfigError(None, f"--stft-weight must be >= 0, got {self.stft_weight}")


DEFAULT_LEARNING_RATE = 6e-5
"""A classifier's learning rate where its registration names none (EfficientAT's ESC-50 recipe's)."""


@dataclass(frozen=True)
class ClassifierTrainConfig(TrainingConfig):
    """Training a classifier on a dataset; the defaults are EfficientAT's ESC-50 recipe."""

    classifier: str = "mn10"
    classifier_options: dict[str, Any] = field(default_factory=dict)
    init: str = "audioset"
    """audioset (the published AudioSet weights, re-headed), none (random), or a checkpoint path."""
    out: str = "runs/classifier"
    epochs: int = 80
    learning_rate: float | None = None  # type: ignore[assignment]
    """None: the recipe's for the classifier (6e-5; dymn10 4e-5)."""
    batch_size: int = 32
    scheduler: str = "warmup_rampdown"
    mixup_alpha: float = 0.3
    gain_db: float = 12.0
    roll: bool = True

    def resolved(self) -> "ClassifierTrainConfig":
        """The same run with the recipe's learning rate filled in."""
        if self.learning_rate is not None:
            return self
        from probe.models.registry import CLASSIFIERS

        spec = CLASSIFIERS.ensure_loaded().get(self.classifier)
        return replace(self, learning_rate=(spec.learning_rate if spec else None) or DEFAULT_LEARNING_RATE)

    def validate(self) -> None:
        if self.learning_rate is None:
            return self.resolved().validate()
        super().validate()
        if self.mixup_alpha < 0 or self.gain_db < 0:
            raise ConfigError(None, "--mixup and --gain-db must be >= 0")
        refuse_unlabeled(self.data, "a classifier trains on labels")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_json().items() if k not in ("autoencoder", "ae_weights", "ae_options")}

    def weights_read(self) -> tuple[str | None, ...]:
        return (None,) if self.init in ("audioset", "none") else (self.init,)  # keywords, not paths
