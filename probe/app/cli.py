"""The `probe` command line: a thin layer from flags to config dataclasses to library calls.

Heavy modules (torch, librosa, ...) are imported inside each command, so `probe --help`
answers at once. A `ProbeError` becomes one line on stderr and its exit code (2 bad input,
3 a runtime failure); `--debug` shows the traceback instead. The conventions every command
keeps are in `CONVENTIONS`, which `probe --help` prints.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass, replace
from typing import Callable

from probe.app.flags import Choices, Parser, add_field, comma_list, count, default_of, deprecated

EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

CONVENTIONS = """\
conventions (every command):
  --debug, -v/--verbose, -q/--quiet   accepted before or after the command
  --classifier-weights, --ae-weights  a checkpoint: a path, or a name from `probe download weights --list`
  --classifier-option, --ae-option    KEY=VALUE build options (repeatable)
  --out DIR                           the output folder, always a folder; probe writes only into a new or empty
                                      folder, or one it made for the same command, and never into a folder that
                                      holds the command's inputs (predict writes a file: --out-file FILE)
  --format                            the output format
  --jobs N                            how many processes work at once
  --allow-untrained                   probe a classifier without trained weights (refused otherwise)

exit codes: 0 success; 1 some inputs of a batch failed (the others have results); 2 usage or bad input;
3 a runtime failure (a full disk, a failed download or run); 130 interrupted; 143 terminated.
Old flag spellings still work for one release and say what replaces them."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    aliases: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, aliases: tuple[str, ...] = ()) -> Callable[[Callable[[argparse.Namespace], int]],
                                                                            Callable[[argparse.Namespace], int]]:
    """Register `run` as `probe NAME` (and its `aliases`); its arguments come from the function `<run>.arguments`."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, getattr(run, "arguments", lambda parser: None), run, aliases)
        return run

    return decorate


def arguments(add: Callable[[argparse.ArgumentParser], None]):
    """Attach an argument-adding function to a command's run function."""

    def attach(run):
        run.arguments = add
        return run

    return attach


# --- probe models -----------------------------------------------------------------------


def _models_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["classifier", "autoencoder"], help="only this kind")


@command("models", "list the registered classifiers and autoencoders, with their published weights")
@arguments(_models_args)
def run_models(args: argparse.Namespace) -> int:
    from probe.models import list_models

    for spec in list_models(args.kind):
        rate = f"{spec.sample_rate:>6} Hz" if spec.sample_rate else "   any   "
        print(f"{spec.kind:<12} {spec.name:<20} {rate}  {spec.description}")
        for source in spec.weights:
            print(f"{'':<12} {'':<20} weights: {source.name:<20} {source.note}")
    return 0


# --- probe predict ----------------------------------------------------------------------


def _file_command_args(parser: argparse.ArgumentParser, config_class: type, weights: str) -> None:
    """Arguments shared by the commands that run a model over audio files; `weights` is the config's weights field
    (`classifier_weights`, `ae_weights`)."""
    parser.add_argument("audio", nargs="+", help="audio files or folders of audio files")
    flag = "--" + weights.replace("_", "-")
    parser.add_argument(flag, dest=weights, metavar="CHECKPOINT",
                        help="checkpoint path or published checkpoint name (see `probe download weights --list`)")
    deprecated(parser, "--weights", flag, dest=weights)
    add_field(parser, config_class, "device", help="cpu, cuda, cuda:1, ...")
    add_field(parser, config_class, "strict", help="stop at the first unreadable file (exit 2) instead of going on")


def _classifier_option_arg(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument("--classifier-option", action="append", default=[], metavar="KEY=VALUE",
                        help=help or "a classifier option (repeatable), e.g. multi_label=true for a tagger whose outputs "
                                     "are independent sigmoids and which does not say so itself, or revision=... for hf:")


def _allow_untrained_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-untrained", action="store_true",
                        help="go on with a classifier that has no trained weights (a built-in without "
                             "--classifier-weights, a checkpoint saved untrained, a replaced head); refused otherwise, "
                             "since an untrained network's preferences say nothing of a trained one")


def _ae_weights_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ae-weights", metavar="CHECKPOINT",
                        help="the autoencoder's starting weights (path or published name); {fold} is filled with the "
                             "validation fold, e.g. runs/pre/fold-{fold}/best.pt")


def _predict_args(parser: argparse.ArgumentParser) -> None:
    from probe.inference import PredictConfig

    _file_command_args(parser, PredictConfig, "classifier_weights")
    parser.add_argument("--classifier", required=True,
                        help="a name from `probe models`, hf:PATH_OR_REPO (a transformers audio classifier), "
                             "or package.module:factory")
    add_field(parser, PredictConfig, "num_classes", type=int,
              help="re-head to this many classes (a classifier whose builder can; a fixed head is refused)",
              default_help="the checkpoint's head, else the classifier's own, else 50")
    _classifier_option_arg(parser)
    parser.add_argument("--format", choices=["csv", "json"], default="csv", help="the output format (default: csv)")
    parser.add_argument("--out-file", metavar="FILE", help="write the table to this file (atomically) instead of stdout")
    deprecated(parser, "--out", "--out-file", dest="out_file")


