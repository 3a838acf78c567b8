"""The classifier registry, filled by `@register_classifier` beside each builder.

An entry carries everything a user needs to know about a model (sample rate, front-end,
published weights with URL and SHA-256, citation), so adding a model touches one file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from probe.registries import Registry

ModelKind = Literal["classifier", "autoencoder"]


@dataclass(frozen=True)
class WeightSource:
    """A published checkpoint: where it lives and how to check it."""

    name: str
    url: str
    filename: str
    sha256: str | None = None
    size_bytes: int | None = None
    num_classes: int | None = None
    note: str = ""
    trained_on_folds: tuple[int, ...] | None = None
    """The ESC-50 folds it was trained on, where it is a fold checkpoint (`probe.folds` refuses validating on them)."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder and its metadata."""

    name: str
    kind: ModelKind
    builder: Callable[..., object]
    sample_rate: int
    description: str
    citation: str = ""
    weights: tuple[WeightSource, ...] = field(default_factory=tuple)
    head_keys: tuple[str, ...] = ()
    """State-dict keys of the classification head (weight and bias), for re-heading."""
    tagger_classes: tuple[int, ...] = ()
    """Head sizes at which the network is a multi-label tagger (independent sigmoids): AudioSet's 527 for the networks
    whose published AudioSet weights were trained so. Sets `WaveformClassifier.multi_label`."""
    audioset_weights: str | None = None
    """The published AudioSet checkpoint that `train-classifier --init audioset` starts from (a `WeightSource` name)."""
    learning_rate: float | None = None
    """The learning rate of its ESC-50 training recipe (None: `ClassifierTrainConfig`'s default)."""


CLASSIFIERS: Registry[ModelSpec] = Registry("classifier", builtins="probe.models")
"""Every classifier by name: probe's own (the modules of `probe.models`) and the plugins'."""


def register_classifier(
    name: str,
    *,
    sample_rate: int,
    description: str,
    citation: str = "",
    weights: tuple[WeightSource, ...] = (),
    head_keys: tuple[str, ...] = (),
    tagger_classes: tuple[int, ...] = (),
    audioset_weights: str | None = None,
    learning_rate: float | None = None,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Decorator: register `builder(num_classes=..., trained=..., **options)` as the classifier `name`."""

    def decorate(builder: Callable[..., object]) -> Callable[..., object]:
        CLASSIFIERS.register(name, ModelSpec(name, "classifier", builder, sample_rate, description, citation,
                                             tuple(weights), tuple(head_keys), tuple(tagger_classes),
                                             audioset_weights, learning_rate))
        return builder

    return decorate
