"""The `probe` command line: a thin layer from flags to config dataclasses to library calls.

Heavy modules (torch, librosa, ...) are imported inside each command, so `probe --help`
answers at once. A `ProbeError` becomes one line on stderr and exit code 2; `--debug`
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register `run` as `probe NAME`; its arguments come from the function `<run>.arguments`."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, getattr(run, "arguments", lambda parser: None), run)
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


def _file_command_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by the commands that run a model over audio files."""
    parser.add_argument("audio", nargs="+", help="audio files or folders of audio files")
    parser.add_argument("--weights", help="checkpoint path or published checkpoint name (see `probe download weights --list`)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strict", action="store_true", help="fail on the first unreadable file inside a folder")


def _predict_args(parser: argparse.ArgumentParser) -> None:
    _file_command_args(parser)
    parser.add_argument("--classifier", required=True, help="a name from `probe models`, or package.module:factory")
    parser.add_argument("--num-classes", type=int, help="class count (default: the checkpoint's head, else 50)")
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--out", help="write here (atomically) instead of stdout")


@command("predict", "classify audio files: predicted class and logits per file")
@arguments(_predict_args)
def run_predict(args: argparse.Namespace) -> int:
    import json

    from probe.inference import PredictConfig, predict_files

    config = PredictConfig(args.classifier, tuple(args.audio), args.weights, args.num_classes, args.device, args.strict)
    results, class_names = predict_files(config)
    rows = []
    for result in results:
        row: dict[str, object] = {"file": result.path, "error": result.error or ""}
        if result.logits:
            best = max(range(len(result.logits)), key=result.logits.__getitem__)
            row.update(predicted_index=best, predicted_class=class_names[best])
            row.update({f"logit_{name}": value for name, value in zip(class_names, result.logits)})
        rows.append(row)
    text = json.dumps(rows, indent=2) + "\n" if args.format == "json" else _csv_text(rows)
    _emit(text, args.out)
    skipped = sum(1 for r in results if r.error)
    if skipped:
        print(f"probe: skipped {skipped} unreadable file(s); see the error column", file=sys.stderr)
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
    _file_command_args(parser)
    parser.add_argument("--autoencoder", required=True, help="archisound, random, tiny, or a probe AE checkpoint")
    parser.add_argument("--out-dir", required=True, help="folder for the reconstructions (WAV at the AE's rate)")


@command("reconstruct", "run an autoencoder over audio files and write the reconstructions")
@arguments(_reconstruct_args)
def run_reconstruct(args: argparse.Namespace) -> int:
    from probe.inference import ReconstructConfig, reconstruct_files

    config = ReconstructConfig(args.autoencoder, tuple(args.audio), args.out_dir, args.weights, args.device, args.strict)
    results = reconstruct_files(config)
    for result in results:
        print(f"{result.path} -> {result.output}" if result.output else f"{result.path}: skipped ({result.error})")
    return 0


# --- probe download ---------------------------------------------------------------------


def _download_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["esc50", "weights"], help="the dataset, or published checkpoints")
    parser.add_argument("names", nargs="*", help="checkpoint names (with `weights`); see --list")
    parser.add_argument("--dir", help="target folder (default: $PROBE_HOME/data or $PROBE_HOME/weights)")
    parser.add_argument("--list", action="store_true", help="list the downloadable checkpoints")
    parser.add_argument("--mirror", help="fetch from this base URL instead of the official one (file names unchanged)")


@command("download", "fetch ESC-50 (32 kHz) or published checkpoints, verified and resumable")
@arguments(_download_args)
def run_download(args: argparse.Namespace) -> int:
    from probe import download as dl
    from probe.errors import ConfigError

    if args.what == "esc50":
        root = dl.download_esc50(args.dir or dl.probe_home() / "data", mirror=args.mirror)
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
        path = dl.download_source(sources[name], args.dir or dl.default_weights_dir(), mirror=args.mirror)
        print(f"{name}: {path}")
    return 0


# --- probe finetune / probe pretrain-ae ---------------------------------------------------


