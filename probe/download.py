"""Downloads of the published weights and of ESC-50 (PaSST's 32 kHz release).

Streams with a progress bar into `<file>.part`, resumes a partial `.part` with an HTTP
Range request, verifies SHA-256 where a hash is recorded, and renames into place only
when complete. Archives are unpacked with every member path checked, into a staging
folder that is renamed into place.
"""
from __future__ import annotations

import os
import urllib.error
import logging
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from probe.errors import CheckpointError, DownloadError
from probe.fileio import sha256_file, write_text
from probe.outputs import staged_directory
from probe.locks import waiting_for
from probe.models.registry import WeightSource
from probe.zoo import all_weight_sources
from probe.progress import bars_enabled

ESC50_ARCHIVE = WeightSource(
    "esc50",
    "https://github.com/kkoutini/PaSST/releases/download/v.0.0.6/esc50.zip",
    "esc50.zip",
    note="ESC-50 resampled to 32 kHz (audio_32k/, meta/esc50.csv), from PaSST's release v.0.0.6",
)
log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


def probe_home() -> Path:
    """Where probe keeps downloads: $PROBE_HOME, else ~/.cache/probe."""
    return Path(os.environ.get("PROBE_HOME", Path.home() / ".cache" / "probe"))


def default_weights_dir() -> Path:
    return probe_home() / "weights"


def weight_sources() -> dict[str, WeightSource]:
    """Every downloadable checkpoint by name."""
    return all_weight_sources()


def resolve_weights(value: str | Path, weights_dir: str | Path | None = None) -> Path:
    """A checkpoint flag's value (`--classifier-weights`, `--ae-weights`): an existing path, or the name of a published checkpoint already downloaded."""
    path = Path(value)
    if path.exists():
        return path
    sources = weight_sources()
    if str(value) in sources:
        local = Path(weights_dir or default_weights_dir()) / sources[str(value)].filename
        if local.exists():
            return local
        raise CheckpointError(local, f"not downloaded yet: run `probe download weights {value}`")
    raise CheckpointError(path, "no such file, and not the name of a published checkpoint"
                          + did_you_mean(str(value), sources) + "; see `probe download weights --list`")


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """` (did you mean a or b?)` for the names closest to `name`, or nothing where none is close."""
    close = closest_names(name, names)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def closest_names(name: str, names: Iterable[str], most: int = 3) -> list[str]:
    """The published names `name` was likeliest meant to be: those it begins (`mn10` -> `mn10_as`), else the nearest
    spellings; at most `most`."""
    import difflib

    names = sorted(names)
    return ([known for known in names if known.startswith(name)] or difflib.get_close_matches(name, names, n=most))[:most]


def recorded_hash_path(destination: Path) -> Path:
    """Where the hash of a file with no published SHA-256 is kept after its first download."""
    return destination.with_name(destination.name + ".sha256")


def download(
    url: str, destination: str | Path, sha256: str | None = None, *, size_bytes: int | None = None, progress: bool = True
) -> Path:
    """Fetch `url` to `destination`, resuming `<destination>.part`, verifying `sha256` if given.

    Without a published hash the first download's SHA-256 is recorded beside the file
    (trust on first use), and every later download of it is checked against that record.
    """
    from tqdm import tqdm

    destination = Path(destination)
    record = recorded_hash_path(destination)
    published = sha256 is not None
    if not published and record.exists():
        sha256 = record.read_text().split()[0]
    if destination.exists() and (sha256 is None or sha256_file(destination) == sha256):
        return destination  # checked before the lock too: jobs that find the file whole need not queue to hash it
    # two jobs that need one file: the second waits, then finds it complete (one .part, never two writers)
    with waiting_for(destination.parent, f"downloading into {destination.parent}"):
        if destination.exists() and (sha256 is None or sha256_file(destination) == sha256):
            return destination
        partial = destination.with_name(destination.name + ".part")
        offset = partial.stat().st_size if partial.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "probe"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # the .part is already complete
                response = None
            else:
                raise DownloadError(url, f"HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(url, f"cannot connect ({reason}); are you offline?") from exc
        if response is not None:
            with response:
                resumed = response.status == 206
                if not resumed:
                    offset = 0
                length = response.headers.get("Content-Length")
                total = offset + int(length) if length else None
                if total is not None and size_bytes is not None and total != size_bytes:
                    raise DownloadError(url, f"the server offers {total} bytes, the published file has {size_bytes}; nothing was downloaded")
                with open(partial, "ab" if resumed else "wb") as handle, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=destination.name, disable=not bars_enabled(progress)
                ) as bar:
                    try:
                        for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                            handle.write(chunk)
                            bar.update(len(chunk))
                    except OSError as exc:
                        raise DownloadError(url, f"connection lost after {handle.tell()} bytes; run again to resume") from exc
                    handle.flush()
                    os.fsync(handle.fileno())
                if total is not None and partial.stat().st_size != total:
                    raise DownloadError(url, f"incomplete: {partial.stat().st_size} of {total} bytes; run again to resume")
        actual = sha256_file(partial)
        if sha256 is not None and actual != sha256:
            partial.unlink()
            origin = "published" if published else f"recorded at the first download in {record.name}"
            raise DownloadError(destination, f"SHA-256 mismatch: got {actual}, expected {sha256} ({origin}); the file was deleted")
        os.replace(partial, destination)
        if sha256 is None:
            write_text(record, f"{actual}  {destination.name}\n")
            log.warning(
                "%s: no published SHA-256; recorded %s... in %s, and later downloads are checked against it",
                destination.name, actual[:16], record.name,
            )
        return destination


def download_source(source: WeightSource, directory: str | Path, *, mirror: str | None = None, progress: bool = True) -> Path:
    """Download one published file into `directory`; `mirror` replaces everything before its file name."""
    url = mirror.rstrip("/") + "/" + source.filename if mirror else source.url
    return download(url, Path(directory) / source.filename, source.sha256, size_bytes=source.size_bytes, progress=progress)


def safe_extract(archive: str | Path, destination: str | Path) -> Path:
    """Unpack a zip into `destination`, refusing absolute paths, `..` members and links."""
    archive, destination = Path(archive), Path(destination)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                parts = PurePosixPath(member.filename.replace("\\", "/"))
                if parts.is_absolute() or ".." in parts.parts or (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DownloadError(archive, f"unsafe archive member {member.filename!r}; nothing was unpacked")
            with staged_directory(destination, "dataset") as staging:
                bundle.extractall(staging)
    except zipfile.BadZipFile as exc:
        raise DownloadError(archive, f"not a valid zip archive ({exc})") from exc
    return destination


def find_esc50_root(folder: Path) -> Path:
    """The folder under `folder` that holds meta/esc50.csv."""
    for csv_path in sorted(folder.rglob("esc50.csv")):
        if csv_path.parent.name == "meta":
            return csv_path.parent.parent
    raise DownloadError(folder, "the archive holds no meta/esc50.csv")


def download_esc50(directory: str | Path, *, mirror: str | None = None, progress: bool = True) -> Path:
    """Fetch and unpack PaSST's 32 kHz ESC-50; returns the folder to pass as `--data esc50:DIR`."""
    directory = Path(directory)
    archive = download_source(ESC50_ARCHIVE, directory, mirror=mirror, progress=progress)
    return find_esc50_root(safe_extract(archive, directory / "esc50"))
