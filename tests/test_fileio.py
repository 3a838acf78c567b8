"""Atomic files and staged folders: one whole version on disk at every moment, and no leftovers."""
from __future__ import annotations

from pathlib import Path

import pytest

from probe.fileio import atomic_write, write_text
from probe.outputs import staged_directory


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_staged_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "analysis"
    with staged_directory(target, "report") as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), staged_directory(target, "report") as staging:
        (staging / "a.txt").write_text("second, unfinished")
        raise RuntimeError("failed half-way")
    assert (target / "a.txt").read_text() == "first"
    with staged_directory(target, "report") as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == [".probe-output.json", "b.txt"] and [p.name for p in tmp_path.iterdir()] == ["analysis"]


def test_leftovers_of_a_killed_run_are_repaired_at_the_next_start(tmp_path: Path) -> None:
    target = tmp_path / "analysis"
    # Killed between the two renames: the earlier version is set aside and nothing has the final name.
    aside = tmp_path / ".analysis.replaced-4242"
    aside.mkdir()
    (aside / "a.txt").write_text("earlier, whole")
    stale = tmp_path / ".analysis.staging-x1"  # killed while building
    stale.mkdir()
    (stale / "half.txt").write_text("?")
    with pytest.raises(RuntimeError), staged_directory(target, "report"):
        raise RuntimeError("this attempt fails too")
    assert (target / "a.txt").read_text() == "earlier, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["analysis"]


def test_npy_rows_read_what_numpy_wrote_and_refuse_what_it_cannot(tmp_path: Path) -> None:
    """Round trip: every way the analyses index clips gives numpy's own answer; a truncated or non-.npy file gets an
    error naming it."""
    import numpy as np
    import pytest

    from probe.errors import ProbeError
    from probe.fileio import NpyRows

    array = np.random.default_rng(0).standard_normal((7, 3, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    rows = NpyRows(tmp_path / "a.npy")
    assert rows.shape == array.shape and len(rows) == 7 and rows.dtype == array.dtype
    for key in (slice(2, 5), slice(None), slice(5, 2), slice(0, 7, 3), [6, 0, 3], np.array([1, 1]), -1, 4):
        assert np.array_equal(rows[key], array[key]), key
    assert np.array_equal(np.asarray(rows), array)
    with pytest.raises(IndexError):
        rows[7]
    (tmp_path / "short.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-8])
    with pytest.raises(ProbeError, match="truncated"):
        NpyRows(tmp_path / "short.npy")[5:7]
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ProbeError, match="text.npy.*not a readable .npy"):
        NpyRows(tmp_path / "text.npy")