def _training_args(parser: argparse.ArgumentParser, epochs: int | None, batch_size: int, micro_batch_size: int | None,
                   learning_rate: float | None = 3e-5) -> None:
    """The arguments every autoencoder training command shares (TrainingConfig's fields)."""
    parser.add_argument("--data", default="synthetic", help="esc50:DIR, folder:DIR or synthetic[:DIR]")
    parser.add_argument("--fold", type=int, default=1, help="validation fold (the others train)")
    parser.add_argument("--folds", help="cross-validation: comma-separated validation folds, one run each in OUT/fold-K")
    parser.add_argument("--out", required=True, help="the run directory")
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs or 'per --probe'}")
    parser.add_argument("--lr", type=float, default=learning_rate, dest="learning_rate",
                        help=f"default {learning_rate or 'per --probe'}")
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=batch_size, help="effective batch size")
    parser.add_argument("--micro-batch-size", type=int, default=micro_batch_size,
                        help="accumulate micro-batches of this size up to --batch-size")
    parser.add_argument("--scheduler", default="cosine", help="cosine, onecycle, step, plateau or none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (under torchrun: each rank's GPU)")
    parser.add_argument("--clip-seconds", type=float, help="pad or crop every clip to this length")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward (CUDA only)")
    parser.add_argument("--stop-after-epochs", type=int, help="stop (resumably) after this many epochs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


TRAINING_FIELDS = ("autoencoder", "ae_weights", "data", "fold", "out", "epochs", "learning_rate", "weight_decay", "batch_size",
                   "micro_batch_size", "scheduler", "seed", "device", "clip_seconds", "compile", "stop_after_epochs")


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
    """Run `train(config, resume)` once, or once per --folds entry; print `hint(run)` for complete runs."""
    from probe.train.loop import run_folds

    folds = _parse_folds(args.folds)
    runs = run_folds(train, config, folds, args.resume) if folds else [train(config, args.resume)]
    for run in runs:
        if run.is_complete():
            print(f"probe {command_name}: {hint(run)}")
    return _report_runs(command_name, runs)


PROBES = {
    # The study's method: an autoencoder, cross-entropy only unless --energy-penalty is given.
    "autoencoder": {"autoencoder": None, "learning_rate": 3e-5, "epochs": 100, "gain_penalty": 0.0},
    # Seconds on a CPU: a gain per STFT bin, with the parsimony term on by default.
    "spectral-gain": {"autoencoder": "spectral_gain", "learning_rate": 0.05, "epochs": 20, "gain_penalty": 0.1},
    # The no-autoencoder control: nothing trains; its outputs sit beside the probes in the analyses and report.
    "identity": {"autoencoder": "identity", "learning_rate": 3e-5, "epochs": 0, "gain_penalty": 0.0},
}


def _finetune_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classifier", default="mn10", help="a name from `probe models`, or package.module:factory")
    parser.add_argument("--classifier-weights", help="the classifier's checkpoint (path or published name)")
    parser.add_argument("--probe", choices=sorted(PROBES), default="autoencoder",
                        help="autoencoder (the study's), spectral-gain (a learnable gain per frequency; seconds on a CPU), "
                             "or identity (the no-autoencoder control)")
    parser.add_argument("--autoencoder", default="archisound", help="archisound, random, tiny, or a probe AE checkpoint")
    parser.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an autoencoder build option, e.g. sample_rate=48000 channels=2 with --probe identity (repeatable)")
    parser.add_argument("--ae-weights", help="the autoencoder's starting weights (path or published name)")
    parser.add_argument("--energy-penalty", type=float, default=0.0,
                        help="add this times the reconstruction's energy relative to the input's to the loss (0: the study's)")
    parser.add_argument("--gain-penalty", type=float, help="weight of the mean-gain term of --probe spectral-gain (default 0.1)")
    parser.add_argument("--per-class", action="store_true",
                        help="with --probe spectral-gain: one gain curve per class, each trained on its class's clips")
    parser.add_argument("--finetune-encoder", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--finetune-decoder", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--grid", nargs="+", metavar="AXIS=NAME[@WEIGHTS],...",
                        help="run a grid into OUT/CLASSIFIER--AE, e.g. classifiers=mn10@mn10.pt,passt@passt_esc50_fold1 "
                             "autoencoder=archisound@pretrained.pt,random; complete runs are skipped")
    _training_args(parser, epochs=None, batch_size=4, micro_batch_size=None, learning_rate=None)


@command("finetune", "finetune an autoencoder in front of a frozen classifier (the study's method)")
@arguments(_finetune_args)
def run_finetune(args: argparse.Namespace) -> int:
    from probe.train.finetune import FinetuneConfig, finetune, finetune_folds, finetune_grid, parse_grid

    fields = {name: getattr(args, name) for name in TRAINING_FIELDS + (
        "classifier", "classifier_weights", "finetune_encoder", "finetune_decoder", "energy_penalty", "gain_penalty",
        "per_class")}
    defaults = PROBES[args.probe]
    for name in ("learning_rate", "epochs", "gain_penalty"):
        if fields[name] is None:
            fields[name] = defaults[name]
    if defaults["autoencoder"]:
        fields["autoencoder"] = defaults["autoencoder"]
    config = FinetuneConfig(**fields, ae_options=_options(args.ae_option, "--ae-option"), progress=not args.quiet)
    folds = _parse_folds(args.folds)
    if args.grid:
        runs = finetune_grid(config, parse_grid(args.grid), folds, resume=args.resume)
    elif folds:
        runs = finetune_folds(config, folds, resume=args.resume)
    else:
        runs = [finetune(config, resume=args.resume)]
    return _report_runs("finetune", runs)


def _pretrain_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--autoencoder", default="random", help="where to start: random (Xavier), archisound, tiny, or a checkpoint")
    parser.add_argument("--ae-weights", help="the autoencoder's starting weights (path or published name)")
    parser.add_argument("--stft-weight", type=float, default=0.0, help="add this times a multi-resolution STFT loss to the MSE")
    _training_args(parser, epochs=70, batch_size=64, micro_batch_size=4)


@command("pretrain-ae", "reconstruction-pretrain an autoencoder on a dataset (MSE, optional multi-resolution STFT)")
@arguments(_pretrain_args)
def run_pretrain(args: argparse.Namespace) -> int:
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    config = PretrainConfig(**{name: getattr(args, name) for name in TRAINING_FIELDS}, stft_weight=args.stft_weight,
                            progress=not args.quiet)
    return _train_each_fold("pretrain-ae", pretrain_autoencoder, config, args,
                            lambda run: f"the pretrained AE is {run.best}; start finetuning from it with --autoencoder {run.best}")


# --- probe train-classifier ---------------------------------------------------------------


def _train_classifier_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classifier", default="mn10", help="mn10, dymn10, passt, small_cnn, ...")
    parser.add_argument("--init", default="audioset",
                        help="audioset (the published AudioSet weights, re-headed), none, or a checkpoint path")
    parser.add_argument("--mixup", type=float, default=0.3, dest="mixup_alpha", help="mixup alpha (0: off)")
    parser.add_argument("--gain-db", type=float, default=12.0, help="random gain within +-this many dB (0: off)")
    parser.add_argument("--no-roll", action="store_true", help="no random time roll")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a classifier build option, e.g. sample_rate=16000 for small_cnn (repeatable)")
    _training_args(parser, epochs=80, batch_size=32, micro_batch_size=None, learning_rate=None)
    parser.set_defaults(scheduler="warmup_rampdown")


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
    from probe.train.classifier import RECIPE_LEARNING_RATE, ClassifierTrainConfig, train_classifier

    fields = {name: getattr(args, name) for name in TRAINING_FIELDS if name not in ("autoencoder", "ae_weights")}
    if fields["learning_rate"] is None:
        fields["learning_rate"] = RECIPE_LEARNING_RATE.get(args.classifier, 6e-5)
    config = ClassifierTrainConfig(**fields, classifier=args.classifier, classifier_options=_options(args.option),
                                   init=args.init, mixup_alpha=args.mixup_alpha, gain_db=args.gain_db, roll=not args.no_roll,
                                   progress=not args.quiet)
    return _train_each_fold("train-classifier", train_classifier, config, args,
                            lambda run: f"load it with --classifier {args.classifier} --weights {run.best}")


# --- probe analyse ----------------------------------------------------------------------


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item for item in text.split(",") if item and item != "none")


