"""Multi-GPU training under `torchrun`: one process per GPU, DistributedDataParallel on the AE.

Single-process runs (the default) see `Distributed(rank=0, world_size=1)` and pay nothing.
Under `torchrun --nproc_per_node N probe finetune ...` every rank holds the whole (cached)
dataset, takes its own slice of each batch, and rank 0 alone writes the run directory. Rank 0 decodes (or
generates) the data first and the others read its cache; a classifier's BatchNorm statistics are averaged over
the ranks at every epoch's end.
"""
from __future__ import annotations

import atexit
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, TypeVar

import torch
from torch import nn

from probe.devices import pick_device

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's share of a batch of indices (every world_size-th one)."""
        return batch[self.rank :: self.world_size]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def main_first(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0, then, once it is done, on the other ranks: what rank 0 writes (a decoded cache, a
        generated dataset), the others read, and no two ranks write one file."""
        if not self.enabled:
            return work()
        result = work() if self.is_main else None
        self.barrier()
        return result if self.is_main else work()  # type: ignore[return-value]

    def average_batch_norm(self, module: nn.Module) -> None:
        """Every rank's BatchNorm running statistics replaced by their mean over the ranks: each rank saw its own
        share of every batch, and best.pt must not hold rank 0's alone."""
        if not self.enabled:
            return
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
                for buffer in (layer.running_mean, layer.running_var):
                    if buffer is not None:
                        torch.distributed.all_reduce(buffer)
                        buffer.div_(self.world_size)


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the process group that `torchrun` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(), pick_device(device_name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # Left to the interpreter's teardown, gloo's threads are destroyed still running now and then, and the rank
        # dies with SIGABRT ("terminate called without an active exception") after its work is done: torchrun then
        # calls the whole run failed.
        atexit.register(_leave_group)
    return Distributed(rank, world_size, local_rank), device


def _leave_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(module: nn.Module, dist: Distributed, device: torch.device) -> nn.Module:
    """DDP over the trainable parameters only; frozen buffers (the classifier's BN) are never synced."""
    if not dist.enabled:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)


def no_sync(module: nn.Module, sync: bool) -> ContextManager:
    """Skip the gradient all-reduce on the micro-batches before the last one of a batch."""
    if sync or not isinstance(module, nn.parallel.DistributedDataParallel):
        return nullcontext()
    return module.no_sync()
