"""probe from Python, on objects: the same steps as the command line, for notebooks and scripts.

    import probe

    classifier = probe.wrap(my_module, sample_rate=16000, class_names=["dog", "rain"])
    runs = probe.finetune(classifier, "my-recordings", out="runs/mine")
    analysis = probe.analyse(runs, "analysis-mine")
    print(probe.answer(analysis))

`probe finetune` and `probe analyse` end in the same functions (`train_probes`, and the analyses' `analyse`), so
a run made here is a run the command line reads, and the other way round.
"""
from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from probe.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from probe.models.base import WaveformClassifier
    from probe.rundir import RunDir
    from probe.train.config import FinetuneConfig


def wrap(module: "nn.Module", sample_rate: int, class_names: Sequence[str] | None = None, *, name: str | None = None,
         multi_label: bool | None = None) -> "WaveformClassifier":
    """Any `nn.Module` mapping a waveform batch (B, L) at `sample_rate` Hz to logits (B, classes), as the classifier
    probe takes everywhere. Its head is kept as it is; `class_names` name its outputs in order (default: the module's
    own `class_names`, else `class_0`, ...). `multi_label`: independent sigmoid outputs (a tagger)."""
    from probe.models.base import WaveformClassifier
    from probe.models.classifiers import wrap_module

    if isinstance(module, WaveformClassifier):
        return module
    classifier = wrap_module(module, sample_rate, list(class_names) if class_names else None, name=name,
                             multi_label=multi_label)
    if class_names and list(classifier.class_names) != list(class_names):
        raise ConfigError(None, f"{len(class_names)} class names for a module with {classifier.num_classes} outputs")
    return classifier


def classifier_name(classifier: "str | Path | WaveformClassifier") -> tuple[str, str | None]:
    """(the name a run records, its weights) for a classifier given as a registered name, a checkpoint file in
    probe's format, a `save_pretrained` folder, or an object. An object is kept in $PROBE_HOME/classifiers under the
    digest of its saved bytes, and named `module:PATH` (loading it again needs its class importable)."""
    import torch

    from probe.models.base import WaveformClassifier
    from probe.models.checkpoint import CLASSIFIER_FORMAT, read_checkpoint

    if isinstance(classifier, torch.nn.Module):
        if not isinstance(classifier, WaveformClassifier):
            raise ConfigError(None, f"a {type(classifier).__name__} is not a probe classifier yet: wrap it with "
                                    "probe.wrap(module, sample_rate=RATE, class_names=[...])")
        return f"module:{keep_object(classifier)}", None
    path = Path(classifier).expanduser()
    if isinstance(classifier, Path) or (":" not in str(classifier) and path.exists()):
        if path.is_dir():
            return f"hf:{path.resolve()}", None
        if not path.is_file():
            raise ConfigError(path, "no such classifier checkpoint")
        checkpoint = read_checkpoint(path)
        if not (isinstance(checkpoint, dict) and checkpoint.get("format") == CLASSIFIER_FORMAT):
            raise ConfigError(path, "not a classifier checkpoint in probe's format (a published state_dict needs its "
                                    "model's name: probe.finetune('mn10', ..., classifier_weights=PATH))")
        return str(checkpoint["classifier"]), str(path.resolve())
    return str(classifier), None


def keep_object(classifier: "WaveformClassifier") -> Path:
    """Save a classifier object whole (pickled by torch) under the digest of its bytes; returns the file."""
    import torch

    from probe.download import probe_home
    from probe.fileio import atomic_write

    buffer = io.BytesIO()
    torch.save(classifier, buffer)
    data = buffer.getvalue()
    path = probe_home() / "classifiers" / f"{classifier.name}-{hashlib.sha256(data).hexdigest()[:16]}.pt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(data)
    return path.resolve()


def data_spec(data: str | Path, labelled: bool | None = None) -> str:
    """A `--data` value for `data`: a spec (`audio:DIR`, `folder:DIR`, `esc50:DIR`, `synthetic`) as it is; a plain
    folder as `folder:` (one subfolder per class) where `labelled`, else `audio:` (any audio, nested as you like)."""
    from probe.data import DATA_KINDS

    text = str(data)
    if isinstance(data, Path) or text.partition(":")[0] not in (*DATA_KINDS.ensure_loaded(), "synthetic"):
        path = Path(text).expanduser()
        if not path.is_dir():
            raise ConfigError(path, "no such folder of recordings (or give a data spec such as audio:DIR)")
        return f"{'folder' if labelled else 'audio'}:{path}"
    return text


