"""Which folds a checkpoint learned from, `{fold}` templates for per-fold weights, and refusing fold leakage.

A frozen classifier scored on clips it was trained on reads memorised clips, not what it listens to: a probe
finetuned behind it answers a different question. A checkpoint's training folds are known when probe trained it
(`probe train-classifier`, `probe pretrain-ae`, `probe finetune` write RUNDIR/folds.json before training, and
best.pt carries the same record) or when it is a published fold checkpoint (`WeightSource.trained_on_folds`).
A run whose validation fold is among them is refused. Where they are unknown, a grid that lets one checkpoint
serve several validation folds is warned about once, and a bare accuracy near 1.0 is flagged.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from probe.errors import ConfigError
from probe.registries import Registry

Config = TypeVar("Config")
FOLDS_FILE = "folds.json"
TEMPLATED_FIELDS = ("classifier_weights", "ae_weights", "autoencoder", "init")
"""Config fields that may name a checkpoint per fold with `{fold}`, e.g. `passt_esc50_fold{fold}`."""
PUBLISHED = "esc50"
"""The dataset a published fold checkpoint's folds refer to: ESC-50, wherever a copy of it lies."""
SUSPECT_ACCURACY = 0.99
"""A bare classifier this accurate on the validation fold, with unknown training folds, is flagged: it may have
been trained on the fold (ESC-50 classifiers score about 0.96 on folds they did not see)."""


@dataclass(frozen=True)
class FoldRecord:
    """What a checkpoint learned from: the dataset (`data_identity`), the folds it trained on, the fold that selected
    it (best.pt), and the folds held out of both."""

    data: str
    trained_on: tuple[int, ...]
    selected_on: int | None = None
    held_out: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "trained_on": list(self.trained_on), "selected_on": self.selected_on,
                "held_out": list(self.held_out)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "FoldRecord":
        return cls(str(value["data"]), tuple(int(f) for f in value["trained_on"]), value.get("selected_on"),
                   tuple(int(f) for f in value.get("held_out", ())))


def data_identity(spec: str) -> str:
    """A data spec as one string per dataset: `esc50:/abs/path`, `folder:/abs/path`, `synthetic` (its own copy)."""
    kind, _, rest = str(spec).partition(":")
    return f"{kind}:{Path(rest).expanduser().resolve()}" if rest else kind


def with_fold(config: Config, fold: int | None = None) -> Config:
    """`config` with `{fold}` in its weights fields filled in with `fold` (default: its own validation fold)."""
    fold = getattr(config, "fold") if fold is None else fold
    changes = {}
    for name in TEMPLATED_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, str) and "{" in value:
            try:
                changes[name] = value.format(fold=fold)
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(None, f"{value!r}: a weights template may hold only {{fold}} ({exc!r})") from None
    return replace(config, **changes) if changes else config  # type: ignore[type-var]


def training_record(config: Any, folds: Iterable[int]) -> FoldRecord:
    """The record of a run that trains on every fold but its validation fold and held-out folds."""
    held = tuple(getattr(config, "hold_out_folds", ()) or ())
    return FoldRecord(data_identity(config.data), tuple(f for f in folds if f != config.fold and f not in held),
                      config.fold, held)


def refuse_other_folds(run_path: Path, config: Any) -> None:
    """A run directory holds one run: continuing or reusing it with another validation fold or other held-out folds
    would mix two runs' checkpoints and metrics under one fold record."""
    recorded = Path(run_path) / FOLDS_FILE
    if not recorded.is_file():
        return
    record = FoldRecord.from_json(json.loads(recorded.read_text()))
    held = tuple(getattr(config, "hold_out_folds", ()) or ())
    if record.selected_on != config.fold or set(record.held_out) != set(held):
        raise ConfigError(run_path, f"holds a run validated on {_folds_text(record.selected_on, record.held_out)}; "
                                    f"this one is validated on {_folds_text(config.fold, held)}: choose another --out")


def _folds_text(fold: int | None, held: Iterable[int]) -> str:
    held = sorted(held)
    return f"fold {fold}" + (f", holding out {fold_list(held)}" if held else "")


def fold_list(folds: Iterable[int]) -> str:
    """`fold 3` or `folds 1, 2`."""
    folds = list(folds)
    return f"fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))}"


Selection = Callable[[int, tuple[int, ...], Callable[[], tuple[int, ...]]], tuple[int, tuple[int, ...]]]


def select_on_scored(fold: int, held: tuple[int, ...], data_folds: Callable[[], tuple[int, ...]]) -> tuple[int, tuple[int, ...]]:
    """Run K validates on K and picks best.pt there: cross-validation's usual way (fold K then flatters it)."""
    return fold, held


def select_on_next(fold: int, held: tuple[int, ...], data_folds: Callable[[], tuple[int, ...]]) -> tuple[int, tuple[int, ...]]:
    """Run K holds K out and validates on the next fold not held out (wrapping round), so a finetuning scored on
    fold K never met its checkpoint's training or selection: no classifier is scored on clips it was trained or
    selected on."""
    folds = data_folds()
    if fold not in folds:
        raise ConfigError(None, f"--folds {fold}: the data has {fold_list(folds)}")
    held = tuple(sorted({*held, fold}))
    free = [f for f in folds if f not in held]
    if len(free) < 2:
        raise ConfigError(None, f"--select-on next: with {fold_list(held)} held out, {len(free)} of the data's "
                                f"{len(folds)} folds remain, and one to select on and one to train on are needed")
    return next((f for f in free if f > fold), free[0]), held