@command("predict", "classify audio files: predicted class and logits per file")
@arguments(_predict_args)
def run_predict(args: argparse.Namespace) -> int:
    import json

    from probe.inference import PredictConfig, predict_files

    config = PredictConfig(args.classifier, tuple(args.audio), args.classifier_weights, args.num_classes, args.device,
                           args.strict,
                           classifier_options=_options(args.classifier_option, "--classifier-option"))
    results, class_names = predict_files(config)
    status = _batch_status(results)
    if status == EXIT_USAGE:
        return status
    rows = []
    for result in results:
        row: dict[str, object] = {"file": result.path, "error": result.error or "",
                                  "padded_from_samples": "" if result.padded_from is None else result.padded_from}
        if result.logits:
            best = max(range(len(result.logits)), key=result.logits.__getitem__)
            row.update(predicted_index=best, predicted_class=class_names[best])
            row.update({f"logit_{name}": value for name, value in zip(class_names, result.logits)})
        rows.append(row)
    text = json.dumps(rows, indent=2) + "\n" if args.format == "json" else _csv_text(rows)
    _emit(text, args.out_file)
    padded = sum(1 for r in results if r.padded_from is not None)
    if padded:
        print(f"probe: {padded} file(s) shorter than {args.classifier} takes were zero-padded; see padded_from_samples",
              file=sys.stderr)
    return status


def _batch_status(results: list) -> int:
    """One stderr line per unreadable file; 0 when every file was read, 1 when some were, 2 when none was (a lone
    bad file reads as any other one-line error)."""
    failed = [r for r in results if r.error]
    if len(failed) == len(results) == 1:
        print(f"probe: error: {failed[0].path}: {failed[0].error}", file=sys.stderr)
        return EXIT_USAGE
    for result in failed:
        print(f"probe: {result.path}: {result.error}", file=sys.stderr)
    if failed and len(failed) == len(results):
        print(f"probe: error: none of the {len(results)} files could be read", file=sys.stderr)
        return EXIT_USAGE
    if failed:
        print(f"probe: {len(failed)} of {len(results)} files could not be read (listed above); the others have results",
              file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def _csv_text(rows: list[dict[str, object]]) -> str:
    import csv
    import io

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _emit(text: str, out: str | None) -> None:
    if out:
        from probe.fileio import write_text

        write_text(out, text)
    else:
        sys.stdout.write(text)


# --- probe reconstruct ------------------------------------------------------------------


def _reconstruct_args(parser: argparse.ArgumentParser) -> None:
    from probe.inference import ReconstructConfig

    _file_command_args(parser, ReconstructConfig, "ae_weights")
    parser.add_argument("--autoencoder", required=True, help="archisound, random, tiny, or a probe AE checkpoint")
    parser.add_argument("--out", metavar="DIR", help="folder for the reconstructions (WAV at the AE's rate); required")
    deprecated(parser, "--out-dir", "--out", dest="out")


@command("reconstruct", "run an autoencoder over audio files and write the reconstructions")
@arguments(_reconstruct_args)
def run_reconstruct(args: argparse.Namespace) -> int:
    from probe.inference import ReconstructConfig, reconstruct_files

    from probe.errors import ConfigError

    if not args.out:
        raise ConfigError(None, "probe reconstruct needs --out DIR, the folder for the reconstructions")
    config = ReconstructConfig(args.autoencoder, tuple(args.audio), args.out, args.ae_weights, args.device, args.strict)
    results = reconstruct_files(config)
    for result in results:
        if result.output:
            print(f"{result.path} -> {result.output}")
    return _batch_status(results)


# --- probe download ---------------------------------------------------------------------


def _download_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["esc50", "weights"], help="the dataset, or published checkpoints")
    parser.add_argument("names", nargs="*", help="checkpoint names (with `weights`); see --list")
    parser.add_argument("--out", metavar="DIR", help="target folder (default: $PROBE_HOME/data or $PROBE_HOME/weights)")
    deprecated(parser, "--dir", "--out", dest="out")
    parser.add_argument("--list", action="store_true", help="list the downloadable checkpoints")
    parser.add_argument("--mirror", help="fetch from this base URL instead of the official one (file names unchanged)")


@command("download", "fetch ESC-50 (32 kHz) or published checkpoints, verified and resumable")
@arguments(_download_args)
def run_download(args: argparse.Namespace) -> int:
    from probe import download as dl
    from probe.errors import ConfigError

    if args.what == "esc50":
        root = dl.download_esc50(args.out or dl.probe_home() / "data", mirror=args.mirror)
        print(f"ESC-50 is ready: use --data esc50:{root}")
        return 0
    sources = dl.weight_sources()
    if args.list or not args.names:
        for name, source in sorted(sources.items()):
            print(f"{name:<22} {source.filename:<48} {'published sha256' if source.sha256 else 'sha256 kept at first download'}  {source.note}")
        return 0
    unknown = [n for n in args.names if n not in sources]
    if unknown:
        raise ConfigError(None, f"unknown checkpoint {unknown[0]!r}; see `probe download weights --list`")
    for name in args.names:
        path = dl.download_source(sources[name], args.out or dl.default_weights_dir(), mirror=args.mirror)
        print(f"{name}: {path}")
    return 0


# --- probe finetune / probe pretrain-ae / probe train-classifier --------------------------


