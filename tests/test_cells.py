"""`probe.train.cells.run_tasks`: tasks start once what they need has ended, the costliest chain first; errors surface."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from probe.errors import ConfigError
from probe.train.cells import Task, cell_names, run_tasks


def _chain(tmp_path) -> list[Task]:
    """b copies what a writes a second late, c copies b: run out of order, a copy finds no file and fails."""
    a, b, c = (tmp_path / name for name in "abc")
    return [
        Task("c", shutil.copyfile, (str(b), str(c)), needs=("b",)),
        Task("b", shutil.copyfile, (str(a), str(b)), needs=("a",)),
        Task("a", subprocess.run, (["sh", "-c", f"sleep 1 && echo planted > {a}"],), cost=0.1),
        Task("free", subprocess.run, (["true"],)),
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_tasks_start_after_what_they_need(tmp_path, jobs):
    results = run_tasks(_chain(tmp_path), jobs=jobs, threads=1)
    assert (tmp_path / "c").read_text() == "planted\n"
    assert set(results) == {"a", "b", "c", "free"}
    assert results["c"] == str(tmp_path / "c")  # each task's own return value, by name


def test_the_costliest_chain_starts_first():
    order: list[str] = []
    tasks = [Task("short", order.append, ("short",), cost=2.0),  # costlier alone than "head" ...
             Task("head", order.append, ("head",), cost=1.0),
             Task("tail", order.append, ("tail",), needs=("head",), cost=5.0)]  # ... but "head" leads a chain of 6
    run_tasks(tasks, jobs=1)
    assert order == ["head", "tail", "short"]


def test_a_failing_task_is_raised_and_its_dependants_never_start(tmp_path):
    tasks = [Task("broken", shutil.copyfile, (str(tmp_path / "missing"), str(tmp_path / "x"))),
             Task("after", shutil.copyfile, (str(tmp_path / "x"), str(tmp_path / "y")), needs=("broken",))]
    with pytest.raises(FileNotFoundError, match="missing"):
        run_tasks(tasks, jobs=2, threads=1)
    assert not (tmp_path / "y").exists()


def test_bad_task_lists_are_refused():
    noop = Task("a", print)
    with pytest.raises(ConfigError, match="needs 'b', which is not a task"):
        run_tasks([Task("a", print, needs=("b",))])
    with pytest.raises(ConfigError, match="share a name"):
        run_tasks([noop, noop])
    with pytest.raises(ConfigError, match="circle: a -> b -> a"):
        run_tasks([Task("a", print, needs=("b",)), Task("b", print, needs=("a",))])
    with pytest.raises(ConfigError, match="--jobs"):
        run_tasks([noop], jobs=0)


def test_cell_names_are_the_runs_folders_under_their_common_parent():
    class Cell:
        def __init__(self, out):
            self.out = out

    assert cell_names([Cell("/r/mn10--pre/fold-1"), Cell("/r/mn10--pre/fold-2"), Cell("/r/passt--pre/fold-1")]) == [
        "mn10--pre/fold-1", "mn10--pre/fold-2", "passt--pre/fold-1"]
    assert cell_names([Cell("/r/only")]) == ["only"]
