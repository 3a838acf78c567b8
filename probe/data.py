"""Datasets: ESC-50 (official and PaSST 32 kHz layouts), a folder per class, and synthetic data.

A dataset is a list of `Clip`s plus the class and category names. Audio is decoded by
`probe.cache.AudioCache`, once per split, never per epoch.
"""
from __future__ import annotations

import csv
import json
import logging
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from probe import esc50
from probe.esc50 import CATEGORIES_CSV, DATASET_JSON, ESC50_CSV
from probe.audio import is_audio_file
from probe.errors import DatasetError
from probe.registries import Registry

log = logging.getLogger(__name__)

ESC50_AUDIO_DIRS = ("audio_32k", "audio")  # PaSST's 32 kHz layout first, then the official 44.1 kHz one
FOLDER_FOLDS = 5
UNLABELED = -1
"""The target of a clip with no label (`--data audio:DIR`)."""
DEFAULT_CLIP_SECONDS = esc50.CLIP_SECONDS
"""The length every clip is padded or cut to when neither the dataset nor `--clip-seconds` gives one (ESC-50's)."""


@dataclass(frozen=True)
class Clip:
    """One labelled file. `clip_id` is unique in its dataset (the file name relative to the audio root)."""

    clip_id: str
    path: Path
    target: int
    fold: int
    group: str | None = None
    """The independent unit the clip belongs to (ESC-50's `src_file`: clips cut from one recording); None: itself."""


@dataclass(frozen=True)
class ClipDataset:
    """Clips with their class names, categories and (where known) native sample rate."""

    name: str
    root: Path
    clips: tuple[Clip, ...]
    class_names: tuple[str, ...]
    category_names: tuple[str, ...]
    class_categories: tuple[int, ...]
    """The category index of each class."""
    sample_rate: int | None = None
    clip_seconds: float | None = None
    folds: tuple[int, ...] = field(default=esc50.FOLDS)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labelled(self) -> bool:
        """Whether the clips have classes (an `audio:DIR` folder has none)."""
        return bool(self.class_names)

    def category_of(self, target: int) -> int:
        return self.class_categories[target]

    def subset(self, folds: Sequence[int]) -> "ClipDataset":
        """The clips in `folds`, everything else unchanged."""
        wanted = set(folds)
        unknown = wanted - set(self.folds)
        if unknown:
            raise DatasetError(self.root, f"no fold {sorted(unknown)}; this dataset has folds {list(self.folds)}")
        return replace(self, clips=tuple(c for c in self.clips if c.fold in wanted))

    def split(self, validation_fold: int = esc50.VALIDATION_FOLD) -> tuple["ClipDataset", "ClipDataset"]:
        """(train, validation): validation is one fold, training the others (the study: 1 and 2-5)."""
        return self.subset([f for f in self.folds if f != validation_fold]), self.subset([validation_fold])

    def cross_validation(self) -> Iterator[tuple[int, "ClipDataset", "ClipDataset"]]:
        """(fold, train, validation) for every fold."""
        for fold in self.folds:
            yield (fold, *self.split(fold))


def load_esc50(root: str | Path, audio_dir: str | None = None) -> ClipDataset:
    """ESC-50 from `meta/esc50.csv` and `audio_32k/` (PaSST's release) or `audio/` (official, 44.1 kHz).

    Class names come from the CSV in target order; categories are target // 10 with
    ESC-50's names, unless `meta/categories.csv` (class,category) says otherwise.
    """
    root = Path(root)
    csv_path = root / ESC50_CSV
    if not csv_path.is_file():
        nested = sorted(path.parent.parent for pattern in (f"*/{ESC50_CSV}", f"*/*/{ESC50_CSV}")
                        for path in root.glob(pattern)) if root.is_dir() else []
        if len(nested) != 1:  # the folder `probe download esc50` unpacked into holds the release one or two down
            raise DatasetError(root, f"not an ESC-50 folder: {ESC50_CSV} is missing")
        root, csv_path = nested[0], nested[0] / ESC50_CSV
    audio_root = _esc50_audio_root(root, audio_dir)
    rows = _read_csv(csv_path, required=("filename", "fold", "target", "category"))
    clips, names = [], {}
    for line, row in enumerate(rows, start=2):
        try:
            target, fold = int(row["target"]), int(row["fold"])
        except ValueError:
            raise DatasetError(csv_path, f"line {line}: fold and target must be integers") from None
        names.setdefault(target, row["category"])
        clips.append(Clip(row["filename"], audio_root / row["filename"], target, fold, row.get("src_file") or None))
    if sorted(names) != list(range(len(names))):
        # A subset of ESC-50 (ESC-10, a trimmed copy) keeps ESC-50's 50 targets and names.
        if max(names) >= len(esc50.CLASS_NAMES) or min(names) < 0:
            raise DatasetError(csv_path, "targets must run from 0 without gaps")
        names = {t: names.get(t, esc50.CLASS_NAMES[t]) for t in range(len(esc50.CLASS_NAMES))}
    missing = [c.clip_id for c in clips if not c.path.is_file()]
    if missing:
        raise DatasetError(audio_root, f"{len(missing)} files listed in {ESC50_CSV} are missing, e.g. {missing[:3]}")
    class_names = tuple(names[t] for t in range(len(names)))
    category_names, class_categories = _categories(root, class_names)
    descriptor = json.loads((root / DATASET_JSON).read_text()) if (root / DATASET_JSON).is_file() else {}
    return ClipDataset(
        name="esc50",
        root=root,
        clips=tuple(clips),
        class_names=class_names,
        category_names=category_names,
        class_categories=class_categories,
        sample_rate=descriptor.get("sample_rate", esc50.SAMPLE_RATE_32K if audio_root.name == "audio_32k" else None),
        clip_seconds=descriptor.get("clip_seconds", esc50.CLIP_SECONDS),
        folds=tuple(sorted({c.fold for c in clips})),
    )


