"""Training runs (a grid's cells, a cross-validation's folds, the demo's classifiers, pretraining and probes) in worker
processes on one machine, each started once the runs it needs have ended.

Each cell is a whole run, seeded by its own config, so where it runs does not change it: a cell gives the same
checkpoint in a worker as in this process, given the same number of torch threads (the thread count can change a
reduction's order, and so the last bits). `threads` fixes that number.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

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


@dataclass(frozen=True)
class Task:
    """One job for `run_tasks`: `run(*args)`, started once every task named in `needs` has ended. `run` must be a
    module-level function and `args` picklable (a worker process gets them); `cost` is its rough relative length."""

    name: str
    run: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = ()
    cost: float = 1.0


def run_tasks(tasks: Sequence[Task], jobs: int = 1, threads: int | None = None,
              say: Progress | None = None) -> dict[str, Any]:
    """Run every task once the tasks it needs have ended: with one job here, in order; else `jobs` at a time in worker
    processes with `threads_per_job` torch threads each. Of the tasks ready to start, the one heading the costliest
    chain (its own cost and that of the longest line of tasks waiting on it) goes first, so that what others wait for
    starts early and no long task is left alone at the end while the other workers idle. Returns each task's result by
    name. The first failure stops the rest (a training run resumes with --resume) and is raised here."""
    if jobs < 1:
        raise ConfigError(None, f"--jobs is the number of runs trained at once, at least 1; got {jobs}")
    say = say or Progress(False)
    by_name = {task.name: task for task in tasks}
    rank = _chain_costs(tasks)
    results: dict[str, Any] = {}

    def ready() -> list[str]:
        waiting = [name for name in by_name if name not in results and name not in started]
        return sorted((name for name in waiting if all(need in results for need in by_name[name].needs)),
                      key=lambda name: -rank[name])

    started: set[str] = set()
    if jobs == 1 or len(tasks) < 2:
        with torch_threads(threads):
            while len(results) < len(tasks):
                name = ready()[0]
                started.add(name)
                if len(tasks) > 1:
                    say(f"{name} ({len(results) + 1}/{len(tasks)})")
                results[name] = by_name[name].run(*by_name[name].args)
        return results
    from probe.workers import spawn_pool

    workers = min(jobs, len(tasks))
    pool = spawn_pool(workers, threads_per_job(jobs, threads))
    running: dict[Future, str] = {}
    try:
        while len(results) < len(tasks):
            # submitted one per free worker, not all at once: the pool would start its queue in submission order
            for name in ready()[: workers - len(running)]:
                started.add(name)
                running[pool.submit(by_name[name].run, *by_name[name].args)] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                results[name] = future.result()  # raises the task's error here
                say(f"{name} done ({len(results)}/{len(tasks)})")
        return results
    except BaseException:
        for future in running:
            future.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):  # the running tasks: stop them now
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chain_costs(tasks: Sequence[Task]) -> dict[str, float]:
    """Each task's cost plus the costliest chain of tasks that need it; refuses unknown needs, repeated names and
    cycles."""
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(None, f"tasks share a name: {sorted({n for n in names if names.count(n) > 1})}")
    waiting_on: dict[str, list[str]] = {name: [] for name in names}
    for task in tasks:
        for need in task.needs:
            if need not in waiting_on:
                raise ConfigError(None, f"task {task.name!r} needs {need!r}, which is not a task")
            waiting_on[need].append(task.name)
    costs = {task.name: task.cost for task in tasks}
    rank: dict[str, float] = {}

    def chain(name: str, path: tuple[str, ...]) -> float:
        if name in path:
            raise ConfigError(None, f"tasks wait on each other in a circle: {' -> '.join(path + (name,))}")
        if name not in rank:
            rank[name] = costs[name] + max((chain(after, path + (name,)) for after in waiting_on[name]), default=0.0)
        return rank[name]

    for name in names:
        chain(name, ())
    return rank


def run_cells(train: Train, cells: list[Config], resume: bool = False, jobs: int = 1, threads: int | None = None,
              say: Progress | None = None, cost: Callable[[Config], float] | None = None) -> list[RunDir]:
    """`train(cell, resume)` for every cell, in order, or `jobs` at a time in worker processes (`run_tasks`; their
    own progress output off, a line here as each ends), the costliest first by `cost`. Returns the runs in the
    cells' order."""
    parallel = jobs > 1 and len(cells) > 1
    names = cell_names(cells)
    tasks = [Task(name, _train_path, (train, replace(cell, progress=False) if parallel else cell, resume),
                  cost=cost(cell) if cost is not None else 1.0) for name, cell in zip(names, cells)]
    results = run_tasks(tasks, jobs, threads, say)
    return [RunDir(results[name]) for name in names]


def claim_runs(root: str | Path, cells: Sequence[Any]) -> None:
    """Before any run of a grid or cross-validation starts: check every run's folder, and mark `root` and the
    folders between it and the runs as probe's (`probe.outputs`). A user's folder given as --out is refused with
    nothing written."""
    from probe.outputs import check_output, claim_output

    root = Path(root)
    inputs = sorted({path for cell in cells for path in cell.input_paths()})
    holders = {root}
    for cell in cells:
        out = Path(cell.out)
        check_output(out, "run", cell.input_paths())
        holders.update(folder for folder in out.parents if root in folder.parents)
    for folder in sorted(holders):
        check_output(folder, "runs", inputs)
    for folder in sorted(holders):
        claim_output(folder, "runs", inputs)


def cell_names(cells: Sequence[Any]) -> list[str]:
    """Short unique names for runs: their output folders relative to the folder that holds them all."""
    outs = [Path(getattr(cell, "out", str(index))) for index, cell in enumerate(cells)]
    if len(outs) < 2:
        return [out.name for out in outs]
    common = Path(os.path.commonpath([str(out) for out in outs]))
    names = [str(out.relative_to(common)) if out != common else out.name for out in outs]
    return names if len(set(names)) == len(names) else [str(out) for out in outs]


def _train_path(train: Train, cell: Config, resume: bool) -> str:
    return str(train(cell, resume).path)
