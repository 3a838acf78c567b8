"""Reading checkpoints safely and loading them strictly, with errors a user can act on."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from probe.errors import CheckpointError

MAX_LISTED_MISMATCHES = 5
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
"""A model argument ending in one of these is a checkpoint path, not a registered name."""
CLASSIFIER_FORMAT = "probe-classifier/1"
AUTOENCODER_FORMAT = "probe-autoencoder/1"
"""The `format` field of the checkpoints probe writes (the network's state_dict plus what rebuilds it)."""


def read_checkpoint(path: str | Path) -> Any:
    """`torch.load(weights_only=True)` on CPU, so a pickle can never run code; clear errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise CheckpointError(path, f"refused or corrupt checkpoint ({first})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"corrupt or truncated checkpoint ({first})") from exc


def extract_state_dict(obj: Any, path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """Find the state_dict inside a checkpoint (plain, or under 'state_dict'/'model'/'autoencoder'),
    and strip `prefix` from its keys when every key carries it."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "autoencoder"):
            if key in obj and isinstance(obj[key], Mapping) and not isinstance(obj[key], torch.Tensor):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(path, "not a state_dict (expected a mapping of names to tensors)")
    state = dict(obj)
    if prefix and state and all(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Load `state` into `model`, requiring every key and shape to match; list the first mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape)):
        if items:
            shown = ", ".join(items[:MAX_LISTED_MISMATCHES])
            more = f" (+{len(items) - MAX_LISTED_MISMATCHES} more)" if len(items) > MAX_LISTED_MISMATCHES else ""
            problems.append(f"{len(items)} {label}: {shown}{more}")
    if problems:
        raise CheckpointError(path, "does not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
