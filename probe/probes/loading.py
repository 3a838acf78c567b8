"""The one door that builds a probe's module by registered name, or loads one from probe's checkpoints."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from probe.models.checkpoint import AUTOENCODER_FORMAT, CHECKPOINT_SUFFIXES, extract_state_dict, load_state_dict_strict, read_checkpoint
from probe.probes.base import AUTOENCODERS

log = logging.getLogger(__name__)


def load_autoencoder(
    name: str, weights: str | Path | None = None, *, device: str | torch.device = "cpu", **options: Any
) -> nn.Module:
    """Build a registered module (`AUTOENCODERS`), or load one of probe's checkpoints by path, and load `weights`.

    `weights` may be a checkpoint written by probe, or whatever the module's own `load_weights` reads (the
    ArchiSound hub's `pytorch_model.bin`, keys prefixed `autoencoder.`, or a bare AutoEncoder1d state_dict).
    """
    checkpoint = None
    if weights is None and Path(name).suffix in CHECKPOINT_SUFFIXES and Path(name).exists():
        weights = name
    if weights is not None:
        checkpoint = read_checkpoint(weights)
        if isinstance(checkpoint, dict) and checkpoint.get("format") == AUTOENCODER_FORMAT:
            if Path(name).exists():
                name = checkpoint["autoencoder"]
            options = {**checkpoint.get("options", {}), **options}
    spec = AUTOENCODERS.lookup(name)
    model = spec.builder(**options)
    if checkpoint is not None:
        state = extract_state_dict(checkpoint, weights)
        adapt = getattr(model, "adapt_state_dict", None)
        load_state_dict_strict(model, adapt(state) if adapt else state, weights)
    elif spec.weights:
        log.warning("%s built without weights: pass --ae-weights (probe download weights %s)", name, spec.weights[0].name)
    return model.to(device).eval()
