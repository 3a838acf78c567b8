"""The commands of `probe`: one module per command or family, each registering its commands with `@command`.

`load_commands` imports every module of this package (found with `pkgutil`, no hand-kept list). The
modules import the library inside their functions only, so that building the parser for `probe --help`
loads no torch. The exit codes live here, not in `probe.app.cli`: `python -m probe.app.cli` runs that
module as `__main__`, and a command importing it would run a second copy.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from probe.registries import Registry

EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

Run = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """`probe NAME`: its help line, its arguments and its run function; `order` places it in `probe --help`."""

    name: str
    help: str
    add_arguments: AddArguments
    run: Run
    aliases: tuple[str, ...] = ()
    order: int = 0


COMMANDS: Registry[Command] = Registry("command")


def command(name: str, help: str, *, order: int, aliases: tuple[str, ...] = ()) -> Callable[[Run], Run]:
    """Register `run` as `probe NAME` (and its `aliases`), listed by `order` (lowest first) in `probe --help`; its
    arguments come from the function `<run>.arguments`."""

    def decorate(run: Run) -> Run:
        COMMANDS.register(name)(Command(name, help, getattr(run, "arguments", lambda parser: None), run, aliases, order))
        return run

    return decorate


def arguments(add: AddArguments) -> Callable[[Run], Run]:
    """Attach an argument-adding function to a command's run function."""

    def attach(run: Run) -> Run:
        run.arguments = add  # type: ignore[attr-defined]
        return run

    return attach


def load_commands() -> list[Command]:
    """Import every command module of this package (once) and return the commands in `probe --help` order."""
    for name in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        if not name.startswith("_"):
            importlib.import_module(f"{__name__}.{name}")
    return sorted(COMMANDS.values(), key=lambda cmd: (cmd.order, cmd.name))