def _analysis_settings_args(parser: argparse.ArgumentParser) -> None:
    """The settings `probe analyse` and `probe compare` share (AnalyseConfig's)."""
    parser.add_argument("--band-sets", default="octave,third_octave,mel", help="comma-separated: octave, third_octave, mel")
    parser.add_argument("--correction", default="holm", help="multiple-test correction across bands: holm or fdr")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the confidence intervals")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    parser.add_argument("--threshold-db", type=float, default=3.0, help="shift beyond which a band counts as suppressed/boosted")
    parser.add_argument("--noise-floor-db", type=float, default=60.0,
                        help="bands this far below the loudest band of the originals get no verdict (their dB ratios mean nothing)")
    parser.add_argument("--clip-floor-db", type=float, default=30.0,
                        help="per clip, bands this far below the clip's loudest band are left out of the band-shift means "
                             "(they held next to nothing); a negative value keeps every clip")
    parser.add_argument("--methods", default="integrated_gradients,saliency,gradient_shap,occlusion",
                        help="attribution methods, comma-separated, or none")
    parser.add_argument("--attribution-clips", type=int, help="attribute at most this many clips per run (default 64 on a GPU, 16 on a CPU)")
    parser.add_argument("--examples", help="validation positions kept as audio, comma-separated (default: the study's on ESC-50)")
    parser.add_argument("--residuals", choices=["examples", "all"], default="examples",
                        help="write the residual audio (original - finetuned reconstruction) for the examples or all clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true")


