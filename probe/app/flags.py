"""Command-line flags built from the config dataclasses, so that every default is stated once: in the dataclass.

    add_field(parser, FinetuneConfig, "weight_decay", help="AdamW weight decay")

adds `--weight-decay` with the dataclass's default, its type, and "(default: 1e-05)" in the help.
Booleans become `--flag` (default off) or `--flag/--no-flag` (default on); tuples of names take a
comma-separated list.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any, Callable


def default_of(config_class: type, name: str) -> Any:
    """A dataclass field's default (calling its factory where it has one)."""
    for item in fields(config_class):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:  # type: ignore[misc]
                return item.default_factory()  # type: ignore[misc]
            raise KeyError(f"{config_class.__name__}.{name} has no default")
    raise KeyError(f"{config_class.__name__} has no field {name!r}")


def comma_list(text: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"); `none` or an empty string -> ()."""
    return tuple(item for item in text.split(",") if item and item != "none")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_field(parser: argparse.ArgumentParser, config_class: type, name: str, *flags: str, help: str,
              type: Callable[[str], Any] | None = None, default_help: str | None = None, **kwargs: Any) -> None:
    """Add a flag for `config_class.name` whose default is the dataclass's (`default_help` words it when None)."""
    value = default_of(config_class, name)
    flags = flags or (f"--{name.replace('_', '-')}",)
    shown = default_help if default_help is not None else (None if value is None else _shown(value))
    text = f"{help} (default: {shown})" if shown is not None else help
    if isinstance(value, bool):
        action = argparse.BooleanOptionalAction if value else "store_true"
        parser.add_argument(*flags, dest=name, action=action, default=value, help=text, **kwargs)
        return
    if isinstance(value, tuple):
        type, value = type or comma_list, value
    elif type is None and value is not None:
        type = value.__class__
    parser.add_argument(*flags, dest=name, type=type, default=value, help=text, **kwargs)

