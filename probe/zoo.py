"""The zoo: every registered model, the classifiers and the modules probes put in front of them."""
from __future__ import annotations

from probe.models.registry import CLASSIFIERS, ModelKind, ModelSpec, WeightSource
from probe.probes.base import AUTOENCODERS


def model_specs(kind: ModelKind | None = None) -> list[ModelSpec]:
    """Every registered model, optionally of one kind, sorted by kind and name."""
    chosen = {"classifier": CLASSIFIERS, "autoencoder": AUTOENCODERS}
    return [spec for k, registry in chosen.items() if kind in (None, k)
            for spec in sorted(registry.entries(), key=lambda s: s.name)]


def all_weight_sources() -> dict[str, WeightSource]:
    """Every published checkpoint of every registered model, by its asset name."""
    return {source.name: source for spec in model_specs() for source in spec.weights}
