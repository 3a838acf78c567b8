"""The zoo: every registered model, with the built-in modules and the plugins loaded on first use.

Loading lazily keeps `probe --help` free of torch. A model module registers itself with
`@register(...)`; this module imports the built-in ones and the plugins (`probe.plugins`).
"""
from __future__ import annotations

from probe.models.registry import ModelKind, ModelSpec, WeightSource, lookup, registered
from probe.plugins import loader

BUILTIN_MODULES = ("archisound", "identity", "spectral_gain", "efficientat", "passt", "small_cnn")
_loaded = False


_load = loader("probe.models", BUILTIN_MODULES)


def ensure_models() -> None:
    """Import the built-in model modules and the plugins once (their decorators fill the registry)."""
    global _loaded
    if not _loaded:
        _loaded = True
        _load()


def get_spec(kind: ModelKind, name: str) -> ModelSpec:
    """The spec of a registered model, or a `ConfigError` listing the known names."""
    ensure_models()
    return lookup(kind, name)


def specs(kind: ModelKind | None = None) -> list[ModelSpec]:
    """All registered specs, optionally of one kind, sorted by name."""
    ensure_models()
    return registered(kind)


def all_weight_sources() -> dict[str, WeightSource]:
    """Every published checkpoint of every registered model, by its asset name."""
    return {source.name: source for spec in specs() for source in spec.weights}