def finetune(classifier: "str | Path | WaveformClassifier", data: str | Path, *, probe: str = "spectral-gain",
             objective: str | None = None, replicates: int = 5, epochs: int | None = None, out: str | Path = "runs/probe",
             folds: Sequence[int] | None = None, resume: bool = False, jobs: int = 1, progress: bool = True,
             **settings: Any) -> Path:
    """Train `replicates` probes of type `probe` in front of the frozen `classifier` on `data`, into `out`; returns
    `out` (the folder `analyse` takes). `objective` defaults to `labels` where the data has classes and `fidelity`
    (the classifier's agreement with itself, no labels) where it has none. `settings` are further fields of the
    finetuning config (`batch_size`, `clip_seconds`, `learning_rate`, `device`, `seed`, `classifier_weights`, ...),
    as the command line's flags."""
    from probe.data import is_labeled
    from probe.train.config import FinetuneConfig

    known = {f.name for f in fields(FinetuneConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(None, f"probe.finetune() has no setting {unknown[0]!r}; the settings are "
                                f"{', '.join(sorted(known - {'classifier', 'data', 'probe', 'objective', 'epochs', 'out'}))}")
    spec = data_spec(data, labelled=objective is not None and objective != "fidelity")
    if objective is None:
        objective = "labels" if is_labeled(spec) else "fidelity"
        if progress:
            print(f"probe.finetune: objective {objective} ({'the data has classes' if objective == 'labels' else 'the data has no labels'})",
                  file=sys.stderr, flush=True)
    name, weights = classifier_name(classifier)
    if name.startswith("module:"):  # the object's own name, not its saved file's, in tables and reports
        settings.setdefault("classifier_label", classifier.name)
    config = FinetuneConfig(**{"classifier_weights": weights, **settings}, classifier=name, data=spec, probe=probe,
                            objective=objective, epochs=epochs, out=str(out), progress=progress)
    config.validate()
    train_probes(config, replicates=replicates, folds=list(folds) if folds else None, resume=resume, jobs=jobs)
    return Path(out)


def run_count(config: "FinetuneConfig", replicates: int = 1, folds: Sequence[int] | None = None,
              grid: dict[str, Any] | None = None) -> tuple[int, int]:
    """(runs, runs that train: the controls take no step) of a `probe finetune` call."""
    from probe.train.finetune import grid_cells

    cells = grid_cells(config, grid, list(folds) if folds else None) if grid else [config] * len(folds or [1])
    return len(cells) * replicates, sum(not cell.probe_spec.control for cell in cells) * replicates


def finetune_plan(config: "FinetuneConfig", *, replicates: int = 1, folds: Sequence[int] | None = None,
                  grid: dict[str, Any] | None = None) -> list[str]:
    """`probe finetune --dry-run`: the sizing, and the expected time from one timed step of the first run's probe
    on this device. Writes nothing."""
    from probe.progress import duration
    from probe.train.finetune import grid_cells, time_one_step
    from probe.train.loop import fold_configs

    folds = list(folds) if folds else None
    first = grid_cells(config, grid, folds)[0] if grid else fold_configs(config, folds)[0] if folds else config
    timing = time_one_step(first)
    lines = timing.sizing.lines()
    runs, training = run_count(config, replicates, folds, grid)
    lines.append(f"time: one step of {first.resolved().batch_size} clips took {timing.step_s:.2f} s on {timing.device}: "
                 f"about {duration(timing.run_s)} per run ({timing.epochs} epochs of {timing.steps_per_epoch} steps, "
                 f"validation included), about {duration(timing.run_s * training)} for {training} training run(s)"
                 + (f" of {runs}" if runs != training else "") + " one after another")
    return lines


def train_probes(config: "FinetuneConfig", *, replicates: int = 1, folds: list[int] | None = None,
                 grid: dict[str, Any] | None = None, resume: bool = False, jobs: int = 1) -> "list[RunDir]":
    """The runs `probe finetune` trains: a grid's cells, replicates, folds, or one run (each complete run skipped);
    the first run that trains says the data's sizing (`probe.sizing`) once its inputs are checked."""
    from probe.train.finetune import SIZED
    from probe.train.finetune import finetune as finetune_one
    from probe.train.finetune import finetune_folds, finetune_grid, finetune_replicates

    SIZED.clear()  # each call says the sizing of its data again, once
    if grid:
        return finetune_grid(config, grid, folds, resume=resume, jobs=jobs, replicates=replicates)
    if replicates > 1:
        return finetune_replicates(config, replicates, folds, resume=resume, jobs=jobs)
    if folds:
        return finetune_folds(config, folds, resume=resume, jobs=jobs)
    return [finetune_one(config, resume=resume)]


def analyse(runs: str | Path | Iterable[str | Path], out: str | Path = "analysis", **options: Any) -> Path:
    """Analyse finetune runs (a run, a folder of runs such as `finetune`'s `out`, or several) into the folder `out`;
    returns it. `options` are the analysis settings by name, as the command line's flags: `methods`, `band_sets`,
    `seed`, `device`, `margin_points`, `threshold_db`, `n_boot`, ... (`answer=False` skips the removal checks)."""
    from probe.analyses.analyse import analyse as analyse_runs
    from probe.analyses.analyse import check_names

    config = analyse_config(runs, out, **options)
    check_names(config)
    return analyse_runs(config)


def analyse_config(runs: str | Path | Iterable[str | Path], out: str | Path, **options: Any):
    """The AnalyseConfig of `analyse`'s arguments: each option goes to the settings group that has a field of its
    name; an option no group has is an error that lists them."""
    from probe.analyses.config import AnalyseConfig, AttributionSettings, RemovalSettings, ShiftSettings

    paths = (runs,) if isinstance(runs, (str, Path)) else tuple(runs)
    answer = options.pop("answer", True)
    groups = {"shifts": ShiftSettings, "attributions": AttributionSettings, "removal": RemovalSettings}
    top = {f.name for f in fields(AnalyseConfig)} - {"runs", "out", *groups}
    values: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in options.items():
        if key in top:
            values[key] = tuple(value) if isinstance(value, list) else value
            continue
        group = next((g for g, cls in groups.items() if key in {f.name for f in fields(cls)}), None)
        if group is None:
            names = sorted(top | {f.name for cls in groups.values() for f in fields(cls)} | {"answer"})
            raise ConfigError(None, f"probe.analyse() has no option {key!r}; the options are {', '.join(names)}")
        grouped[group][key] = tuple(value) if isinstance(value, list) else value
    config = AnalyseConfig(runs=tuple(str(Path(p)) for p in paths), out=str(out), **values,
                           shifts=ShiftSettings(**grouped["shifts"]),
                           attributions=AttributionSettings(**grouped["attributions"]),
                           removal=RemovalSettings(**grouped["removal"]) if answer else None)
    return config if answer or not grouped["removal"] else replace(config, removal=None)


@dataclass(frozen=True)
class Answer:
    """What an analysis says each classifier needs and can do without: `sentences` (classifier -> sentence), and
    `claims`, the answer table (one row per word, with its removal's cost and interval)."""

    folder: Path
    sentences: dict[str, str]
    claims: "pd.DataFrame"

    def __str__(self) -> str:
        return "\n".join(self.sentences.values())


def answer(analysis: str | Path) -> Answer:
    """The answer of an analysis folder (`analyse`'s output, `probe analyse --out`)."""
    import pandas as pd

    from probe.reports.data import load_analysis

    folder = Path(analysis)
    loaded = load_analysis([folder])
    if not loaded.answered:
        raise ConfigError(folder, "holds no answer: it was analysed without the removal checks (answer=False, "
                                  "--no-answer); analyse the runs again")
    sentences = {classifier: said["sentence"] for classifier, said in loaded.measured_answer.items()}
    claims = loaded.comparison_tables.get("answer")
    return Answer(folder, sentences, claims if claims is not None else pd.DataFrame())
