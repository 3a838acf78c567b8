"""`probe finetune`: an autoencoder (or another probe) trained in front of a frozen classifier, alone, per fold, per
replicate, over a grid, or as cluster tasks."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from probe.app.commands import EXIT_PARTIAL, EXIT_USAGE, arguments, command
from probe.app.commands.train import add_training_args, report_runs, training_fields
from probe.app.flags import (add_ae_weights, add_allow_untrained, add_classifier_option, add_field, count, deprecated,
                             parse_folds, parse_options)
from probe.errors import ConfigError

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


def _probe_defaults(attribute: str) -> str:
    """`autoencoder: 100, spectral-gain: 20, ...`: a training default per registered probe type."""
    from probe.probes import PROBES

    return "per --probe: " + ", ".join(f"{spec.name} {getattr(spec, attribute):g}" for spec in PROBES.ensure_loaded().values())


def _finetune_args(parser: argparse.ArgumentParser) -> None:
    from probe.probes import AUTOENCODERS, PROBES
    from probe.train.config import FinetuneConfig
    from probe.train.objectives import OBJECTIVES

    probes = PROBES.ensure_loaded()
    add_field(parser, FinetuneConfig, "classifier", help="a name from `probe models`, hf:PATH_OR_REPO (a transformers "
                                                        "audio classifier), or package.module:factory")
    parser.add_argument("--classifier-weights", metavar="CHECKPOINT",
                        help="the classifier's checkpoint (path or published name); {fold} is filled with the "
                             "validation fold, e.g. passt_esc50_fold{fold}")
    add_allow_untrained(parser)
    add_classifier_option(parser)
    add_field(parser, FinetuneConfig, "num_classes", type=int,
              help="re-head the classifier to this many classes (a classifier whose builder can; a fixed head is "
                   "refused)", default_help="the data's classes with labels, the classifier's own without")
    parser.add_argument("--probe", choices=list(probes),
                        help="; ".join(f"{spec.name}: {spec.description}" for spec in probes.values())
                             + " (default: the one that builds --autoencoder, else autoencoder)")
    add_field(parser, FinetuneConfig, "autoencoder",
              help=f"a registered module ({', '.join(AUTOENCODERS.names())}) or a probe AE checkpoint")
    parser.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an autoencoder build option, e.g. sample_rate=48000 channels=2 with --probe identity (repeatable)")
    add_ae_weights(parser)
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
    parser.add_argument("--dry-run", action="store_true",
                        help="print what the data can show (clips per fold, the analysed fold's recordings, the words "
                             "they can reach) and the expected time from one timed step on this device; train nothing "
                             "and write nothing")
    parser.add_argument("--grid", nargs="+", metavar="AXIS=NAME[@WEIGHTS],...",
                        help="run a grid into OUT/CLASSIFIER--AE, e.g. classifier=mn10@mn10.pt,passt@passt_esc50_fold1 "
                             "autoencoder=archisound@pretrained.pt,random; complete runs are skipped")
    add_training_args(parser, FinetuneConfig, epochs_help=_probe_defaults("epochs"),
                      learning_rate_help=_probe_defaults("learning_rate"))
    cluster = parser.add_argument_group("cluster (with --grid or --folds; needs pip install 'audio-probe[cluster]')")
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


@command("finetune", "finetune an autoencoder in front of a frozen classifier (the study's method)", order=50)
@arguments(_finetune_args)
def run_finetune(args: argparse.Namespace) -> int:
    """Finetune once, per fold, per replicate, over a grid, or (--launcher) as submitit tasks."""
    from probe.app.api import train_probes
    from probe.train.finetune import FinetuneConfig, parse_grid

    config = FinetuneConfig(**training_fields(args), probe=args.probe,
                            classifier=args.classifier, classifier_weights=args.classifier_weights,
                            classifier_options=parse_options(args.classifier_option, "--classifier-option"),
                            autoencoder=args.autoencoder, ae_weights=args.ae_weights,
                            ae_options=parse_options(args.ae_option, "--ae-option"), per_class=args.per_class,
                            objective=args.objective, finetune_encoder=args.finetune_encoder,
                            finetune_decoder=args.finetune_decoder, allow_untrained=args.allow_untrained,
                            num_classes=args.num_classes,
                            progress=not args.quiet)
    config = replace(config, penalty=_penalty(args, config.probe_spec.name))
    config.validate()
    folds = parse_folds(args.folds)
    if args.dry_run:
        from probe.app.api import finetune_plan

        for line in finetune_plan(config, replicates=args.replicates, folds=folds,
                                  grid=parse_grid(args.grid) if args.grid else None):
            print(f"probe finetune: {line}")
        return 0
    if args.launcher:
        return _launch(config, args, folds)
    runs = train_probes(config, replicates=args.replicates, folds=folds,
                        grid=parse_grid(args.grid) if args.grid else None, resume=args.resume, jobs=args.jobs or 1)
    return report_runs("finetune", runs)


def _launch(config, args: argparse.Namespace, folds: list[int] | None) -> int:
    """`--launcher`: the grid's (or the folds') cells as submitit tasks; local waits for them, slurm returns."""
    from probe.progress import Progress
    from probe.rundir import RunDir
    from probe.train.finetune import parse_grid
    from probe.train.launch import LaunchConfig, launch_cells, wait_for

    if not (args.grid or folds):
        raise ConfigError(None, "--launcher submits a grid's cells or folds: give --grid or --folds")
    launch = LaunchConfig(args.launcher, None, args.partition, args.gpus_per_task, args.cpus_per_task, args.time_min,
                          args.jobs, {key: str(value) for key, value in parse_options(args.sbatch, "--sbatch").items()})
    cells, jobs = launch_cells(config, parse_grid(args.grid) if args.grid else None, folds, launch)
    say = Progress(config.progress, prefix="probe finetune: ")
    if launch.launcher == "slurm":
        print(f"probe finetune: submitted {len(jobs)} task(s) as job {str(jobs[0].job_id).split('_')[0]}; "
              f"watch them with `probe status {config.out}`")
        return 0
    failures = wait_for(jobs, cells, say)
    for failure in failures:
        print(f"probe: error: {failure}", file=sys.stderr)
    return (EXIT_USAGE if len(failures) == len(cells) else EXIT_PARTIAL) if failures else report_runs(
        "finetune", [RunDir(cell.out) for cell in cells])
