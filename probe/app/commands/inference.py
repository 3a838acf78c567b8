"""`probe predict` and `probe reconstruct`: a classifier or an autoencoder run over audio files."""
from __future__ import annotations

import argparse
import sys

from probe.app.commands import EXIT_PARTIAL, EXIT_USAGE, arguments, command
from probe.app.flags import add_classifier_option, add_field, deprecated, parse_options
from probe.errors import ConfigError

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


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


def _predict_args(parser: argparse.ArgumentParser) -> None:
    from probe.inference import PredictConfig

    _file_command_args(parser, PredictConfig, "classifier_weights")
    parser.add_argument("--classifier", required=True,
                        help="a name from `probe models`, hf:PATH_OR_REPO (a transformers audio classifier), "
                             "or package.module:factory")
    add_field(parser, PredictConfig, "num_classes", type=int,
              help="re-head to this many classes (a classifier whose builder can; a fixed head is refused)",
              default_help="the checkpoint's head, else the classifier's own, else 50")
    add_classifier_option(parser)
    parser.add_argument("--format", choices=["csv", "json"], default="csv", help="the output format (default: csv)")
    parser.add_argument("--out-file", metavar="FILE", help="write the table to this file (atomically) instead of stdout")
    deprecated(parser, "--out", "--out-file", dest="out_file")


@command("predict", "classify audio files: predicted class and logits per file", order=20)
@arguments(_predict_args)
def run_predict(args: argparse.Namespace) -> int:
    """Write one row per file (predicted class, logits, or why it could not be read) as CSV or JSON."""
    import json

    from probe.inference import PredictConfig, predict_files

    config = PredictConfig(args.classifier, tuple(args.audio), args.classifier_weights, args.num_classes, args.device,
                           args.strict,
                           classifier_options=parse_options(args.classifier_option, "--classifier-option"))
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


def _reconstruct_args(parser: argparse.ArgumentParser) -> None:
    from probe.inference import ReconstructConfig

    from probe.probes import AUTOENCODERS

    _file_command_args(parser, ReconstructConfig, "ae_weights")
    parser.add_argument("--autoencoder", required=True,
                        help=f"a registered module ({', '.join(AUTOENCODERS.names())}) or a probe AE checkpoint")
    parser.add_argument("--out", metavar="DIR", help="folder for the reconstructions (WAV at the AE's rate); required")
    deprecated(parser, "--out-dir", "--out", dest="out")


@command("reconstruct", "run an autoencoder over audio files and write the reconstructions", order=30)
@arguments(_reconstruct_args)
def run_reconstruct(args: argparse.Namespace) -> int:
    """Write each file's reconstruction into --out, naming each written file."""
    from probe.inference import ReconstructConfig, reconstruct_files

    if not args.out:
        raise ConfigError(None, "probe reconstruct needs --out DIR, the folder for the reconstructions")
    config = ReconstructConfig(args.autoencoder, tuple(args.audio), args.out, args.ae_weights, args.device, args.strict)
    results = reconstruct_files(config)
    for result in results:
        if result.output:
            print(f"{result.path} -> {result.output}")
    return _batch_status(results)