SELECT_ON: Registry[Selection] = Registry("--select-on rule")
"""`--select-on`: where run K of `--folds` validates and picks best.pt, and which folds it holds out."""
SELECT_ON.register("scored", select_on_scored)
SELECT_ON.register("next", select_on_next)


def write_record(run_path: Path, record: FoldRecord) -> None:
    from probe.fileio import write_json

    write_json(Path(run_path) / FOLDS_FILE, record.to_json())


def read_record(weights: str | Path | None) -> FoldRecord | None:
    """The training folds of a checkpoint (a path or a published name); None where nothing records them."""
    if not weights:
        return None
    published = _published(str(weights))
    if published is not None:
        return published
    path = Path(weights)
    beside = path.parent / FOLDS_FILE
    if path.is_file() and beside.is_file() and path.name in ("best.pt", "latest.pt"):
        return FoldRecord.from_json(json.loads(beside.read_text()))
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        return _embedded(path)
    return None


def _published(value: str) -> FoldRecord | None:
    from probe.download import weight_sources

    for source in weight_sources().values():
        if source.trained_on_folds is not None and (value == source.name or Path(value).name == source.filename):
            return FoldRecord(PUBLISHED, source.trained_on_folds)
    return None


def _embedded(path: Path) -> FoldRecord | None:
    """The record inside a probe checkpoint (memory-mapped: nothing but the small entry is read)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, or not ours: the loader says what is wrong with it
        return None
    folds = obj.get("folds") if isinstance(obj, dict) else None
    return FoldRecord.from_json(folds) if isinstance(folds, dict) else None


def same_dataset(record: FoldRecord, data: str) -> bool:
    """Whether the record's folds are the folds of `data`."""
    if record.data == PUBLISHED:
        return str(data).partition(":")[0] == PUBLISHED
    return record.data == data_identity(data)


def refuse_leak(role: str, weights: str | Path | None, data: str, fold: int) -> FoldRecord | None:
    """Raise the one-line error when `weights` learned from the validation `fold` of `data`; returns its record."""
    record = read_record(weights)
    if record is not None and same_dataset(record, data) and fold in record.trained_on:
        trained = ", ".join(map(str, record.trained_on))
        raise ConfigError(weights, f"the {role} was trained on folds {trained}, which include validation fold {fold}: "
                                   "it would be scored on clips it learned. Use that fold's checkpoint (a {fold} "
                                   "template, e.g. passt_esc50_fold{fold}) or validate on another fold")
    return record


def checkpoint_path(value: str | None) -> str | None:
    """An autoencoder given as a checkpoint path (a pretraining run's best.pt) rather than a registered name."""
    return value if value and Path(value).suffix in (".pt", ".pth", ".ckpt", ".bin") else None


def ae_checkpoint(config: Any) -> str | None:
    """A finetuning config's AE checkpoint: its weights, or the autoencoder itself where that is a checkpoint path."""
    return config.ae_weights or checkpoint_path(config.autoencoder)


def refuse_leaks(config: Any) -> tuple[FoldRecord | None, list[str]]:
    """`refuse_leak` for a finetuning config's classifier and AE checkpoints. Returns the classifier's record, and a note
    for each checkpoint selected on the fold it is now scored on: its best.pt was chosen by its score on these very
    clips, so they flatter it. Those are warned about and recorded, not refused: the published fold
    checkpoints are used the same way in the study."""
    records, notes = {}, []
    for role, weights in (("classifier", config.classifier_weights), ("autoencoder", ae_checkpoint(config))):
        record = records[role] = refuse_leak(role, weights, config.data, config.fold)
        if record is not None and record.selected_on == config.fold and same_dataset(record, config.data):
            notes.append(f"the {role} checkpoint {weights} was selected (best.pt) by its score on validation fold "
                         f"{config.fold}, the fold it is scored on here, so these clips flatter it: train it with "
                         f"--hold-out {config.fold} and select it on another fold (--folds ... --select-on next does "
                         "so for each fold)")
    return records["classifier"], notes


def warn_shared(cells: list[Any], say=None) -> None:
    """Warn once when one checkpoint of unknown training folds serves several validation folds of a grid."""
    serving: dict[str, set[int]] = {}
    for cell in cells:
        for weights in (cell.classifier_weights, ae_checkpoint(cell)):
            if weights:
                serving.setdefault(str(weights), set()).add(cell.fold)
    unknown = [weights for weights, folds in serving.items() if len(folds) > 1 and read_record(weights) is None]
    if unknown:
        message = (f"warning: {', '.join(unknown)} serve{'s' if len(unknown) == 1 else ''} several validation folds, and "
                   "nothing records which folds it was trained on: where it learned a fold, that fold's scores are on "
                   "clips it learned. Give per-fold checkpoints with a {fold} template.")
        (say or (lambda text: print(text, file=sys.stderr, flush=True)))(message)


def suspected_leak(record: FoldRecord | None, bare_accuracy: float | None) -> str | None:
    """A note for the run's summary when its classifier's training folds are unknown and it scores near 1.0."""
    if record is not None or bare_accuracy is None or bare_accuracy < SUSPECT_ACCURACY:
        return None
    return (f"the bare classifier scores {bare_accuracy:.3f} on the validation fold and nothing records which folds it "
            "was trained on: if it learned this fold, the probe reads memorised clips")
