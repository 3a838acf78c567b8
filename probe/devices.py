"""Choosing the torch device from a flag."""
from __future__ import annotations

import torch


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto` is the (local) GPU when there is one, else the CPU; anything else goes to torch.device."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
