"""Worker processes for the parts that run side by side on one machine (grid cells, report figures).

Spawned, not forked: the parent may hold torch's or BLAS's thread pools, which a forked child can deadlock on. Each
worker dies with its parent: a `kill -9` of `probe report` or `probe finetune --jobs` must not leave workers behind
(they would wait for work forever, each holding its imports' memory).
"""
from __future__ import annotations

import os
import signal
from concurrent.futures import ProcessPoolExecutor


def spawn_pool(workers: int, torch_threads: int | None = None) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes, each with `torch_threads` torch threads (None: torch not set up) and
    killed when this process ends, however it ends."""
    import multiprocessing

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(os.getpid(), torch_threads))


def _start_worker(parent: int, torch_threads: int | None) -> None:
    _die_with(parent)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)


def _die_with(parent: int) -> None:
    """Ask the kernel to kill this process when its parent exits (Linux); elsewhere, nothing."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
