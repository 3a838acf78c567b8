"""The classifiers: waveform in, logits out.

- `load_classifier(name, weights=None, num_classes=None)`: a registered classifier (`CLASSIFIERS`), a
  `hf:` checkpoint or a user's factory, frozen.
- `save_classifier(classifier, path)`: probe's checkpoint format.

What a probe puts in front of a classifier lives in `probe.probes`; every registered model, of both
kinds, in `probe.zoo`.
"""
from __future__ import annotations

from probe.models.registry import CLASSIFIERS, ModelSpec, WeightSource, register_classifier


def __getattr__(name: str):
    # Loading torch-heavy modules only on first use keeps `import probe.models` cheap.
    if name in ("load_classifier", "save_classifier"):
        from probe.models import classifiers

        return getattr(classifiers, name)
    if name == "WaveformClassifier":
        from probe.models.base import WaveformClassifier

        return WaveformClassifier
    raise AttributeError(name)


__all__ = ["CLASSIFIERS", "ModelSpec", "WeightSource", "register_classifier", "load_classifier", "save_classifier",
           "WaveformClassifier"]
