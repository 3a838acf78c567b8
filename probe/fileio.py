"""Atomic file writes: a reader never sees a half-written artefact.

Every output goes to a temporary file in the destination folder, is fsynced, and is
renamed over the target in one step. A crash leaves either the old file or the new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from probe.errors import ProbeError, WriteError


TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync it and rename it onto `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise WriteError(path, f"cannot write here: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(path, f"cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_write` left beneath `folder` when its process was killed mid-write (SIGKILL
    cannot be caught, so nothing tidies them then); returns them. Call it only while holding the folder's lock: a live
    writer's temporary file would go too."""
    stale = sorted(Path(folder).rglob(f".*{TEMP_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def fsync_dir(folder: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(text: str) -> str:
    """A file- and URL-safe version of a label: anything outside [A-Za-z0-9_.@-] becomes `_`."""
    import re

    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("._") or "run"


class NpyRows:
    """The rows of a C-ordered .npy file, read from disk when asked for: `rows[i]`, `rows[a:b]` and `rows[indices]`
    give arrays, `len(rows)` and `rows.shape` work without reading. Unlike a memory map, nothing read stays in the
    process's resident memory afterwards, so an analysis that reads its clips in chunks holds one chunk at a time
    however many clips the file has."""

    def __init__(self, path: str | Path) -> None:
        import numpy as np

        self.path = Path(path)
        try:
            with open(self.path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(handle)
                self.offset = handle.tell()
        except (OSError, ValueError) as exc:
            raise ProbeError(self.path, f"not a readable .npy file: {exc}") from exc
        if fortran or not shape or dtype.hasobject:
            raise ProbeError(self.path, "expected a C-ordered numeric array with at least one axis")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = dtype
        self.ndim = len(shape)
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        import numpy as np

        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} of {len(self)}")
            return self._read(index, index + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read(start, max(start, stop))
            key = np.arange(start, stop, step)
        indices = np.asarray(key)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        indices = indices.astype(np.int64).ravel()
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.dtype)
        for position, index in enumerate(indices):
            out[position] = self[int(index)]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = self._read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, start: int, stop: int):
        import numpy as np

        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        if stop > start:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset + start * self._row_bytes)
                if handle.readinto(memoryview(out).cast("B")) != out.nbytes:
                    raise ProbeError(self.path, f"truncated: rows {start}-{stop} are not all there")
        return out
