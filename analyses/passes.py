"""How many samples one pass through the classifier may carry while attributions are computed: measured, per
classifier and input shape, from what autograd keeps for the backward pass, against a fixed memory budget."""
from __future__ import annotations

import weakref
from typing import Any, Callable

import torch

from probe.analyses.config import AttributionSettings
from probe.devices import saved_tensor_bytes, total_memory_bytes


def memory_budget_bytes(settings: AttributionSettings, device: torch.device) -> int:
    """The attributions' memory budget: --max-memory, else half the GPU (CUDA) or a quarter of the RAM, at most
    4 GB (CPU). From totals, not from what is free now, so that the chunking, and so the numbers, repeat."""

    if settings.max_memory_gb is not None:
        return int(settings.max_memory_gb * 2**30)
    if device.type == "cuda":
        return total_memory_bytes(device) // 2
    return min(total_memory_bytes(device) // 4, 4 * 2**30)


def activation_bytes_per_sample(forward: Callable, mel: torch.Tensor) -> int:
    """The bytes autograd keeps for the backward pass per sample: what one more sample in a pass costs.

    Measured on batches of 1 and 2 (`saved_tensor_bytes`; the weights, saved once per pass, cancel)."""
    def saved(batch: torch.Tensor) -> int:
        return saved_tensor_bytes(lambda: forward(batch.detach().clone().requires_grad_()).sum())

    one = mel[:1]
    return max(1, saved(torch.cat([one, one])) - saved(one))


_MEASURED: "weakref.WeakKeyDictionary[Any, dict[tuple, int]]" = weakref.WeakKeyDictionary()
"""Per classifier (the forward's owner), its measured bytes per sample by input shape: measuring costs three
passes (on PaSST with 5 s clips, seconds), and every method and condition would otherwise measure again."""


def samples_per_pass(forward: Callable, mel: torch.Tensor, settings: AttributionSettings, device: torch.device) -> int:
    """How many samples one forward and backward pass may carry within the budget. A third of the budget goes to
    the saved activations: their gradients and the allocator's slack take about as much again each."""
    owner = getattr(forward, "__self__", None)
    known = _MEASURED.setdefault(owner, {}) if owner is not None else {}
    key = (getattr(forward, "__name__", ""), tuple(mel.shape[1:]), mel.dtype, str(mel.device))
    per_sample = known.get(key) or activation_bytes_per_sample(forward, mel)
    known[key] = per_sample
    return int(max(1, min(1024, memory_budget_bytes(settings, device) // (3 * per_sample))))
