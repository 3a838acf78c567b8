"""The attribution store: what the attributions cost, computed once and kept by what it depends on.

The maps of the original clips and the randomisation check depend on the classifier (its name, options and
the content of its weights), the method and its settings, the clips' content, the seed and the device type;
not on the probe. Keyed by exactly that, they serve every run behind the same classifier, every setting and
fold of a grid, and every rerun of `probe analyse` that names the same store (`--attribution-store`). An
entry is written atomically (a killed write leaves none), and a tampered or truncated one is computed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from probe.errors import WriteError
from probe.fileio import atomic_write, sha256_file

log = logging.getLogger(__name__)

IRRELEVANT_SETTINGS = ("methods", "conditions", "max_clips", "sanity_clips", "ig_max_error", "completeness_clips")
"""Attribution settings that choose what is attributed, or how integrated gradients' steps are chosen, not how a
map comes out (the clips' content and the steps chosen are keyed, and so is how many of the first originals'
integrated gradients the step choice computed: `attribution.maps_key`'s `single_first`)."""
_weight_hashes: dict[tuple[str, int, int], str] = {}


def weights_hash(path: str | Path | None) -> str | None:
    """The SHA-256 of a weights file, hashed once per process per (path, size, modification time)."""
    if not path or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _weight_hashes:
        _weight_hashes[key] = sha256_file(path)
    return _weight_hashes[key]


def content_hash(waveforms: np.ndarray, targets: np.ndarray) -> str:
    """The SHA-256 of clips (as float32) and their targets."""
    digest = hashlib.sha256(np.ascontiguousarray(waveforms, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(targets, dtype=np.int64).tobytes())
    return digest.hexdigest()


def code_hash(function: Callable) -> str:
    """What a method's code is (its bytecode and constants): a plugin's method edited in place keys anew."""
    code = function.__code__
    return hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]


METHOD_SETTINGS = ("ig_steps", "shap_samples", "occlusion_patch")
"""Settings that belong to one method each: a map depends only on those its method reads."""


def map_settings(settings: Any, reads: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The attribution settings a map depends on: of `METHOD_SETTINGS`, only those in `reads` (all where None)."""
    return {k: v for k, v in asdict(settings).items()
            if k not in IRRELEVANT_SETTINGS and (reads is None or k not in METHOD_SETTINGS or k in reads)}


@dataclass
class AttributionStore:
    """Entries in memory for this process and, with a `folder`, on disk for every later one."""

    folder: Path | None = None
    computed: int = 0
    """How many entries this process had to compute (the rest it read)."""
    _memory: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def key(**parts: Any) -> str:
        """The entry's name: a hash of what it depends on, and of probe's version (whose code computes it)."""
        from probe import __version__

        return hashlib.sha256(json.dumps({**parts, "probe": __version__}, sort_keys=True,
                                         default=str).encode()).hexdigest()[:32]

    def has(self, key: str) -> bool:
        """Whether an entry is kept (in memory, or on disk) under `key`."""
        return key in self._memory or (self.folder is not None and any(
            (self.folder / f"{key}{suffix}").is_file() for suffix in (".npy", ".parquet")))

    def array(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The stored array under `key`, else `compute()`, stored."""
        return self._get(key, ".npy", compute, np.load, lambda handle, value: np.save(handle, value))

    def kept_table(self, key: str) -> pd.DataFrame | None:
        """The stored table under `key`, or None where none is kept (nothing is computed)."""
        return self.table(key, lambda: None) if self.has(key) else None

    def table(self, key: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The stored table under `key`, else `compute()`, stored; a copy the caller may change."""
        return self._get(key, ".parquet", compute, pd.read_parquet,
                         lambda handle, value: value.to_parquet(handle, index=False)).copy()

    def _get(self, key: str, suffix: str, compute: Callable[[], Any], read: Callable[[Path], Any],
             write: Callable[[Any, Any], None]) -> Any:
        if key in self._memory:
            return self._memory[key]
        path = self.folder / f"{key}{suffix}" if self.folder is not None else None
        value = None
        if path is not None and path.is_file():
            try:
                value = read(path)
            except Exception as exc:  # a damaged entry is only a cache miss; numpy and pyarrow raise many types
                log.warning("attribution store: %s is unreadable (%s); computing it again", path, exc)
        if value is None:
            value = compute()
            self.computed += 1
            if path is not None:
                self._save(path, value, write)
        self._memory[key] = value
        return value

    @staticmethod
    def _save(path: Path, value: Any, write: Callable[[Any, Any], None]) -> None:
        try:
            with atomic_write(path) as handle:
                write(handle, value)
        except WriteError as exc:  # a full disk or a read-only store costs time later, never the analysis
            log.warning("attribution store: cannot keep an entry (%s)", exc)