def _analyse_config(args: argparse.Namespace, runs: tuple[str, ...], transfer: bool):
    from probe.analyses.analyse import AnalyseConfig
    from probe.analyses.attribution import AttributionSettings
    from probe.analyses.bandshift import ShiftSettings
    from probe.errors import ConfigError

    try:
        examples = tuple(int(i) for i in _comma_list(args.examples)) if args.examples else None
    except ValueError:
        raise ConfigError(None, f"--examples takes comma-separated integers, got {args.examples!r}") from None
    config = AnalyseConfig(
        runs=runs, out=args.out, band_sets=_comma_list(args.band_sets),
        shifts=ShiftSettings(n_boot=args.bootstrap, level=args.level, correction=args.correction,
                             threshold_db=args.threshold_db, noise_floor_db=args.noise_floor_db,
                             clip_floor_db=None if args.clip_floor_db < 0 else args.clip_floor_db),
        attributions=AttributionSettings(methods=_comma_list(args.methods), max_clips=args.attribution_clips, seed=args.seed),
        examples=examples, residuals=args.residuals, transfer=transfer, seed=args.seed, device=args.device,
        progress=not args.quiet,
    )
    config.validate()
    return config


def _analyse_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="complete finetune run directories (one per classifier/AE setting)")
    parser.add_argument("--out", default="analysis", help="the analysis folder (replaced atomically)")
    parser.add_argument("--no-transfer", action="store_true", help="skip the cross-classifier transfer matrix")
    _analysis_settings_args(parser)