def _esc50_audio_root(root: Path, audio_dir: str | None) -> Path:
    for name in [audio_dir] if audio_dir else ESC50_AUDIO_DIRS:
        if (root / name).is_dir():
            return root / name
    raise DatasetError(root, f"no audio folder: expected one of {', '.join(ESC50_AUDIO_DIRS)}")


def _categories(root: Path, class_names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    custom = root / CATEGORIES_CSV
    if custom.is_file():
        return read_categories_csv(custom, class_names)
    return _default_categories(class_names, len(class_names) == len(esc50.CLASS_NAMES))


def _default_categories(class_names: tuple[str, ...], esc50_layout: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """ESC-50's five categories (blocks of ten classes) where `esc50_layout`, else one category, `all`."""
    if esc50_layout:
        return esc50.CATEGORY_NAMES, tuple(esc50.category_of(t) for t in range(len(class_names)))
    return ("all",), tuple(0 for _ in class_names)


def read_categories_csv(path: Path, class_names: Sequence[str]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Map each class to a category from a `class,category` CSV; categories keep first-seen order."""
    rows = _read_csv(path, required=("class", "category"))
    mapping = {row["class"]: row["category"] for row in rows}
    unmapped = [name for name in class_names if name not in mapping]
    if unmapped:
        raise DatasetError(path, f"no category for {len(unmapped)} classes, e.g. {unmapped[:3]}")
    categories: list[str] = []
    for name in class_names:
        if mapping[name] not in categories:
            categories.append(mapping[name])
    return tuple(categories), tuple(categories.index(mapping[name]) for name in class_names)


def load_folder(root: str | Path, categories_csv: str | Path | None = None) -> ClipDataset:
    """A folder per class (`root/<class>/<file>`), classes in sorted order.

    Folds 1-5 are assigned by a stable hash of each file's relative path, so the split never
    changes when files are added elsewhere. Categories come from `categories_csv` (class,category)
    or `root/meta/categories.csv`, else all classes form one category. `root/meta/groups.csv`
    (file,group) names the clips that share a source recording: the analyses resample such groups as
    one unit, and a group's clips share a fold.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "meta" and not p.name.startswith("."))
    loose = sorted(p.name for p in root.iterdir() if is_audio_file(p) and not p.is_dir())
    if not class_dirs:
        raise DatasetError(root, _folder_layout("no class folders", root, loose))
    groups = _folder_groups(root)
    clips = []
    for target, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.rglob("*")):
            if is_audio_file(path) and not path.is_dir():
                clip_id = path.relative_to(root).as_posix()
                group = groups.get(clip_id)
                clips.append(Clip(clip_id, path, target, _hashed_fold(clip_id, group), group))
    if not clips:
        raise DatasetError(root, _folder_layout("no audio files in its subfolders", root, loose))
    holding = sorted({class_dirs[clip.target].name for clip in clips})
    if loose and len(holding) < 2:  # a flat folder with a subfolder beside its files: not classes
        raise DatasetError(root, _folder_layout(f"one subfolder with audio ({holding[0]}/), no classes", root, loose))
    if loose:
        log.warning("%s: %d audio file(s) directly in it (%s, ...) are in no class folder and are left out", root,
                    len(loose), loose[0])
    class_names = tuple(p.name for p in class_dirs)
    csv_path = Path(categories_csv) if categories_csv else root / CATEGORIES_CSV
    if csv_path.is_file():
        category_names, class_categories = read_categories_csv(csv_path, class_names)
    elif categories_csv:
        raise DatasetError(csv_path, "no such file")
    else:
        category_names, class_categories = ("all",), tuple(0 for _ in class_names)
    return ClipDataset(
        name=root.name, root=root, clips=tuple(clips), class_names=class_names, category_names=category_names,
        class_categories=class_categories, folds=tuple(range(1, FOLDER_FOLDS + 1)),
    )


def _folder_layout(problem: str, root: Path, loose: list[str]) -> str:
    """Why a `folder:DIR` holds no labelled clips, what the kind expects, and `audio:DIR` where DIR holds audio files
    itself (a flat folder has no labels to give)."""
    found = f" ({len(loose)} audio files directly in it)" if loose else ""
    flat = f"; for a flat folder of unlabeled audio use audio:{root}" if loose else ""
    return f"{problem}{found}: folder: takes one subfolder per class holding its clips (DIR/<class>/<clip>){flat}"


def load_audio_folder(root: str | Path) -> ClipDataset:
    """Any folder of audio, unlabeled (`--data audio:DIR`): every audio file beneath `root` (but `root/meta`), with no
    classes; every clip's target is `UNLABELED`. Folds 1-5 by a stable hash of each file's relative path, and
    `root/meta/groups.csv` as in `load_folder`. Only a label-free objective (`--objective fidelity`) can train on it."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "not a folder")
    groups = _folder_groups(root)
    clips = []
    for path in sorted(root.rglob("*")):
        clip_id = path.relative_to(root).as_posix()
        if path.is_dir() or not is_audio_file(path) or clip_id.startswith(("meta/", ".")):
            continue
        group = groups.get(clip_id)
        clips.append(Clip(clip_id, path, UNLABELED, _hashed_fold(clip_id, group), group))
    if not clips:
        raise DatasetError(root, "no audio files beneath it")
    return ClipDataset(name=root.name, root=root, clips=tuple(clips), class_names=(), category_names=(),
                       class_categories=(), folds=tuple(range(1, FOLDER_FOLDS + 1)))


def categories_of(class_names: Sequence[str], root: str | Path | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Categories for a classifier's own classes (its decisions group unlabeled clips): a user's mapping,
    `root/meta/categories.csv` (class,category), where the data has one naming every class; else ESC-50's five
    where they are ESC-50's classes; else one category, `all` (the report then groups by class alone)."""
    mapping = Path(root) / CATEGORIES_CSV if root is not None else None
    if mapping is not None and mapping.is_file():
        named = {row["class"] for row in _read_csv(mapping, required=("class", "category"))}
        if set(class_names) <= named:
            return read_categories_csv(mapping, class_names)
    return _default_categories(tuple(class_names), tuple(class_names) == esc50.CLASS_NAMES)


def _hashed_fold(clip_id: str, group: str | None) -> int:
    """A fold (1-5) that depends on the clip's path (or its recording's group: one recording's clips share a fold)
    alone, so that adding files elsewhere never moves a clip."""
    key = f"group:{group}" if group else clip_id
    return zlib.crc32(key.encode()) % FOLDER_FOLDS + 1


GROUPS_CSV = "meta/groups.csv"


def _folder_groups(root: Path) -> dict[str, str]:
    """`meta/groups.csv` (file,group: the file's path relative to root) as file -> group; empty without one."""
    path = root / GROUPS_CSV
    if not path.is_file():
        return {}
    return {row["file"]: row["group"] for row in _read_csv(path, required=("file", "group")) if row["group"]}


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, f"cannot read CSV: {exc}") from exc
    absent = [c for c in required if c not in columns]
    if absent:
        raise DatasetError(path, f"missing columns {absent} (has {columns})")
    if not rows:
        raise DatasetError(path, "no rows")
    return rows


@dataclass(frozen=True)
class DataKind:
    """A layout `--data KIND:DIR` reads."""

    load: Callable[[str | Path], ClipDataset]
    labeled: bool = True
    """False: its clips have no classes, and only a label-free objective trains on them."""


DATA_KINDS: Registry[DataKind] = Registry("data kind")
"""`--data KIND:DIR` -> the loader of that layout (`synthetic[:DIR]` writes its data first)."""
DATA_KINDS.register("esc50", DataKind(load_esc50))
DATA_KINDS.register("folder", DataKind(load_folder))
DATA_KINDS.register("audio", DataKind(load_audio_folder, labeled=False))


def is_labeled(spec: str) -> bool:
    """Whether a `--data` value's clips have classes (an unknown kind is judged when it loads)."""
    kind = DATA_KINDS.ensure_loaded().get(spec.partition(":")[0])
    return kind is None or kind.labeled


def dataset_folds(spec: str) -> tuple[int, ...]:
    """The folds of a `--data` value, read from its metadata (the synthetic data's without writing it)."""
    if spec.partition(":")[0] == "synthetic":
        from probe.synthetic import SyntheticConfig

        return tuple(range(1, SyntheticConfig().folds + 1))
    return load_dataset(spec).folds


def load_dataset(spec: str, synthetic_root: str | Path | None = None) -> ClipDataset:
    """Resolve a `--data` value: `esc50:DIR`, `folder:DIR`, `audio:DIR` (unlabeled), or `synthetic` (written under
    `synthetic_root`)."""
    kind, _, location = spec.partition(":")
    if kind in DATA_KINDS.ensure_loaded() and location:
        return DATA_KINDS[kind].load(location)
    if kind == "synthetic":
        from probe.synthetic import SyntheticConfig, write_synthetic_dataset

        root = Path(location or synthetic_root or "synthetic-data")
        return load_esc50(write_synthetic_dataset(root, SyntheticConfig()))
    raise DatasetError(None, f"unknown --data {spec!r}; use {', '.join(f'{k}:DIR' for k in DATA_KINDS)} or "
                             "synthetic[:DIR]")