def _training_args(parser: argparse.ArgumentParser, config_class: type, epochs_help: str | None = None,
                   learning_rate_help: str | None = None) -> None:
    """The arguments every training command shares (TrainingConfig's fields), with `config_class`'s defaults."""
    from probe.esc50 import CLIP_SECONDS as DEFAULT_CLIP_SECONDS  # probe.data's default; it would import torch

    add_field(parser, config_class, "data", help="esc50:DIR, folder:DIR (a folder per class), audio:DIR (any audio, "
                                                 "unlabeled) or synthetic[:DIR]")
    add_field(parser, config_class, "fold", help="validation fold (the others train, less any --hold-out)")
    parser.add_argument("--folds", help="cross-validation: comma-separated folds K, one run each in OUT/fold-K, "
                                        "validated on K (train-classifier and pretrain-ae: or on the next fold, see "
                                        "--select-on)")
    parser.add_argument("--jobs", type=count, metavar="N",
                        help="with --folds or --grid: runs trained at once, each in its own process with an equal share "
                             "of the cores (default: 1, one after another; with --launcher: no limit)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the run directory (with --folds or --grid: the "
                                                                    "folder of the runs)")
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    add_field(parser, config_class, "epochs", type=int, help="training epochs", default_help=epochs_help)
    add_field(parser, config_class, "learning_rate", "--lr", type=float, help="AdamW learning rate",
              default_help=learning_rate_help)
    add_field(parser, config_class, "weight_decay", help="AdamW weight decay")
    add_field(parser, config_class, "batch_size", help="effective batch size")
    add_field(parser, config_class, "micro_batch_size", type=int, help="accumulate micro-batches of this size up to --batch-size",
              default_help="the batch size" if default_of(config_class, "micro_batch_size") is None else None)
    add_field(parser, config_class, "scheduler", choices=Choices(_scheduler_names),
              help="learning-rate schedule: %(choices)s")
    add_field(parser, config_class, "seed", help="seeds the initialisation, the order and the augmentations")
    add_field(parser, config_class, "device", help="auto, cpu, cuda, cuda:1, ... (under torchrun: each rank's GPU)")
    add_field(parser, config_class, "clip_seconds", type=float, help="pad or crop every clip to this length",
              default_help=f"the dataset's own (ESC-50: 5 s), else {DEFAULT_CLIP_SECONDS:g} s")
    add_field(parser, config_class, "compile", help="torch.compile the training forward (CUDA only)")
    add_field(parser, config_class, "stop_after_epochs", type=int, help="stop (resumably) after this many epochs")
    add_field(parser, config_class, "deterministic",
              help="torch's deterministic algorithms: on CUDA a rerun gives the same numbers, slower (see README)")
    add_field(parser, config_class, "checkpoint_minutes", type=float,
              help="also save latest.pt inside an epoch every this many minutes (for pre-emptible jobs)",
              default_help="at epoch ends only")
    add_field(parser, config_class, "cache_dir", type=str,
              help="decoded-clip cache shared by runs (shared: $PROBE_HOME/cache/decoded): a grid decodes each dataset "
                   "once", default_help="each run's own cache/")


def _training_fields(args: argparse.Namespace) -> dict[str, object]:
    """The parsed values of TrainingConfig's fields that `_training_args` gives flags (the AE's are per command)."""
    from dataclasses import fields

    from probe.train.config import TrainingConfig

    return {f.name: getattr(args, f.name) for f in fields(TrainingConfig)
            if f.name not in ("autoencoder", "ae_weights", "ae_options", "hold_out_folds", "progress")}


def _scheduler_names() -> list[str]:
    from probe.train.schedulers import SCHEDULERS

    return SCHEDULERS.names()


def _parse_folds(text: str | None) -> list[int] | None:
    from probe.errors import ConfigError

    if not text:
        return None
    try:
        return [int(f) for f in text.split(",")]
    except ValueError:
        raise ConfigError(None, f"--folds takes comma-separated integers, got {text!r}") from None


def _report_runs(command_name: str, runs: list) -> int:
    for run in runs:
        print(f"probe {command_name}: {'complete' if run.is_complete() else 'stopped, resumable'}: {run.path}")
    return 0


def _train_each_fold(command_name: str, train, config, args: argparse.Namespace, hint) -> int:
    """Run `train(config, resume)` once, or once per --folds entry (`--select-on`); print `hint(run)` for complete
    runs."""
    from probe.errors import ConfigError
    from probe.train.loop import run_folds

    folds = _parse_folds(args.folds)
    if args.select_on != "scored" and not folds:
        raise ConfigError(None, f"--select-on {args.select_on} takes effect with --folds; for one run give --fold (the "
                                "fold to select on) and --hold-out (the fold to keep out)")
    runs = (run_folds(train, config, folds, args.resume, args.jobs or 1, args.select_on,
                      say=lambda text: print(f"probe {command_name}: {text}", flush=True))
            if folds else [train(config, args.resume)])
    for run in runs:
        if run.is_complete():
            print(f"probe {command_name}: {hint(run)}")
    return _report_runs(command_name, runs)


def _probe_defaults(attribute: str) -> str:
    """`autoencoder: 100, spectral-gain: 20, ...`: a training default per registered probe type."""
    from probe.probes import PROBES

    return "per --probe: " + ", ".join(f"{spec.name} {getattr(spec, attribute):g}" for spec in PROBES.ensure_loaded().values())


