"""`probe models` and `probe download`: what the zoo holds, and fetching the dataset and the published checkpoints."""
from __future__ import annotations

import argparse

from probe.app.commands import arguments, command
from probe.app.flags import deprecated
from probe.errors import ConfigError

# The library is imported inside the run functions: `probe --help` imports this module and must not load torch.


def _models_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["classifier", "autoencoder"], help="only this kind")


@command("models", "list the registered classifiers and autoencoders, with their published weights", order=10)
@arguments(_models_args)
def run_models(args: argparse.Namespace) -> int:
    """Print each registered model, with its rate, description and published weights."""
    from probe.zoo import model_specs

    for spec in model_specs(args.kind):
        rate = f"{spec.sample_rate:>6} Hz" if spec.sample_rate else "   any   "
        print(f"{spec.kind:<12} {spec.name:<20} {rate}  {spec.description}")
        for source in spec.weights:
            print(f"{'':<12} {'':<20} weights: {source.name:<20} {source.note}")
    return 0


def _download_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["esc50", "weights"], help="the dataset, or published checkpoints")
    parser.add_argument("names", nargs="*", help="checkpoint names (with `weights`); see --list")
    parser.add_argument("--out", metavar="DIR", help="target folder (default: $PROBE_HOME/data or $PROBE_HOME/weights)")
    deprecated(parser, "--dir", "--out", dest="out")
    parser.add_argument("--list", action="store_true", help="list the downloadable checkpoints")
    parser.add_argument("--mirror", help="fetch from this base URL instead of the official one (file names unchanged)")


@command("download", "fetch ESC-50 (32 kHz) or published checkpoints, verified and resumable", order=40)
@arguments(_download_args)
def run_download(args: argparse.Namespace) -> int:
    """Fetch ESC-50 or the named checkpoints; without names (or with --list), list the checkpoints."""
    from probe import download as dl

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
        raise ConfigError(None, f"unknown checkpoint {unknown[0]!r}{dl.did_you_mean(unknown[0], sources)}; see "
                                "`probe download weights --list`")
    for name in args.names:
        path = dl.download_source(sources[name], args.out or dl.default_weights_dir(), mirror=args.mirror)
        print(f"{name}: {path}")
    return 0
