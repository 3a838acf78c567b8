"""The decoded-audio cache: a split decoded and resampled once into one contiguous array.

The array (clips, samples) of mono float32 at the target rate is stored as a `.npy` file and
memory-mapped, so an epoch does no per-file decoding. The cache key covers every file's
content, the sample rate and the clip length: edit, add or remove a file and it is rebuilt.
Unreadable files are skipped and listed (or fail the build with `strict=True`).
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from probe.audio import fit_length, load_audio
from probe.data import DEFAULT_CLIP_SECONDS, Clip, ClipDataset
from probe.errors import AudioError, DatasetError, WriteError
from probe.fileio import write_json
from probe.progress import bars_enabled

log = logging.getLogger(__name__)


@dataclass
class DecodedSplit:
    """Waveforms (clips, samples) at `sample_rate`, aligned with `clips`; `skipped` lists (clip_id, reason)."""

    waveforms: np.ndarray
    clips: tuple[Clip, ...]
    sample_rate: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def targets(self) -> np.ndarray:
        return np.array([c.target for c in self.clips], dtype=np.int64)

    @property
    def clip_ids(self) -> list[str]:
        return [c.clip_id for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def as_tensor(self) -> "torch.Tensor":
        """The waveforms as a writable float32 tensor (a copy of the memory-mapped array)."""
        import torch

        return torch.from_numpy(np.array(self.waveforms, dtype=np.float32))

    def tensors(self, device: "torch.device | str") -> tuple["torch.Tensor", "torch.Tensor"]:
        """(waveforms, targets) as tensors on `device`, for training held in device memory."""
        import torch

        return self.as_tensor().to(device), torch.from_numpy(self.targets).to(device)


def content_key(dataset: ClipDataset, sample_rate: int, num_samples: int) -> str:
    """A digest of every file's bytes, the clip ids, the rate and the length."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{sample_rate}:{num_samples}:{len(dataset.clips)}".encode())
    for clip in dataset.clips:
        digest.update(clip.clip_id.encode() + b"\0")
        try:
            with open(clip.path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()


def decode_split(
    dataset: ClipDataset,
    sample_rate: int,
    *,
    clip_seconds: float | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    progress: bool = True,
) -> DecodedSplit:
    """Decode, down-mix, resample and pad/crop every clip of `dataset`, through the cache when given."""
    seconds = clip_seconds or dataset.clip_seconds or DEFAULT_CLIP_SECONDS
    num_samples = int(round(seconds * sample_rate))
    if cache_dir is None:
        return _decode(dataset, sample_rate, num_samples, strict, progress, out=None)
    cache_dir = Path(cache_dir)
    key = content_key(dataset, sample_rate, num_samples)
    array_path, index_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if array_path.is_file() and index_path.is_file():
        index = json.loads(index_path.read_text())
        by_id = {c.clip_id: c for c in dataset.clips}
        clips = tuple(by_id[i] for i in index["clip_ids"])
        skipped = [tuple(s) for s in index["skipped"]]
        if strict and skipped:
            raise AudioError(skipped[0][0], skipped[0][1])
        return DecodedSplit(np.load(array_path, mmap_mode="r"), clips, sample_rate, skipped)  # type: ignore[arg-type]
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy", dir=cache_dir)
    os.close(fd)
    shape = (len(dataset.clips), num_samples)
    try:
        try:
            out = np.lib.format.open_memmap(tmp_name, mode="w+", dtype=np.float32, shape=shape)
            _reserve(tmp_name)
        except OSError as exc:
            raise WriteError(cache_dir, f"cannot write the decoded-audio cache "
                             f"({_megabytes(shape)} MB): {exc.strerror or exc}") from exc
        split = _decode(dataset, sample_rate, num_samples, strict, progress, out=out)
        out.flush()
        del out
        if split.skipped:
            # Decoded rows are packed at the front; drop the unused tail so array and clips align.
            full = np.load(tmp_name, mmap_mode="r")
            kept = np.array(full[: len(split.clips)])  # a real copy: the file is rewritten below
            del full
            try:
                np.save(tmp_name, kept)
            except OSError as exc:
                raise WriteError(cache_dir, f"cannot write the decoded-audio cache: {exc.strerror or exc}") from exc
        os.replace(tmp_name, array_path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    write_json(index_path, {"clip_ids": split.clip_ids, "skipped": split.skipped, "sample_rate": sample_rate,
                            "num_samples": num_samples, "dataset": str(dataset.root)})
    return DecodedSplit(np.load(array_path, mmap_mode="r"), split.clips, sample_rate, split.skipped)


NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _reserve(path: str) -> None:
    """Claim a sparse file's blocks now: a memory-mapped write to a full disk is a SIGBUS that kills the
    process, where a reservation that does not fit is an ordinary OSError (ENOSPC). Where the filesystem or the
    platform cannot reserve (no posix_fallocate, EOPNOTSUPP, EINVAL), the free space is compared instead."""
    with open(path, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
            return
        except AttributeError:
            pass
        except OSError as exc:
            if exc.errno in NO_ROOM:
                raise
    if shutil.disk_usage(Path(path).parent).free < size:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _megabytes(shape: tuple[int, int]) -> str:
    return f"{shape[0] * shape[1] * 4 / 1e6:.0f}"


def _decode(
    dataset: ClipDataset, sample_rate: int, num_samples: int, strict: bool, progress: bool, out: np.ndarray | None
) -> DecodedSplit:
    from tqdm import tqdm

    if not dataset.clips:
        raise DatasetError(dataset.root, "no clips to decode")
    rows = out if out is not None else np.zeros((len(dataset.clips), num_samples), dtype=np.float32)
    kept, skipped = [], []
    bar = tqdm(dataset.clips, desc=f"decoding {dataset.name} at {sample_rate} Hz", unit="clip", disable=not bars_enabled(progress), leave=False)
    for clip in bar:
        try:
            audio = load_audio(clip.path, sample_rate=sample_rate, mono=True)
        except AudioError as exc:
            if strict:
                raise
            log.warning("skipping %s", exc)
            skipped.append((clip.clip_id, exc.reason))
            continue
        rows[len(kept)] = fit_length(audio.waveform[0], num_samples).numpy()
        kept.append(clip)
    if not kept:
        raise DatasetError(dataset.root, f"none of the {len(dataset.clips)} files could be decoded")
    waveforms = rows if out is not None else rows[: len(kept)]
    return DecodedSplit(waveforms, tuple(kept), sample_rate, skipped)
