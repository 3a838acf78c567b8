"""The model registry: one dict per kind, filled by decorators beside each builder (`probe.models.zoo` loads them).

An entry carries everything a user needs to know about a model (sample rate, front-end,
published weights with URL and SHA-256, citation), so adding a model touches one file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from probe.errors import ConfigError

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


_REGISTRY: dict[ModelKind, dict[str, ModelSpec]] = {"classifier": {}, "autoencoder": {}}


def register(
    kind: ModelKind,
    name: str,
    *,
    sample_rate: int,
    description: str,
    citation: str = "",
    weights: tuple[WeightSource, ...] = (),
    head_keys: tuple[str, ...] = (),
    tagger_classes: tuple[int, ...] = (),
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Decorator: register `builder` under `name` for `kind`."""

    def decorate(builder: Callable[..., object]) -> Callable[..., object]:
        if name in _REGISTRY[kind]:
            raise ValueError(f"{kind} {name!r} is registered twice")
        _REGISTRY[kind][name] = ModelSpec(name, kind, builder, sample_rate, description, citation, tuple(weights), tuple(head_keys),
                                         tuple(tagger_classes))
        return builder

    return decorate


def lookup(kind: ModelKind, name: str) -> ModelSpec:
    """The spec of a model registered so far, or a `ConfigError` listing the known names (see `probe.models.zoo`)."""
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[kind])) or "none"
        raise ConfigError(None, f"unknown {kind} {name!r}; known: {known}") from None


def registered(kind: ModelKind | None = None) -> list[ModelSpec]:
    """The specs registered so far, optionally of one kind, sorted by name."""
    kinds = [kind] if kind else list(_REGISTRY)
    return [spec for k in kinds for spec in sorted(_REGISTRY[k].values(), key=lambda s: s.name)]
