"""The study's probe: a waveform autoencoder, finetuned on the frozen classifier's loss (Palacio et al., CVPR 2018).

Cross-entropy only by default; `--energy-penalty W` adds W times the reconstruction's energy relative to the
input's, so that the AE is pushed to drop what the classifier does not need.
"""
from __future__ import annotations

from probe.probes import Penalty, ProbeSpec, register_probe


def relative_energy(model, x, reconstruction, labels):
    """mean(y^2) / mean(x^2) over the batch: 1 when the AE keeps the input's energy."""
    return reconstruction.float().pow(2).mean() / x.float().pow(2).mean().clamp_min(1e-12)


register_probe(ProbeSpec(
    name="autoencoder", model=None, learning_rate=3e-5, epochs=100,
    description="the study's: a waveform autoencoder finetuned in front of the classifier (--autoencoder chooses it)",
    penalty=Penalty("energy", 0.0, "relative energy", relative_energy, needs_reconstruction=True,
                    help="add this times the reconstruction's energy relative to the input's to the loss (0: the study's)"),
))
