"""Probes: what sits between the audio and the frozen classifier while only it trains.

Each module of this package is one probe: its module (what it puts in front of the classifier) and
its type, in one `register_probe(ProbeSpec(...))` (see `probe.probes.base`). A plugin's probe is
one file of the same shape.
"""
from __future__ import annotations

from probe.probes.base import (AUTOENCODERS, PROBES, Curve, Penalty, Probe, ProbeSpec, get_probe, penalty_of_run,
                               probe_for, probe_module, probe_of_run, register_probe, run_kind)

__all__ = ["AUTOENCODERS", "PROBES", "Curve", "Penalty", "Probe", "ProbeSpec", "get_probe", "load_autoencoder",
           "penalty_of_run", "probe_for", "probe_module", "probe_of_run", "register_probe", "run_kind"]


def __getattr__(name: str):
    # torch loads with the first module built, not with the registry (`probe --help` stays light)
    if name == "load_autoencoder":
        from probe.probes.loading import load_autoencoder

        return load_autoencoder
    raise AttributeError(name)
