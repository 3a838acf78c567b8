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

from probe.errors import ProbeError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync it and rename it onto `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ProbeError(path, f"cannot write here: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ProbeError(path, f"cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
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


@contextlib.contextmanager
def staged_directory(destination: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `destination`; on success it replaces `destination` whole.

    The old folder is renamed aside before the new one is renamed in, so at every moment one whole
    version exists on disk. Leftovers of a killed earlier attempt (staging or set-aside folders) are
    removed first.
    """
    import shutil

    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        for stale in destination.parent.glob(f".{destination.name}.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in destination.parent.glob(f".{destination.name}.replaced-*"):
            if destination.exists():
                shutil.rmtree(stale, ignore_errors=True)
            else:  # killed between the two renames: the set-aside folder is the last whole version
                stale.rename(destination)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-", dir=destination.parent))
    except OSError as exc:
        raise ProbeError(destination, f"cannot write here: {exc.strerror or exc}") from exc
    try:
        yield staging
        try:
            aside = None
            if destination.exists():
                aside = destination.with_name(f".{destination.name}.replaced-{os.getpid()}")
                destination.rename(aside)
            staging.rename(destination)
            _fsync_dir(destination.parent)
            if aside is not None:
                shutil.rmtree(aside)
        except OSError as exc:
            if aside is not None and aside.exists() and not destination.exists():
                aside.rename(destination)  # put the earlier version back
            raise ProbeError(destination, f"cannot replace it: {exc.strerror or exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def safe_name(text: str) -> str:
    """A file- and URL-safe version of a label: anything outside [A-Za-z0-9_.@-] becomes `_`."""
    import re

    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("._") or "run"
