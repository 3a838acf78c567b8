"""Reading a finetune run directory's outputs: the analyses never re-run the autoencoder.

Conditions are named as in the tables: `original` (the clip itself), `before` (the AE before
finetuning) and `after` (the finetuned AE).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from probe.errors import ConfigError
from probe.esc50 import DATASET_JSON
from probe.fileio import NpyRows
from probe.models.checkpoint import CHECKPOINT_SUFFIXES
from probe.probes import penalty_of_run, probe_of_run
from probe.rundir import CONDITION_LABELS, CONDITIONS, ORIGINAL, RECONSTRUCTIONS, RunDir


@dataclass
class RunOutputs:
    """One finetune run's validation outputs: the waveforms as rows read from disk on demand (`NpyRows`; the analyses
    read them a chunk at a time, so memory does not grow with the clips), the rest as arrays."""

    path: Path
    label: str
    config: dict[str, Any]
    provenance: dict[str, Any]
    sample_rate: int
    class_names: list[str]
    category_names: list[str]
    class_categories: list[int]
    clip_ids: list[str]
    targets: np.ndarray
    originals: "np.ndarray | NpyRows"
    reconstructions: "dict[str, np.ndarray | NpyRows]" = field(default_factory=dict)
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    groups: np.ndarray | None = None
    """Per clip, its independent unit (source recording); None: every clip its own (`units`)."""
    condition_labels: dict[str, str] = field(default_factory=lambda: dict(CONDITION_LABELS))
    """How tables' condition names read in reports ("after" is a finetuned AE, or the processed audio of a compare)."""

    @property
    def conditions(self) -> tuple[str, ...]:
        return (ORIGINAL, *self.reconstructions)

    @property
    def units(self) -> np.ndarray:
        """The independent unit of every clip, for cluster resampling: its group where known, else itself."""
        return np.asarray(self.groups if self.groups is not None else self.clip_ids)

    @property
    def fold(self) -> int:
        """The validation fold the run's clips come from."""
        return int(self.config.get("fold", 1))

    @property
    def judge(self) -> str:
        """The classifier's label in comparisons (runs with one label share one classifier)."""
        return classifier_label(self.config)

    def classifier_key(self) -> tuple[str, str | None, str]:
        """What identifies the classifier: name, weights and options (runs that share it share its attributions)."""
        return (str(self.config.get("classifier")), self.classifier_weights(),
                json.dumps(self.config.get("classifier_options", {}), sort_keys=True))

    @property
    def categories(self) -> np.ndarray:
        """The category index of every clip."""
        return np.asarray(self.class_categories)[self.targets]

    def waveforms(self, condition: str) -> "np.ndarray | NpyRows":
        return self.originals if condition == ORIGINAL else self.reconstructions[condition]

    def classifier_weights(self) -> str | None:
        """The resolved path the run was trained with, else the name it was given."""
        resolved = self.provenance.get("inputs", {}).get("classifier_weights", {}).get("path")
        return resolved or self.config.get("classifier_weights")