def _finetune_args(parser: argparse.ArgumentParser) -> None:
    from probe.probes import PROBES
    from probe.train.config import FinetuneConfig
    from probe.train.objectives import OBJECTIVES

    probes = PROBES.ensure_loaded()
    add_field(parser, FinetuneConfig, "classifier", help="a name from `probe models`, hf:PATH_OR_REPO (a transformers "
                                                        "audio classifier), or package.module:factory")
    parser.add_argument("--classifier-weights", metavar="CHECKPOINT",
                        help="the classifier's checkpoint (path or published name); {fold} is filled with the "
                             "validation fold, e.g. passt_esc50_fold{fold}")
    _allow_untrained_arg(parser)
    _classifier_option_arg(parser)
    add_field(parser, FinetuneConfig, "num_classes", type=int,
              help="re-head the classifier to this many classes (a classifier whose builder can; a fixed head is "
                   "refused)", default_help="the data's classes with labels, the classifier's own without")
    parser.add_argument("--probe", choices=list(probes),
                        help="; ".join(f"{spec.name}: {spec.description}" for spec in probes.values())
                             + " (default: the one that builds --autoencoder, else autoencoder)")
    add_field(parser, FinetuneConfig, "autoencoder", help="archisound, random, tiny, or a probe AE checkpoint")
    parser.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an autoencoder build option, e.g. sample_rate=48000 channels=2 with --probe identity (repeatable)")
    _ae_weights_arg(parser)
    for spec in probes.values():
        if spec.penalty is not None:
            parser.add_argument(f"--{spec.penalty.name}-penalty", type=float, dest=f"penalty_{spec.penalty.name}",
                                metavar="WEIGHT",
                                help=f"{spec.penalty.help} (default for --probe {spec.name}: {spec.penalty.default:g})")
    add_field(parser, FinetuneConfig, "per_class",
              help="one curve per class, each trained on its class's clips (--probe "
                   + ", ".join(spec.name for spec in probes.values() if spec.per_class) + ")")
    add_field(parser, FinetuneConfig, "objective", choices=OBJECTIVES.names(),
              help="what the classifier's loss compares against: labels (cross-entropy on the data's labels, the "
                   "study's) or fidelity (the KL divergence from its own output on the original: no labels needed, "
                   "e.g. with --data audio:DIR)")
    add_field(parser, FinetuneConfig, "finetune_encoder", help="train the AE's encoder")
    add_field(parser, FinetuneConfig, "finetune_decoder", help="train the AE's decoder")
    parser.add_argument("--replicates", type=count, default=1, metavar="K",
                        help="train K replicates of each run, differing only in their seed, in OUT/rep-k: the answer's "
                             "words need at least 2 that agree (5 recommended; default: 1)")
    parser.add_argument("--grid", nargs="+", metavar="AXIS=NAME[@WEIGHTS],...",
                        help="run a grid into OUT/CLASSIFIER--AE, e.g. classifier=mn10@mn10.pt,passt@passt_esc50_fold1 "
                             "autoencoder=archisound@pretrained.pt,random; complete runs are skipped")
    _training_args(parser, FinetuneConfig, epochs_help=_probe_defaults("epochs"),
                   learning_rate_help=_probe_defaults("learning_rate"))
    cluster = parser.add_argument_group("cluster (with --grid or --folds; needs pip install 'probe[cluster]')")
    cluster.add_argument("--launcher", choices=("local", "slurm"),
                         help="submit the cells through submitit: slurm (one array job, a task per cell; returns "
                              "at once: watch with `probe status OUT`) or local (the same tasks as processes here; "
                              "waits)")
    cluster.add_argument("--partition", metavar="NAME", help="SLURM partition")
    cluster.add_argument("--gpus-per-task", type=int, default=0, metavar="N", help="GPUs per task (default: 0)")
    cluster.add_argument("--cpus-per-task", type=int, metavar="N", help="CPUs per task")
    cluster.add_argument("--time-min", type=int, default=24 * 60, metavar="MINUTES",
                         help="time limit per task in minutes (default: 1440); a task past it is requeued and resumes")
    deprecated(cluster, "--parallel", "--jobs", dest="jobs", type=count)
    cluster.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                         help="an extra sbatch option, e.g. --sbatch account=abc (repeatable)")


def _penalty(args: argparse.Namespace, probe_name: str) -> float | None:
    """The penalty weight given for the chosen probe type; a penalty flag of another probe type is an error."""
    from probe.errors import ConfigError
    from probe.probes import PROBES

    chosen = None
    for spec in PROBES.values():
        if spec.penalty is None:
            continue
        given = getattr(args, f"penalty_{spec.penalty.name}")
        if given is None:
            continue
        if spec.name != probe_name:
            raise ConfigError(None, f"--{spec.penalty.name}-penalty belongs to --probe {spec.name}, not {probe_name}")
        chosen = given
    return chosen


@command("finetune", "finetune an autoencoder in front of a frozen classifier (the study's method)")
@arguments(_finetune_args)
def run_finetune(args: argparse.Namespace) -> int:
    from probe.train.finetune import (FinetuneConfig, finetune, finetune_folds, finetune_grid, finetune_replicates,
                                      parse_grid)

    config = FinetuneConfig(**_training_fields(args), probe=args.probe,
                            classifier=args.classifier, classifier_weights=args.classifier_weights,
                            classifier_options=_options(args.classifier_option, "--classifier-option"),
                            autoencoder=args.autoencoder, ae_weights=args.ae_weights,
                            ae_options=_options(args.ae_option, "--ae-option"), per_class=args.per_class,
                            objective=args.objective, finetune_encoder=args.finetune_encoder,
                            finetune_decoder=args.finetune_decoder, allow_untrained=args.allow_untrained,
                            num_classes=args.num_classes,
                            progress=not args.quiet)
    config = replace(config, penalty=_penalty(args, config.probe_spec.name))
    config.validate()
    folds = _parse_folds(args.folds)
    if args.launcher:
        return _launch(config, args, folds)
    if args.grid:
        runs = finetune_grid(config, parse_grid(args.grid), folds, resume=args.resume, jobs=args.jobs or 1,
                             replicates=args.replicates)
    elif args.replicates > 1:
        runs = finetune_replicates(config, args.replicates, folds, resume=args.resume, jobs=args.jobs or 1)
    elif folds:
        runs = finetune_folds(config, folds, resume=args.resume, jobs=args.jobs or 1)
    else:
        runs = [finetune(config, resume=args.resume)]
    return _report_runs("finetune", runs)


