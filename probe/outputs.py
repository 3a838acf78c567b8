"""Output folders: probe writes, replaces or resumes only folders it made itself.

Every folder a command writes carries a marker file (`.probe-output.json`) naming what made it: its kind (a run,
an analysis, a report, ...) and probe's version. Before a command writes into or replaces a folder,
`check_output` asks three things:

- the folder is new, empty, or carries the marker of the same kind (anything else may be a user's own files);
- it is not the filesystem root, the home folder, the working folder or a folder above either of them;
- it is neither inside one of the command's inputs nor holds one of them (`probe analyse RUN --out RUN` would
  replace the run it reads).

Otherwise the command stops with one line naming the folder and what is in it, before anything is touched.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from probe.errors import ConfigError, WriteError
from probe.fileio import fsync_dir, write_json
from probe.locks import LOCK_FILE

MARKER = ".probe-output.json"

KINDS = {
    "run": "a training run",
    "runs": "a folder of training runs (a grid or cross-validation)",
    "analysis": "an analysis (probe analyse or probe compare)",
    "report": "an HTML report",
    "figures": "a figures folder",
    "reconstructions": "a reconstructions folder",
    "demo": "a demo folder",
    "dataset": "a dataset probe wrote (synthetic, or a download)",
}
"""The kinds of folder probe writes, and how an error names them."""


def _version() -> str:
    from probe import __version__

    return __version__


def marker_kind(folder: str | Path) -> str | None:
    """The kind a folder's marker names; None where it has none (or an unreadable one)."""
    try:
        return json.loads((Path(folder) / MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def write_marker(folder: str | Path, kind: str) -> None:
    """Mark `folder` as made by probe, as `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    write_json(Path(folder) / MARKER, {"kind": kind, "made_by": f"probe {_version()}"})


TRANSIENT = {LOCK_FILE}
"""probe's own bookkeeping, which a killed run can leave in an otherwise empty folder (the run lock)."""

LEGACY = {
    "run": lambda folder: (folder / "config.json").is_file() and any(
        (folder / name).exists() for name in ("metrics.jsonl", "latest.pt", "done.json", "folds.json")),
    "analysis": lambda folder: (folder / "summary.json").is_file() and (folder / "comparison").is_dir(),
    "report": lambda folder: (folder / "index.html").is_file() and (folder / "style.css").is_file(),
    "dataset": lambda folder: (folder / "meta" / "dataset.json").is_file(),
}
"""How a folder probe wrote before folders carried a marker is recognised: by the files only its kind writes."""


def legacy_kind(folder: Path) -> str | None:
    """The kind of an unmarked folder an earlier probe wrote (`LEGACY`), else None; a folder of such runs is `runs`."""
    for kind, looks_like in LEGACY.items():
        if looks_like(folder):
            return kind
    children = [child for child in folder.iterdir() if child.is_dir()]
    if children and all(LEGACY["run"](child) or legacy_kind(child) == "runs" for child in children):
        return "runs"
    return None


def _protected() -> list[Path]:
    """Folders no command may write into or replace, with every folder above them."""
    return [Path(os.path.expanduser("~")).resolve(), Path.cwd().resolve()]


def _contents(folder: Path, limit: int = 3) -> str:
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:limit])
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} ({shown}{more})"


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output(folder: str | Path, kind: str, inputs: Iterable[str | Path | None] = (), flag: str = "--out") -> Path:
    """Refuse (a `ConfigError`, nothing touched) an output folder probe may not write as `kind`; returns it resolved."""
    given = Path(folder).expanduser()
    path = given.resolve()
    if path == Path(path.anchor):
        raise ConfigError(given, f"is the filesystem root: give {flag} a folder of its own")
    home, working = _protected()
    for protected, what in ((home, "your home folder"), (working, "the working folder")):
        if _is_within(protected, path):
            where = what if protected == path else f"a folder above {what}"
            raise ConfigError(given, f"is {where}: give {flag} a folder of its own")
    for source in inputs:
        if source is None or not str(source):
            continue
        source_path = Path(source).expanduser()
        if not source_path.exists():
            continue
        source_path = source_path.resolve()
        if _is_within(source_path, path):
            raise ConfigError(given, f"holds the input {source}, which writing there could replace: give {flag} "
                                     "another folder")
        if _is_within(path, source_path) and source_path.is_dir():
            raise ConfigError(given, f"is inside the input {source}: give {flag} a folder outside what the command reads")
    try:
        if not path.exists():
            return path
        if not path.is_dir():
            raise ConfigError(given, f"is a file, not a folder: give {flag} a folder")
        entries = [entry.name for entry in path.iterdir()]
    except PermissionError as exc:
        raise ConfigError(given, f"cannot be read ({exc.strerror}): give {flag} a folder you can write") from None
    if not set(entries) - TRANSIENT:
        return path
    found = marker_kind(path) or legacy_kind(path)
    if found == kind:
        return path
    if found in KINDS:
        raise ConfigError(given, f"holds {KINDS[found]}, not {KINDS[kind]}: give {flag} another folder")
    raise ConfigError(given, f"holds {_contents(path)} that probe did not write, so it is left alone: give {flag} a "
                             "new or empty folder")


def claim_output(folder: str | Path, kind: str, inputs: Iterable[str | Path | None] = (), flag: str = "--out") -> Path:
    """`check_output`, then create the folder and mark it (for a command that writes into its folder)."""
    path = check_output(folder, kind, inputs, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(folder, f"cannot create the folder: {exc.strerror or exc}") from exc
    if marker_kind(path) != kind:
        write_marker(path, kind)
    return Path(folder)


@contextlib.contextmanager
def staged_directory(destination: str | Path, kind: str, inputs: Iterable[str | Path | None] = (),
                     flag: str = "--out") -> Iterator[Path]:
    """Yield an empty staging folder beside `destination`; on success it replaces `destination` whole.

    `destination` must pass `check_output` for `kind` first; the staging folder gets the marker. The old folder is
    renamed aside before the new one is renamed in, so at every moment one whole version exists on disk. Leftovers
    of a killed earlier attempt (staging or set-aside folders) are removed first.
    """
    import glob

    destination = Path(destination)
    check_output(destination, kind, inputs, flag)
    name = glob.escape(destination.name)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        for stale in destination.parent.glob(f".{name}.staging-*"):  # a killed run's half-made folder
            shutil.rmtree(stale, ignore_errors=True)
        for stale in destination.parent.glob(f".{name}.replaced-*"):
            if marker_kind(stale) not in (kind, None) and legacy_kind(stale) != kind:
                continue
            if destination.exists():
                shutil.rmtree(stale, ignore_errors=True)
            else:  # killed between the two renames: the set-aside folder is the last whole version
                stale.rename(destination)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-", dir=destination.parent))
        write_marker(staging, kind)
    except OSError as exc:
        raise WriteError(destination, f"cannot write here: {exc.strerror or exc}") from exc
    try:
        yield staging
        check_output(destination, kind, inputs, flag)  # again: the folder may have changed while the work ran
        try:
            aside = None
            if destination.exists():
                aside = destination.with_name(f".{destination.name}.replaced-{os.getpid()}")
                destination.rename(aside)
            staging.rename(destination)
            fsync_dir(destination.parent)
            if aside is not None:
                shutil.rmtree(aside)
        except OSError as exc:
            if aside is not None and aside.exists() and not destination.exists():
                aside.rename(destination)  # put the earlier version back
            raise WriteError(destination, f"cannot replace it: {exc.strerror or exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
