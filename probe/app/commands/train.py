"""`probe pretrain-ae` and `probe train-classifier`, and the training arguments every training command shares."""
from __future__ import annotations

import argparse
from typing import Callable

from probe.app.commands import arguments, command
from probe.app.flags import (Choices, add_ae_weights, add_classifier_option, add_field, comma_list, count, default_of,
                             deprecated, parse_folds, parse_options)
from probe.errors import ConfigError

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


def add_training_args(parser: argparse.ArgumentParser, config_class: type, epochs_help: str | None = None,
                      learning_rate_help: str | None = None) -> None:
    """The arguments every training command shares (TrainingConfig's fields), with `config_class`'s defaults."""
    from probe.esc50 import CLIP_SECONDS as DEFAULT_CLIP_SECONDS  # probe.data's default; it would import torch

    add_field(parser, config_class, "data", required=True,
              help="esc50:DIR, folder:DIR (a folder per class), audio:DIR (any audio, unlabeled) or synthetic[:DIR] "
                   "(generated clips, for trying probe out); required")
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
              default_help="the largest that fits --max-memory, measured on the first clips"
              if default_of(config_class, "micro_batch_size") is None else None)
    add_field(parser, config_class, "max_memory_gb", "--max-memory", type=float,
              help="GB a micro-batch's activations may take (sizes the micro-batch)",
              default_help="half the GPU on CUDA, half the RAM on a CPU")
    add_field(parser, config_class, "scheduler", choices=Choices(_scheduler_names),
              help="learning-rate schedule: %(choices)s")
    add_field(parser, config_class, "seed", help="seeds the initialisation, the order and the augmentations")
    add_field(parser, config_class, "device", help="auto, cpu, cuda, cuda:1, ... (under torchrun: each rank's GPU)")
    add_field(parser, config_class, "clip_seconds", type=float, help="pad or crop every clip to this length",
              default_help=f"the dataset's own (ESC-50: 5 s), else {DEFAULT_CLIP_SECONDS:g} s")
    add_field(parser, config_class, "compile", help="torch.compile the training forward (CUDA only)")
    add_field(parser, config_class, "stop_after_epochs", type=int, help="stop (resumably) after this many epochs")
    add_field(parser, config_class, "deterministic",
              help="torch's deterministic algorithms: on CUDA a rerun gives the same numbers, slower (docs/training.md)")
    add_field(parser, config_class, "checkpoint_minutes", type=float,
              help="also save latest.pt inside an epoch every this many minutes (for pre-emptible jobs)",
              default_help="at epoch ends only")
    add_field(parser, config_class, "zero_nonfinite_grads",
              help="zero a step's NaN or infinite gradient entries and count them (recorded in the run) instead of "
                   "stopping at the first such step; a classifier whose input gradient is undefined on some clips "
                   "(digital silence) needs it")
    add_field(parser, config_class, "cache_dir", type=str,
              help="decoded-clip cache shared by runs (shared: $PROBE_HOME/cache/decoded): a grid decodes each dataset "
                   "once", default_help="each run's own cache/")


def training_fields(args: argparse.Namespace) -> dict[str, object]:
    """The parsed values of TrainingConfig's fields that `add_training_args` gives flags (the AE's are per command)."""
    from dataclasses import fields

    from probe.train.config import TrainingConfig

    return {f.name: getattr(args, f.name) for f in fields(TrainingConfig)
            if f.name not in ("autoencoder", "ae_weights", "ae_options", "hold_out_folds", "progress")}


def report_runs(command_name: str, runs: list) -> int:
    """One line per run: complete, or stopped and resumable."""
    for run in runs:
        print(f"probe {command_name}: {'complete' if run.is_complete() else 'stopped, resumable'}: {run.path}")
    return 0


def _scheduler_names() -> list[str]:
    from probe.train.schedulers import SCHEDULERS

    return SCHEDULERS.names()


def _train_each_fold(command_name: str, train: Callable, config: object, args: argparse.Namespace,
                     hint: Callable[..., str]) -> int:
    """Run `train(config, resume)` once, or once per --folds entry (`--select-on`); print `hint(run)` for complete
    runs."""
    from probe.train.loop import run_folds

    folds = parse_folds(args.folds)
    if args.select_on != "scored" and not folds:
        raise ConfigError(None, f"--select-on {args.select_on} takes effect with --folds; for one run give --fold (the "
                                "fold to select on) and --hold-out (the fold to keep out)")
    runs = (run_folds(train, config, folds, args.resume, args.jobs or 1, args.select_on,
                      say=lambda text: print(f"probe {command_name}: {text}", flush=True))
            if folds else [train(config, args.resume)])
    for run in runs:
        if run.is_complete():
            print(f"probe {command_name}: {hint(run)}")
    return report_runs(command_name, runs)