def _launch(config, args: argparse.Namespace, folds: list[int] | None) -> int:
    """`--launcher`: the grid's (or the folds') cells as submitit tasks; local waits for them, slurm returns."""
    from probe.errors import ConfigError
    from probe.progress import Progress
    from probe.rundir import RunDir
    from probe.train.finetune import parse_grid
    from probe.train.launch import LaunchConfig, launch_cells, wait_for

    if not (args.grid or folds):
        raise ConfigError(None, "--launcher submits a grid's cells or folds: give --grid or --folds")
    launch = LaunchConfig(args.launcher, None, args.partition, args.gpus_per_task, args.cpus_per_task, args.time_min,
                          args.jobs, {key: str(value) for key, value in _options(args.sbatch, "--sbatch").items()})
    cells, jobs = launch_cells(config, parse_grid(args.grid) if args.grid else None, folds, launch)
    say = Progress(config.progress, prefix="probe finetune: ")
    if launch.launcher == "slurm":
        print(f"probe finetune: submitted {len(jobs)} task(s) as job {str(jobs[0].job_id).split('_')[0]}; "
              f"watch them with `probe status {config.out}`")
        return 0
    failures = wait_for(jobs, cells, say)
    for failure in failures:
        print(f"probe: error: {failure}", file=sys.stderr)
    return (EXIT_USAGE if len(failures) == len(cells) else EXIT_PARTIAL) if failures else _report_runs(
        "finetune", [RunDir(cell.out) for cell in cells])


def _pretrain_args(parser: argparse.ArgumentParser) -> None:
    from probe.train.config import PretrainConfig

    add_field(parser, PretrainConfig, "autoencoder", help="where to start: random (Xavier), archisound, tiny, or a checkpoint")
    _ae_weights_arg(parser)
    parser.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                        help="build option of the autoencoder, e.g. sample_rate=16000 for tiny (repeatable)")
    add_field(parser, PretrainConfig, "stft_weight", help="add this times a multi-resolution STFT loss to the MSE")
    _fold_selection_args(parser, PretrainConfig)
    _training_args(parser, PretrainConfig)


def _fold_selection_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    from probe.folds import SELECT_ON

    add_field(parser, config_class, "hold_out_folds", "--hold-out", metavar="FOLDS",
              type=lambda text: tuple(map(int, comma_list(text))),
              help="folds neither trained nor selected on: the fold the finetuned probes will be analysed on")
    parser.add_argument("--select-on", choices=tuple(SELECT_ON), default="scored",
                        help="with --folds, where run OUT/fold-K picks its best.pt: on fold K (cross-validation's usual "
                             "way; a finetuning scored on fold K is then warned about), or on the next fold with K held "
                             "out, clean for finetuning with OUT/fold-{fold}/best.pt (default: scored)")


@command("pretrain-ae", "reconstruction-pretrain an autoencoder on a dataset (MSE, optional multi-resolution STFT)")
@arguments(_pretrain_args)
def run_pretrain(args: argparse.Namespace) -> int:
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    config = PretrainConfig(**_training_fields(args), autoencoder=args.autoencoder,
                            ae_weights=args.ae_weights, stft_weight=args.stft_weight,
                            ae_options=_options(args.ae_option, "--ae-option"),
                            hold_out_folds=tuple(args.hold_out_folds or ()), progress=not args.quiet)
    return _train_each_fold("pretrain-ae", pretrain_autoencoder, config, args,
                            lambda run: f"the pretrained AE is {run.best}; start finetuning from it with --autoencoder {run.best}")


def _train_classifier_args(parser: argparse.ArgumentParser) -> None:
    from probe.train.config import ClassifierTrainConfig

    add_field(parser, ClassifierTrainConfig, "classifier", help="mn10, dymn10, passt, small_cnn, ...")
    add_field(parser, ClassifierTrainConfig, "init", "--classifier-weights", metavar="CHECKPOINT",
              help="where training starts: audioset (the published AudioSet weights, re-headed), none (random), or a "
                   "checkpoint path or published name")
    deprecated(parser, "--init", "--classifier-weights", dest="init")
    add_field(parser, ClassifierTrainConfig, "mixup_alpha", "--mixup", help="mixup alpha (0: off)")
    add_field(parser, ClassifierTrainConfig, "gain_db", help="random gain within +-this many dB (0: off)")
    add_field(parser, ClassifierTrainConfig, "roll", help="random time roll")
    _classifier_option_arg(parser, "a classifier build option, e.g. sample_rate=16000 for small_cnn (repeatable)")
    deprecated(parser, "--option", "--classifier-option", dest="classifier_option", append=True)
    _fold_selection_args(parser, ClassifierTrainConfig)
    from probe.train.config import RECIPE_LEARNING_RATE

    recipe = ", ".join(f"{name} {rate:g}" for name, rate in RECIPE_LEARNING_RATE.items())
    _training_args(parser, ClassifierTrainConfig, learning_rate_help=f"the recipe's: {recipe}")


