"""Atomic files and staged folders: one whole version on disk at every moment, and no leftovers."""
from __future__ import annotations

from pathlib import Path

import pytest

from probe.fileio import atomic_write, staged_directory, write_text


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_staged_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "analysis"
    with staged_directory(target) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "a.txt").write_text("second, unfinished")
        raise RuntimeError("failed half-way")
    assert (target / "a.txt").read_text() == "first"
    with staged_directory(target) as staging:
        (staging / "b.txt").write_text("second")
    assert [p.name for p in target.iterdir()] == ["b.txt"] and [p.name for p in tmp_path.iterdir()] == ["analysis"]


def test_leftovers_of_a_killed_run_are_repaired_at_the_next_start(tmp_path: Path) -> None:
    target = tmp_path / "analysis"
    # Killed between the two renames: the earlier version is set aside and nothing has the final name.
    aside = tmp_path / ".analysis.replaced-4242"
    aside.mkdir()
    (aside / "a.txt").write_text("earlier, whole")
    stale = tmp_path / ".analysis.staging-x1"  # killed while building
    stale.mkdir()
    (stale / "half.txt").write_text("?")
    with pytest.raises(RuntimeError), staged_directory(target):
        raise RuntimeError("this attempt fails too")
    assert (target / "a.txt").read_text() == "earlier, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["analysis"]
