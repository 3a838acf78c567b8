"""Independent training runs (a grid's cells, a cross-validation's folds) in worker processes on one machine.

Each cell is a whole run, seeded by its own config, so where it runs does not change it: a cell gives the same
checkpoint in a worker as in this process, given the same number of torch threads (the thread count can change a
reduction's order, and so the last bits). `threads` fixes that number.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch

from probe.errors import ConfigError
from probe.progress import Progress
from probe.rundir import RunDir

Config = TypeVar("Config")
Train = Callable[[Config, bool], RunDir]


def threads_per_job(jobs: int, threads: int | None = None) -> int:
    """`threads`, else the cores shared out among the jobs (at least one each)."""
    if threads is not None:
        return threads
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `count` inside the block (None: left alone)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cells(train: Train, cells: list[Config], resume: bool = False, jobs: int = 1, threads: int | None = None,
              say: Progress | None = None, cost: Callable[[Config], float] | None = None) -> list[RunDir]:
    """`train(cell, resume)` for every cell, in order, or `jobs` at a time in worker processes (each with
    `threads_per_job` torch threads; their own progress output off, a line here as each ends), the costliest first
    by `cost` (so that no long run is left alone at the end while the other workers idle). Returns the runs in the
    cells' order. The first failure stops the rest (their runs resume with --resume) and is raised here."""
    if jobs < 1:
        raise ConfigError(None, f"--jobs is the number of runs trained at once, at least 1; got {jobs}")
    say = say or Progress(False)
    if jobs == 1 or len(cells) < 2:
        runs = []
        with torch_threads(threads):
            for number, cell in enumerate(cells, 1):
                if len(cells) > 1:
                    say(f"run {number}/{len(cells)} -> {getattr(cell, 'out', '')}")
                runs.append(train(cell, resume))
        return runs
    from probe.workers import spawn_pool

    quiet = [replace(cell, progress=False) for cell in cells]
    pool = spawn_pool(min(jobs, len(cells)), threads_per_job(jobs, threads))
    futures: list[Future] = []
    try:
        order = sorted(range(len(quiet)), key=lambda i: -cost(cells[i])) if cost is not None else range(len(quiet))
        submitted = {i: pool.submit(_train_path, train, quiet[i], resume) for i in order}
        futures = [submitted[i] for i in range(len(quiet))]
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # raises the cell's error here
                say(f"{Path(future.result()).name} done ({len(futures) - len(remaining)}/{len(futures)})")
        return [RunDir(future.result()) for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):  # the running cells: stop them now
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _train_path(train: Train, cell: Config, resume: bool) -> str:
    return str(train(cell, resume).path)