def _options(items: list[str], flag: str = "--option") -> dict[str, object]:
    import json

    from probe.errors import ConfigError

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(None, f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@command("train-classifier", "train a classifier on a dataset (EfficientAT's ESC-50 recipe by default)")
@arguments(_train_classifier_args)
def run_train_classifier(args: argparse.Namespace) -> int:
    from probe.train.classifier import ClassifierTrainConfig, train_classifier

    config = ClassifierTrainConfig(**_training_fields(args), classifier=args.classifier,
                                   classifier_options=_options(args.classifier_option, "--classifier-option"),
                                   init=args.init, mixup_alpha=args.mixup_alpha,
                                   gain_db=args.gain_db, roll=args.roll,
                                   hold_out_folds=tuple(args.hold_out_folds or ()), progress=not args.quiet)
    return _train_each_fold("train-classifier", train_classifier, config, args,
                            lambda run: f"load it with --classifier {args.classifier} --classifier-weights {run.best}")


# --- probe analyse / probe compare --------------------------------------------------------


def _analysis_settings_args(parser: argparse.ArgumentParser) -> None:
    """The settings `probe analyse` and `probe compare` share (AnalyseConfig's, ShiftSettings', AttributionSettings')."""
    from probe.analyses.config import AnalyseConfig, AttributionSettings, RemovalSettings, ShiftSettings

    add_field(parser, AnalyseConfig, "band_sets", choices=Choices(_band_set_names, multiple=True),
              help="band sets, comma-separated: %(choices)s")
    add_field(parser, ShiftSettings, "correction", choices=Choices(_correction_names),
              help="multiple-test correction across bands: %(choices)s")
    add_field(parser, ShiftSettings, "n_boot", "--bootstrap", help="bootstrap resamples for the confidence intervals")
    add_field(parser, ShiftSettings, "level", help="confidence level of the intervals")
    add_field(parser, ShiftSettings, "threshold_db", help="shift beyond which a band counts as suppressed/boosted")
    add_field(parser, ShiftSettings, "noise_floor_db",
              help="bands this far below the loudest band of the originals get no verdict (their dB ratios mean nothing)")
    add_field(parser, ShiftSettings, "clip_floor_db", type=float,
              help="per clip, bands this far below the clip's loudest band are left out of the band-shift means "
                   "(they held next to nothing); a negative value keeps every clip")
    add_field(parser, AttributionSettings, "methods", choices=Choices(_attribution_names, multiple=True),
              help="attribution methods, comma-separated (%(choices)s), or none")
    add_field(parser, AttributionSettings, "max_clips", "--attribution-clips", type=int,
              help="attribute at most this many clips per run", default_help="64 on a GPU, 16 on a CPU")
    add_field(parser, AttributionSettings, "max_memory_gb", "--max-memory", type=float,
              help="GB the attributions may hold at once; each pass through the classifier carries what fits",
              default_help="half the GPU on CUDA; a quarter of the RAM, at most 4, on a CPU")
    add_field(parser, AttributionSettings, "ig_steps", help="integrated gradients: interpolation steps per clip")
    add_field(parser, AttributionSettings, "shap_samples", help="GradientSHAP: samples per clip")
    add_field(parser, AttributionSettings, "occlusion_patch", help="occlusion: mel bins,frames per occluded patch")
    add_field(parser, AttributionSettings, "sanity_clips", help="clips of the randomisation check")
    add_field(parser, AttributionSettings, "randomisation_stages",
              help="cascading stages of the randomisation check (each costs one attribution pass per method)")
    add_field(parser, AnalyseConfig, "examples", type=str, help="validation positions kept as audio, comma-separated",
              default_help="the study's on ESC-50, else the first clip of each class")
    add_field(parser, AnalyseConfig, "residuals", choices=["examples", "all"],
              help="write the residual audio (original - finetuned reconstruction) for the examples or all clips")
    add_field(parser, AnalyseConfig, "seed", help="seeds every random draw of the analysis")
    add_field(parser, AnalyseConfig, "device", help="auto, cpu, cuda, ...")
    _allow_untrained_arg(parser)
    answer = parser.add_argument_group("the answer's removal checks")
    add_field(answer, RemovalSettings, "margin_points", "--removal-margin",
              help="a band removed from the originals that costs less than this many points (accuracy, or agreement "
                   "without labels) can be done without; more, is needed")
    add_field(answer, RemovalSettings, "max_sets", "--removal-sets",
              help="at most this many removals per classifier (one classifier pass over the clips each)")
    answer.add_argument("--no-answer", action="store_true",
                        help="no answer and no removal checks (they need the classifier: seconds per removal on a CPU "
                             "for small networks)")


def _band_set_names() -> list[str]:
    from probe.analyses.bands import BAND_SETS

    return BAND_SETS.names()


def _correction_names() -> list[str]:
    from probe.analyses.stats import CORRECTIONS

    return list(CORRECTIONS)


def _attribution_names() -> list[str]:
    from probe.analyses.attribution import ATTRIBUTION_METHODS

    return ATTRIBUTION_METHODS.names()


def _int_pair(values, flag: str) -> tuple[int, int]:
    from probe.errors import ConfigError

    try:
        pair = tuple(int(v) for v in values)
    except ValueError:
        pair = ()
    if len(pair) != 2:
        raise ConfigError(None, f"{flag} takes two comma-separated integers, got {','.join(map(str, values))!r}")
    return pair


def _analyse_config(args: argparse.Namespace, runs: tuple[str, ...], transfer: bool):
    from probe.analyses.analyse import check_names
    from probe.analyses.config import AnalyseConfig, AttributionSettings, RemovalSettings, ShiftSettings
    from probe.errors import ConfigError

    try:
        examples = tuple(int(i) for i in comma_list(args.examples)) if args.examples else None
    except ValueError:
        raise ConfigError(None, f"--examples takes comma-separated integers, got {args.examples!r}") from None
    config = AnalyseConfig(
        runs=runs, out=args.out, band_sets=args.band_sets,
        shifts=ShiftSettings(n_boot=args.n_boot, level=args.level, correction=args.correction,
                             threshold_db=args.threshold_db, noise_floor_db=args.noise_floor_db,
                             clip_floor_db=None if args.clip_floor_db is None or args.clip_floor_db < 0 else args.clip_floor_db),
        attributions=AttributionSettings(methods=args.methods, max_clips=args.max_clips, max_memory_gb=args.max_memory_gb,
                                         ig_steps=args.ig_steps, shap_samples=args.shap_samples,
                                         occlusion_patch=_int_pair(args.occlusion_patch, "--occlusion-patch"),
                                         sanity_clips=args.sanity_clips, randomisation_stages=args.randomisation_stages),
        examples=examples, residuals=args.residuals, transfer=transfer, seed=args.seed, device=args.device,
        progress=not args.quiet, allow_untrained=args.allow_untrained,
        removal=None if args.no_answer else RemovalSettings(margin_points=args.margin_points, max_sets=args.max_sets),
    )
    check_names(config)
    return config


def _analyse_args(parser: argparse.ArgumentParser) -> None:
    from probe.analyses.config import AnalyseConfig

    parser.add_argument("runs", nargs="+", help="complete finetune run directories (one per classifier/AE setting)")
    add_field(parser, AnalyseConfig, "out", help="the analysis folder (replaced atomically)")
    add_field(parser, AnalyseConfig, "transfer", help="the cross-classifier transfer matrix")
    _analysis_settings_args(parser)


@command("analyse", "band-energy shifts, spectra, accuracy, attributions and transfer from finetune runs",
         aliases=("analyze",))
@arguments(_analyse_args)
def run_analyse(args: argparse.Namespace) -> int:
    from probe.analyses.analyse import analyse

    out = analyse(_analyse_config(args, tuple(args.runs), transfer=args.transfer))
    print(f"probe analyse: wrote {out}")
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    from probe.analyses.config import CompareConfig

    parser.add_argument("originals", help="folder of original audio (a folder per class gives per-class tables)")
    parser.add_argument("processed", help="folder of processed audio, same relative paths (the extension may differ)")
    add_field(parser, CompareConfig, "out", help="the analysis folder (replaced atomically); `probe report` reads it")
    add_field(parser, CompareConfig, "classifier", type=str,
              help="also score a classifier on both sides (a name from `probe models`, or hf:PATH_OR_REPO)")
    add_field(parser, CompareConfig, "classifier_weights", type=str, help="the classifier's checkpoint")
    deprecated(parser, "--weights", "--classifier-weights", dest="classifier_weights")
    _classifier_option_arg(parser)
    add_field(parser, CompareConfig, "categories_csv", "--categories", type=str, help="a class,category CSV for the class folders")
    add_field(parser, CompareConfig, "sample_rate", type=int, help="analysis rate",
              default_help="the classifier's, else the first original's")
    parser.add_argument("--max-lag-ms", type=float, metavar="MS", default=1000 * default_of(CompareConfig, "max_lag_seconds"),
                        help=f"search a delay of the processed side up to this "
                             f"(default: {1000 * default_of(CompareConfig, 'max_lag_seconds'):g})")
    _analysis_settings_args(parser)


@command("compare", "the same analyses for any pair of original and processed audio folders (codecs, denoisers, ...)")
@arguments(_compare_args)
def run_compare(args: argparse.Namespace) -> int:
    from probe.analyses.compare import CompareConfig, compare

    config = CompareConfig(args.originals, args.processed, args.out, args.classifier, args.classifier_weights,
                           args.categories_csv,
                           args.sample_rate, args.max_lag_ms / 1000, device=args.device,
                           classifier_options=_options(args.classifier_option, "--classifier-option"))
    out = compare(config, _analyse_config(args, (args.originals, args.processed), transfer=False))
    print(f"probe compare: wrote {out}; render it with `probe report {out}`")
    return 0


# --- probe report / probe figures --------------------------------------------------------


def _report_args(parser: argparse.ArgumentParser) -> None:
    from probe.reports.config import ReportConfig

    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    add_field(parser, ReportConfig, "out", help="the report folder (replaced atomically)")
    add_field(parser, ReportConfig, "band_set", choices=["octave", "third_octave"],
              help="band set of the overview profiles: %(choices)s")
    add_field(parser, ReportConfig, "attribution_method", type=str, help="the attribution method the pages show",
              default_help="the first analysed")
    add_field(parser, ReportConfig, "jobs", type=count, help="processes that draw the figures (1: in this one)",
              default_help="one per core, at most 4")


@command("report", "write the HTML report (one page per classifier, by category, with audio) from analyses")
@arguments(_report_args)
def run_report(args: argparse.Namespace) -> int:
    from probe.reports.build import ReportConfig, build_report

    index = build_report(ReportConfig(tuple(args.analyses), args.out, args.band_set, args.attribution_method,
                                      jobs=args.jobs, progress=not args.quiet))
    print(f"probe report: open {index.resolve().as_uri()}")
    return 0


def _status_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", help="a grid's folder (or any folder of run directories, or one run)")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="a table, or one JSON object per run (default: table)")
    deprecated(parser, "--json", "--format json", dest="format", const="json")


@command("status", "where every run of a grid stands: state, epoch, best score, time per epoch, job id")
@arguments(_status_args)
def run_status(args: argparse.Namespace) -> int:
    import json

    from probe.train.status import format_status, grid_status

    for folder in args.folders:
        rows = grid_status(folder)
        if args.format == "json":
            for row in rows:
                print(json.dumps(row))
        else:
            print(f"{folder}:\n{format_status(rows)}" if len(args.folders) > 1 else format_status(rows))
    return 0


def _figures_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    parser.add_argument("--out", default="figures", metavar="DIR", help="folder for the figure files (default: figures)")
    from probe.reports.config import FIGURE_FORMATS

    formats = Choices(lambda: FIGURE_FORMATS, multiple=True)
    parser.add_argument("--format", default=FIGURE_FORMATS, type=formats.parse, metavar="A,B,...", choices=formats,
                        help="the figure formats, comma-separated: %(choices)s (default: all)")


@command("figures", "write the comparison figures alone, sized for papers")
@arguments(_figures_args)
def run_figures(args: argparse.Namespace) -> int:
    from probe.errors import ConfigError
    from probe.reports.paper import write_paper_figures

    from probe.reports.config import FIGURE_FORMATS

    formats = tuple(args.format)
    if not formats:
        raise ConfigError(None, f"--format takes one or more of {', '.join(FIGURE_FORMATS)}")
    written = write_paper_figures(list(args.analyses), args.out, formats)
    print(f"probe figures: wrote {len(written)} files to {args.out}")
    return 0


# --- probe demo -------------------------------------------------------------------------


def _demo_args(parser: argparse.ArgumentParser) -> None:
    from probe.app.demo import DemoConfig
    from probe.train.objectives import OBJECTIVES

    add_field(parser, DemoConfig, "out", help="everything the demo writes goes under this folder")
    add_field(parser, DemoConfig, "seed", help="seeds the data, the classifiers, the probes and the analyses")
    add_field(parser, DemoConfig, "data", type=str, help="esc50:DIR runs the study's grid on ESC-50 instead of the synthetic demo")
    add_field(parser, DemoConfig, "weights_dir", type=str,
              help="with --data: the folder holding the classifier and AE checkpoints")
    add_field(parser, DemoConfig, "device", help="auto, cpu, cuda, ...")
    add_field(parser, DemoConfig, "objective", choices=OBJECTIVES.names(),
              help="the probes' objective; fidelity probes the same planted CNNs with the labels withheld, beside the "
                   "labelled runs (runs-fidelity/, report-fidelity/, planted-fidelity.json)")


@command("demo", "the whole study offline in minutes: planted classifiers, probes, analyses and the HTML report")
@arguments(_demo_args)
def run_demo(args: argparse.Namespace) -> int:
    from probe.app.demo import DemoConfig, run_demo as demo

    index = demo(DemoConfig(out=args.out, seed=args.seed, data=args.data, weights_dir=args.weights_dir, device=args.device,
                            objective=args.objective, progress=not args.quiet))
    print(f"probe demo: the report is {index.resolve().as_uri()}")
    return 0


# --- entry point ------------------------------------------------------------------------


def _global_flags(parser: argparse.ArgumentParser, default: object = False) -> None:
    """The flags every command takes, before or after its name (after it, `default` is SUPPRESS, so that a flag given
    before the name is not reset)."""
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no progress bars or progress lines (results, warnings and errors still print)")


def build_parser() -> argparse.ArgumentParser:
    from probe import __version__

    parser = Parser(
        prog="probe",
        description="What do deep networks like to hear? Autoencoder probes for trained audio classifiers.",
        epilog=CONVENTIONS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        command_parser = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, aliases=list(cmd.aliases))
        cmd.add_arguments(command_parser)
        _global_flags(command_parser.add_argument_group("global flags"), argparse.SUPPRESS)
        command_parser.set_defaults(command=cmd.name)
    return parser


def main(argv: list[str] | None = None) -> int:
    from probe.errors import ProbeError

    try:
        parser = build_parser()  # reads the registries, which load the plugins
    except ProbeError as exc:
        print(f"probe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (argparse said why) or --help / --version
        return int(exc.code or 0)
    from probe.rundir import record_command

    record_command(sys.argv[1:] if argv is None else list(argv))
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="probe: %(message)s")

    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        return COMMANDS[args.command].run(args)
    except ProbeError as exc:
        if args.debug:
            raise
        print(f"probe: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("probe: terminated; run the same command (with --resume for training) to continue", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("probe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        if args.debug:
            raise
        import traceback

        traceback.print_exc()  # a bug, not the user's input: keep the whole story
        print("probe: error: an unexpected failure (the traceback above); please report it", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that the same cleanup as for Ctrl-C runs (no half-written files)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
