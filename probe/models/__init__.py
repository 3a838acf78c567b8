"""The model zoo: one door per kind of model.

- `load_classifier(name, weights=None, num_classes=None)`: waveform (B, L) -> logits, frozen.
- `load_autoencoder(name, weights=None)`: waveform (B, C, L) -> reconstruction.
- `list_models()`: what is registered, with sample rates and published weights.
"""
from __future__ import annotations

from probe.models.registry import ModelSpec, WeightSource
from probe.models.zoo import all_weight_sources, get_spec, specs


def list_models(kind: str | None = None) -> list[ModelSpec]:
    """Every registered model (classifiers and autoencoders), sorted by kind and name."""
    return specs(kind)  # type: ignore[arg-type]


def __getattr__(name: str):
    # Loading torch-heavy modules only on first use keeps `import probe.models` cheap.
    if name in ("load_classifier", "save_classifier"):
        from probe.models import classifiers

        return getattr(classifiers, name)
    if name == "WaveformClassifier":
        from probe.models.base import WaveformClassifier

        return WaveformClassifier
    if name in ("load_autoencoder", "WaveformAutoencoder", "AutoencoderConfig"):
        from probe.models import autoencoders

        return getattr(autoencoders, name)
    raise AttributeError(name)


__all__ = [
    "ModelSpec", "WeightSource", "all_weight_sources", "get_spec", "list_models",
    "load_classifier", "save_classifier", "WaveformClassifier",
    "load_autoencoder", "WaveformAutoencoder", "AutoencoderConfig",
]
