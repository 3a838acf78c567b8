"""The `probe` command line: a thin layer from flags to config dataclasses to library calls.

The commands live in `probe.app.commands`, one module per command or family, and import heavy modules
(torch, librosa, ...) inside their functions, so `probe --help` answers at once. A `ProbeError` becomes
one line on stderr and its exit code (2 bad input, 3 a runtime failure); `--debug` shows the traceback
instead. The conventions every command keeps are in `CONVENTIONS`, which `probe --help` prints.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Collection

from probe.app.commands import COMMANDS, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, load_commands
from probe.app.flags import Parser, add_global_flags

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


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `probe` and of every command in `probe.app.commands`, in their `probe --help` order.

    `commands`: the commands whose arguments to build (None: all). The others are listed with their help line
    only: some arguments list registries (`--probe`) whose entries import torch, which `probe --help` must not."""
    from probe import __version__

    parser = Parser(
        prog="probe",
        description="What do deep networks like to hear? Autoencoder probes for trained audio classifiers.",
        epilog=CONVENTIONS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)  # abbreviations refused there too
    for cmd in load_commands():
        command_parser = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, aliases=list(cmd.aliases))
        if commands is None or cmd.name in commands:
            cmd.add_arguments(command_parser)
        add_global_flags(command_parser.add_argument_group("global flags"), argparse.SUPPRESS)
        command_parser.set_defaults(command=cmd.name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `probe ARGV...` and return its exit code."""
    from probe.errors import ProbeError

    try:
        parser = build_parser(_named_command(sys.argv[1:] if argv is None else argv))  # reads registries: plugins load
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


def _named_command(argv: list[str]) -> list[str]:
    """The command an argument list names (its first word that is not a flag; the global flags take no value), as
    its registered name; none for `probe --help`."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return [cmd.name for cmd in load_commands() if word == cmd.name or word in cmd.aliases]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that the same cleanup as for Ctrl-C runs (no half-written files)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
