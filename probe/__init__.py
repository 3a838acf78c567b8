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
