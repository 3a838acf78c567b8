"""The one door that loads autoencoders (and probes) by registered name or from probe's checkpoints."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from probe.models.archisound import (CITATION, TINY_CONFIG, AutoencoderConfig, WaveformAutoencoder, describe,  # noqa: F401
                                     load_archisound_from_hub, xavier_init)
from probe.models.checkpoint import AUTOENCODER_FORMAT, CHECKPOINT_SUFFIXES, extract_state_dict, load_state_dict_strict, read_checkpoint
from probe.models.zoo import get_spec

__all__ = ["load_autoencoder", "AutoencoderConfig", "WaveformAutoencoder", "TINY_CONFIG", "CITATION", "describe",
           "load_archisound_from_hub", "xavier_init"]

log = logging.getLogger(__name__)


def load_autoencoder(
    name: str, weights: str | Path | None = None, *, device: str | torch.device = "cpu", **options: Any
) -> nn.Module:
    """Build a registered autoencoder, or load one of probe's AE checkpoints by path, and load `weights`.

    `weights` may be the hub's `pytorch_model.bin` (keys prefixed `autoencoder.`), a bare
    AutoEncoder1d state_dict, or a checkpoint written by probe.
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
    spec = get_spec("autoencoder", name)
    model = spec.builder(**options)
    if checkpoint is not None:
        state = extract_state_dict(checkpoint, weights)
        if isinstance(model, WaveformAutoencoder) and not any(key.startswith("autoencoder.") for key in state):
            state = {f"autoencoder.{key}": value for key, value in state.items()}
        load_state_dict_strict(model, state, weights)
    elif spec.weights and name == "archisound":
        log.warning("archisound built without weights: pass --ae-weights (probe download weights archisound_at_v1)")
    return model.to(device).eval()
