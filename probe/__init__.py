"""probe: what do deep networks like to hear?

Put a waveform autoencoder in front of a frozen audio classifier, finetune only the
autoencoder on the classifier's loss, and compare what it keeps with what it drops
(after Palacio et al., CVPR 2018).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("audio-probe")  # pyproject.toml holds the one version
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


_API = {"wrap": "probe.app.api", "finetune": "probe.app.api", "analyse": "probe.app.api", "answer": "probe.app.api",
        "Answer": "probe.app.api", "ProbePipeline": "probe.pipeline", "WaveformClassifier": "probe.models.base"}
"""The Python API (`probe.wrap`, `probe.finetune`, `probe.analyse`, `probe.answer`), loaded when first used: `import
probe` stays light, and the command line's `probe --help` never loads torch."""

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'probe' has no attribute {name!r}")