@command("analyse", "band-energy shifts, spectra, accuracy, attributions and transfer from finetune runs")
@arguments(_analyse_args)
def run_analyse(args: argparse.Namespace) -> int:
    from probe.analyses.analyse import analyse

    out = analyse(_analyse_config(args, tuple(args.runs), transfer=not args.no_transfer))
    print(f"probe analyse: wrote {out}")
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("originals", help="folder of original audio (a folder per class gives per-class tables)")
    parser.add_argument("processed", help="folder of processed audio, same relative paths (the extension may differ)")
    parser.add_argument("--out", default="compare", help="the analysis folder (replaced atomically); `probe report` reads it")
    parser.add_argument("--classifier", help="also score a classifier on both sides (a name from `probe models`)")
    parser.add_argument("--weights", help="the classifier's checkpoint")
    parser.add_argument("--categories", help="a class,category CSV for the class folders")
    parser.add_argument("--sample-rate", type=int, help="analysis rate (default: the classifier's, else the first original's)")
    parser.add_argument("--max-lag-ms", type=float, default=500.0, help="search a delay of the processed side up to this")
    _analysis_settings_args(parser)


@command("compare", "the same analyses for any pair of original and processed audio folders (codecs, denoisers, ...)")
@arguments(_compare_args)
def run_compare(args: argparse.Namespace) -> int:
    from probe.analyses.compare import CompareConfig, compare

    config = CompareConfig(args.originals, args.processed, args.out, args.classifier, args.weights, args.categories,
                           args.sample_rate, args.max_lag_ms / 1000, device=args.device)
    out = compare(config, _analyse_config(args, (args.originals, args.processed), transfer=False))
    print(f"probe compare: wrote {out}; render it with `probe report {out}`")
    return 0


# --- probe report / probe figures --------------------------------------------------------


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    parser.add_argument("--out", default="report", help="the report folder (replaced atomically)")
    parser.add_argument("--band-set", default="octave", choices=["octave", "third_octave"],
                        help="band set of the overview profiles")
    parser.add_argument("--attribution-method", help="the attribution method the pages show (default: the first analysed)")
    parser.add_argument("--quiet", action="store_true")


@command("report", "write the HTML report (one page per classifier, by category, with audio) from analyses")
@arguments(_report_args)
def run_report(args: argparse.Namespace) -> int:
    from probe.reports.build import ReportConfig, build_report

    index = build_report(ReportConfig(tuple(args.analyses), args.out, args.band_set, args.attribution_method,
                                      progress=not args.quiet))
    print(f"probe report: open {index.resolve().as_uri()}")
    return 0


def _figures_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    parser.add_argument("--out", default="figures", help="folder for the figure files")
    parser.add_argument("--format", default="png,svg,pdf", help="comma-separated: png, svg, pdf")


@command("figures", "write the comparison figures alone, sized for papers")
@arguments(_figures_args)
def run_figures(args: argparse.Namespace) -> int:
    from probe.errors import ConfigError
    from probe.reports.paper import write_paper_figures

    formats = _comma_list(args.format)
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown or not formats:
        raise ConfigError(None, f"--format takes png, svg and pdf, got {args.format!r}")
    written = write_paper_figures(list(args.analyses), args.out, formats)
    print(f"probe figures: wrote {len(written)} files to {args.out}")
    return 0


# --- probe demo -------------------------------------------------------------------------


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="everything the demo writes goes under this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="esc50:DIR runs the study's grid on ESC-50 instead of the synthetic demo")
    parser.add_argument("--weights-dir", help="with --data: the folder holding the classifier and AE checkpoints")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true")


@command("demo", "the whole study offline in minutes: planted classifiers, probes, analyses and the HTML report")
@arguments(_demo_args)
def run_demo(args: argparse.Namespace) -> int:
    from probe.demo import DemoConfig, run_demo as demo

    index = demo(DemoConfig(out=args.out, seed=args.seed, data=args.data, weights_dir=args.weights_dir, device=args.device,
                            progress=not args.quiet))
    print(f"probe demo: the report is {index.resolve().as_uri()}")
    return 0


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from probe import __version__

    parser = argparse.ArgumentParser(
        prog="probe",
        description="What do deep networks like to hear? Autoencoder probes for trained audio classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="probe: %(message)s")
    from probe.errors import ProbeError

    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        return COMMANDS[args.command].run(args)
    except ProbeError as exc:
        if args.debug:
            raise
        print(f"probe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("probe: terminated; run the same command (with --resume for training) to continue", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("probe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that the same cleanup as for Ctrl-C runs (no half-written files)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
