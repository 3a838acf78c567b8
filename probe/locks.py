"""Advisory file locks that keep two processes out of one run directory or one download.

`flock` locks die with their process (a `kill -9` or a pre-empted cluster job frees them), so no stale lock is
ever left to clear by hand. The lock file holds the holder's pid, host and job id for the error message and for
`probe status`.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

from probe.errors import ConfigError

LOCK_FILE = ".lock"
_HELD: dict[str, tuple[int, bool]] = {}
"""Locks this process holds, by path, with whether taking it made the run directory: taking one twice is a no-op
(flock would refuse a second open of the file)."""


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock at `path` (pid, host, job), or None when nobody does (or there is no lock file)."""
    if not path.is_file():
        return None
    if str(path) in _HELD:
        return _who(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _who(path)
    finally:
        os.close(fd)  # closing drops a shared lock taken here
    return None


def _who(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def hold_run(folder: Path) -> None:
    """Take the run directory's lock for the rest of this process (the run's trainer holds it until it exits); a run
    another process is training is the one-line error naming it."""
    created = not folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    if str(path) in _HELD:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = _who(path)
        raise ConfigError(folder, f"is being trained by another process (pid {who.get('pid', '?')} on "
                                  f"{who.get('host', '?')}{', job ' + str(who['job']) if who.get('job') else ''}): "
                                  "wait for it, or stop it first") from None
    _stamp(fd)
    _HELD[str(path)] = (fd, created)


def release_run(folder: Path, tidy: tuple[str, ...] = ()) -> None:
    """Give the run directory's lock back (a process that trains several runs one after another). Where taking the
    lock made the folder, the files named in `tidy` go too, with the lock file and the folder where that empties it:
    a run that failed before it started leaves nothing half-written (a decode cache, a whole artefact, stays)."""
    folder = Path(folder)
    fd, created = _HELD.pop(str(folder / LOCK_FILE), (None, False))
    if fd is None:
        return
    if created and tidy:
        for name in tidy:
            (folder / name).unlink(missing_ok=True)
        if {path.name for path in folder.iterdir()} == {LOCK_FILE}:
            (folder / LOCK_FILE).unlink()  # while still held: no other process can have taken it meanwhile
            with contextlib.suppress(OSError):
                folder.rmdir()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def waiting_for(folder: Path, what: str) -> Iterator[None]:
    """Hold the lock of the folder itself for the block, waiting (and saying so once on stderr) while another process
    holds it: of two jobs that download one file, the second waits and then finds it complete. A folder's own lock
    leaves no file behind."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"probe: waiting for another process, which is {what}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _stamp(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "job": os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_JOB_ID")}).encode(), 0)