class TransformedRows:
    """Rows of clips with `transform` (a batch of clips -> as many clips of the same length) applied to whatever is
    read of them: a derived set of clips, computed a chunk at a time as the analyses read it."""

    def __init__(self, rows: "np.ndarray | NpyRows", transform) -> None:
        self.rows, self.transform, self.shape = rows, transform, tuple(rows.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[int(key) : int(key) + 1][0] if key >= 0 else self[len(self) + int(key)]
        return self.transform(np.asarray(self.rows[key]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[0 : len(self)]
        return whole if dtype is None else whole.astype(dtype)


def classifier_label(config: dict[str, Any]) -> str:
    """The given label, else the classifier's name; a name holding a path (`hf:/models/ast`, `hf:MIT/ast-...`) by its
    last part, so that labels stay folder names."""
    if config.get("classifier_label"):
        return str(config["classifier_label"])
    name = str(config.get("classifier", "classifier"))
    if "/" not in name:
        return name
    path = Path(name)
    # a training checkpoint's folder (checkpoint-500) says nothing without its run's: run-a-checkpoint-500
    return f"{path.parent.name}-{path.name}" if re.fullmatch(r"checkpoint-\d+", path.name) else path.name


LABELS, DECISIONS = "labels", "decisions"
"""What a run's targets can be (`targets` in outputs/objective.json): the dataset's labels, or the classifier's own
decisions on the originals."""


def setting_label(config: dict[str, Any], replicate: bool = True, mark: str = "") -> str:
    """The run's probe setting: the given label, else the AE's name (a checkpoint's parent folder), its rate, its
    penalty and `mark` (its objective's, from `label_mark`); a replicate after the first is `#k` (`replicate=False`:
    the setting its replicates share)."""
    k = config.get("replicate")
    if replicate and k and int(k) > 1:
        return f"{setting_label(config, replicate=False, mark=mark)} #{int(k)}"
    if config.get("setting_label"):
        return str(config["setting_label"])
    autoencoder = Path(str(config.get("autoencoder", "ae")))
    name = autoencoder.parent.name if autoencoder.suffix in CHECKPOINT_SUFFIXES and autoencoder.parent.name \
        else autoencoder.stem
    rate = (config.get("ae_options") or {}).get("sample_rate")
    if rate:  # e.g. the identity control at 48 kHz: the study's resampling chain alone
        name = f"{name}@{rate / 1000:g}kHz"
    if config.get("per_class"):
        name = f"{name} per class"
    return name + probe_of_run(config).label_suffix(penalty_of_run(config)) + (f" ({mark})" if mark else "")


def starts_random(config: dict[str, Any]) -> bool:
    """Whether the run's AE started from freshly drawn weights (an AE named, no checkpoint loaded): its untuned
    output is a random network's and no reference for what finetuning changed. Probe types with a model of their
    own start as the identity (the spectral gain at 0 dB), and controls do not train."""
    spec = probe_of_run(config)
    if spec.model is not None or spec.control:
        return False
    autoencoder = Path(str(config.get("autoencoder", "")))
    return not config.get("ae_weights") and autoencoder.suffix not in CHECKPOINT_SUFFIXES


def label_mark(run_path: str | Path, config: dict[str, Any]) -> str:
    """What marks the run's setting: its objective's name where that objective marks its runs (`label_mark` in
    outputs/objective.json); for a run that records no mark, its objective's name where it trained without labels
    (such runs must never share a setting with labelled ones)."""
    path = RunDir(run_path).objective_file
    record = json.loads(path.read_text()) if path.is_file() else {}
    if "label_mark" in record:
        return record["label_mark"]
    return str(config.get("objective", "")) if record.get("targets") == DECISIONS else ""


def run_label(config: dict[str, Any], mark: str = "") -> str:
    """`classifier--setting`, with the fold when it is not the default."""
    label = f"{classifier_label(config)}--{setting_label(config, mark=mark)}"
    return label if config.get("fold", 1) == 1 else f"{label}--fold{config['fold']}"


def expand_runs(paths: Sequence[str | Path]) -> list[str]:
    """Run directories as given; a folder that is no run itself (a grid, a cross-validation) stands for every complete
    finetune run beneath it, in path order (pretraining and classifier runs are not probes: left out). Unfinished runs
    beneath it are left out with one warning; a folder with no complete run is an error naming it."""

    runs = []
    for path in map(Path, paths):
        beneath = sorted(config.parent for config in path.rglob("config.json")
                         if RunDir(config.parent).is_run()) if path.is_dir() else []
        if RunDir(path).config.is_file() or not beneath:
            runs.append(str(path))  # load_run says what is wrong with it, if anything
            continue
        complete = [run for run in beneath if RunDir(run).is_complete() and RunDir(run).originals_file.is_file()]
        unfinished = [run for run in beneath if not RunDir(run).is_complete()]
        if not complete:
            raise ConfigError(path, f"holds no complete finetune run ({len(unfinished)} unfinished: finish them with "
                                    "`probe finetune ... --resume`)" if unfinished else "holds no finetune run")
        if unfinished:
            print(f"probe analyse: warning: {len(unfinished)} unfinished run(s) under {path} left out: "
                  f"{', '.join(str(run.relative_to(path)) for run in unfinished)}", file=sys.stderr, flush=True)
        runs += [str(run) for run in complete]
    return runs


def load_run(path: str | Path, label: str | None = None) -> RunOutputs:
    """Load a complete finetune run; a clear error names what is missing."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise ConfigError(run.path, "no such run directory")
    if not run.config.is_file() or not run.is_run():  # a folder of audio, an empty one, a transformers checkpoint
        raise ConfigError(run.path, "not a probe run: expected a run directory made by `probe finetune` (holding "
                                    "config.json and outputs/), or a folder of such runs")
    if not run.is_complete():
        raise ConfigError(run.path, "the run is not complete (no done.json): finish it with `probe finetune --resume`")
    missing = [path.name for path in run.required_outputs() if not path.is_file()]
    if missing:
        raise ConfigError(run.outputs, f"missing {', '.join(missing)} (written by probe finetune)")
    stored = json.loads(run.config.read_text())
    classes = json.loads(run.classes_file.read_text())
    load = lambda path: np.load(path, mmap_mode="r")  # noqa: E731
    outputs = RunOutputs(
        path=run.path, label=label or run_label(stored["config"], label_mark(run.path, stored["config"])), config=stored["config"],
        provenance=stored.get("provenance", {}), sample_rate=int(classes["sample_rate"]),
        class_names=list(classes["class_names"]), category_names=list(classes["category_names"]),
        class_categories=[int(c) for c in classes["class_categories"]],
        clip_ids=json.loads(run.clip_ids_file.read_text()), targets=np.asarray(load(run.targets_file)),
        originals=NpyRows(run.originals_file),
        reconstructions={c: NpyRows(run.reconstructions_file(c)) for c in RECONSTRUCTIONS},
        logits={c: np.asarray(load(run.logits_file(c))) for c in CONDITIONS},
        groups=np.asarray(json.loads(run.clip_groups_file.read_text())) if run.clip_groups_file.is_file() else None,
    )
    n = len(outputs.targets)
    shapes = {name: array.shape[0] for name, array in
              [("originals", outputs.originals), *outputs.reconstructions.items(), *outputs.logits.items()]}
    if len(outputs.clip_ids) != n or any(size != n for size in shapes.values()):
        raise ConfigError(run.outputs, f"inconsistent clip counts: {n} targets, {len(outputs.clip_ids)} clip ids, {shapes}")
    refuse_nonfinite(outputs)
    return outputs


def refuse_nonfinite(outputs: RunOutputs, rows: int = 64) -> None:
    """A run whose stored logits or reconstructions hold NaN or infinity (a training that diverged, from a version of
    probe that did not stop it) is refused, naming the run: no analysis of it means anything."""
    bad = [f"{condition} logits" for condition, logits in outputs.logits.items() if not np.isfinite(logits).all()]
    for condition, waveforms in outputs.reconstructions.items():
        if any(not np.isfinite(waveforms[start:start + rows]).all() for start in range(0, len(waveforms), rows)):
            bad.append(f"{condition} reconstructions")
    if bad:
        raise ConfigError(outputs.path, f"holds non-finite {', '.join(bad)}: its training diverged; train it again "
                                        "(probe finetune stops at the first non-finite step)")


def unique_labels(runs: list[RunOutputs]) -> None:
    """Make run labels unique in place (`label`, `label-2`, ...)."""
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.label, 0) + 1
        seen[run.label] = count
        if count > 1:
            run.label = f"{run.label}-{count}"


def probe_curves(run) -> dict[str, np.ndarray]:
    """The trained curves the run's probe type saved (`probe.probes`), as `<name>` (values) and
    `<name>_frequencies_hz`."""
    folder, curves = RunDir(run.path), {}
    for curve in probe_of_run(run.config).curves:
        path = folder.curve_file(curve.name)
        if not path.is_file():
            continue
        values = np.load(path)
        curves[f"{curve.name}_frequencies_hz"], curves[curve.name] = values[0], values[1:] if curve.per_class else values[1]
    return curves


def objective_record(run) -> dict:
    """The run's outputs/objective.json (what it optimised, the probe's own record); empty if absent."""
    path = RunDir(run.path).objective_file
    return json.loads(path.read_text()) if path.is_file() else {}


def run_cautions(run, classifier=None) -> list[str]:
    """What a reader must know before trusting the run at all: its clips are synthetic (probe's generated test data),
    or its classifier has no trained weights (analysed with allow_untrained)."""
    cautions = []
    kind, _, folder = str(run.config.get("data", "")).partition(":")
    descriptor = Path(folder) / DATASET_JSON if folder else None
    synthetic = kind == "synthetic" or (descriptor is not None and descriptor.is_file()
                                        and "synthetic" in json.loads(descriptor.read_text()))
    if synthetic:
        cautions.append("The clips are synthetic (probe's generated test data), not recordings: nothing here describes "
                        "how the classifier hears real audio.")
    untrained = objective_record(run).get("classifier_untrained") or getattr(classifier, "untrained", None)
    if untrained:
        cautions.append(f"The classifier is untrained ({untrained}): what it 'listens to' says nothing of a trained "
                        "network.")
    return cautions


def scored_against_labels(run) -> bool:
    """Whether the run's targets are the dataset's labels (not the classifier's own decisions)."""
    return scored_against(run) == LABELS


def scored_against(run) -> str:
    """What the run's targets are: `labels`, or `decisions` (the classifier's own top class on each original, stored by
    a run trained without labels)."""
    return objective_record(run).get("targets", LABELS)


def chain_identity(run):
    """The originals through the run's resampling chain alone (to the AE's rate and back): what an identity in the
    AE's place would have passed on, computed a chunk at a time as it is read (`TransformedRows`). The originals
    themselves when the AE runs at the classifier's rate."""
    import torch  # only for a chain at another rate; the run's readers need no torch

    from probe.audio import make_resampler

    rate = objective_record(run).get("ae_sample_rate") or (run.config.get("ae_options") or {}).get("sample_rate")
    if not rate or int(rate) == run.sample_rate:
        return run.originals
    there, back = make_resampler(run.sample_rate, int(rate)), make_resampler(int(rate), run.sample_rate)

    def chain(clips: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.tensor(clips, dtype=torch.float32)
            return back(there(x))[..., : x.shape[-1]].numpy()

    return TransformedRows(run.originals, chain)
