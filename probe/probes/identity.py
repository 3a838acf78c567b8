"""The no-probe control: the audio reaches the classifier unchanged (or through the study's 48 kHz stereo chain
with `--ae-option sample_rate=48000 --ae-option channels=2`); nothing trains."""
from __future__ import annotations

from probe.probes import ProbeSpec, register_probe

register_probe(ProbeSpec(
    name="identity", model="identity", learning_rate=3e-5, epochs=0, control=True,
    description="the no-autoencoder control (nothing trains)",
))