def _fold_selection_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    from probe.folds import SELECT_ON

    add_field(parser, config_class, "hold_out_folds", "--hold-out", metavar="FOLDS",
              type=lambda text: tuple(map(int, comma_list(text))),
              help="folds neither trained nor selected on: the fold the finetuned probes will be analysed on")
    parser.add_argument("--select-on", choices=tuple(SELECT_ON), default="scored",
                        help="with --folds, where run OUT/fold-K picks its best.pt: on fold K (cross-validation's usual "
                             "way; a finetuning scored on fold K is then warned about), or on the next fold with K held "
                             "out, clean for finetuning with OUT/fold-{fold}/best.pt (default: scored)")


def _pretrain_args(parser: argparse.ArgumentParser) -> None:
    from probe.probes import probe_for
    from probe.train.config import PretrainConfig

    modules = ", ".join(module.name for module in probe_for(PretrainConfig.autoencoder).modules)
    add_field(parser, PretrainConfig, "autoencoder", help=f"where to start: {modules}, or a checkpoint")
    add_ae_weights(parser)
    parser.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                        help="build option of the autoencoder, e.g. sample_rate=16000 for tiny (repeatable)")
    add_field(parser, PretrainConfig, "stft_weight", help="add this times a multi-resolution STFT loss to the MSE")
    _fold_selection_args(parser, PretrainConfig)
    add_training_args(parser, PretrainConfig)


@command("pretrain-ae", "reconstruction-pretrain an autoencoder on a dataset (MSE, optional multi-resolution STFT)",
         order=60)
@arguments(_pretrain_args)
def run_pretrain(args: argparse.Namespace) -> int:
    """Pretrain the autoencoder once, or once per fold."""
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    config = PretrainConfig(**training_fields(args), autoencoder=args.autoencoder,
                            ae_weights=args.ae_weights, stft_weight=args.stft_weight,
                            ae_options=parse_options(args.ae_option, "--ae-option"),
                            hold_out_folds=tuple(args.hold_out_folds or ()), progress=not args.quiet)
    return _train_each_fold("pretrain-ae", pretrain_autoencoder, config, args,
                            lambda run: f"the pretrained AE is {run.best}; start finetuning from it with --autoencoder {run.best}")


def _train_classifier_args(parser: argparse.ArgumentParser) -> None:
    from probe.models.registry import CLASSIFIERS
    from probe.train.config import DEFAULT_LEARNING_RATE, ClassifierTrainConfig

    specs = list(CLASSIFIERS.entries())
    add_field(parser, ClassifierTrainConfig, "classifier", help="a registered classifier (" + ", ".join(s.name for s in specs) + ")")
    add_field(parser, ClassifierTrainConfig, "init", "--classifier-weights", metavar="CHECKPOINT",
              help="where training starts: audioset (the published AudioSet weights, re-headed), none (random), or a "
                   "checkpoint path or published name")
    deprecated(parser, "--init", "--classifier-weights", dest="init")
    add_field(parser, ClassifierTrainConfig, "mixup_alpha", "--mixup", help="mixup alpha (0: off)")
    add_field(parser, ClassifierTrainConfig, "gain_db", help="random gain within +-this many dB (0: off)")
    add_field(parser, ClassifierTrainConfig, "roll", help="random time roll")
    add_classifier_option(parser, "a classifier build option, e.g. sample_rate=16000 for small_cnn (repeatable)")
    deprecated(parser, "--option", "--classifier-option", dest="classifier_option", append=True)
    _fold_selection_args(parser, ClassifierTrainConfig)
    recipe = ", ".join(f"{s.name} {s.learning_rate:g}" for s in specs if s.learning_rate) + f", others {DEFAULT_LEARNING_RATE:g}"
    add_training_args(parser, ClassifierTrainConfig, learning_rate_help=f"the recipe's: {recipe}")


@command("train-classifier", "train a classifier on a dataset (EfficientAT's ESC-50 recipe by default)", order=70)
@arguments(_train_classifier_args)
def run_train_classifier(args: argparse.Namespace) -> int:
    """Train the classifier once, or once per fold."""
    from probe.train.classifier import ClassifierTrainConfig, train_classifier

    config = ClassifierTrainConfig(**training_fields(args), classifier=args.classifier,
                                   classifier_options=parse_options(args.classifier_option, "--classifier-option"),
                                   init=args.init, mixup_alpha=args.mixup_alpha,
                                   gain_db=args.gain_db, roll=args.roll,
                                   hold_out_folds=tuple(args.hold_out_folds or ()), progress=not args.quiet)
    return _train_each_fold("train-classifier", train_classifier, config, args,
                            lambda run: f"load it with --classifier {args.classifier} --classifier-weights {run.best}")
