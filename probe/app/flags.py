"""Command-line flags built from the config dataclasses, so that every default is stated once: in the dataclass.

    add_field(parser, FinetuneConfig, "weight_decay", help="AdamW weight decay")

adds `--weight-decay` with the dataclass's default, its type, and "(default: 1e-05)" in the help.
Booleans become `--flag` (default off) or `--flag/--no-flag` (default on); tuples of names take a
comma-separated list. The flags and value parsers that several commands share are here too.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from typing import Any, Callable, Iterable, NoReturn, Sequence

from probe.errors import ConfigError


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


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (what is wrong, and where the help is) with exit code 2,
    like every other bad input: not the usage block first. A flag must be spelled out (`--replicate` is refused, not
    taken for `--replicates`), and an unknown one is answered with the closest flag of the command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # an abbreviation would silently become another flag
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:  # said by the command's parser, whose help lists its flags
            chosen = self._chosen_parsers(parsed)
            hint = closest_flag(unknown, chosen)
            chosen[-1].error(f"unrecognized arguments: {' '.join(unknown)}" + (f" (did you mean {hint}?)" if hint else ""))
        return parsed

    def _chosen_parsers(self, namespace: argparse.Namespace) -> list[argparse.ArgumentParser]:
        """This parser and the subcommands' parsers the arguments chose (their flags are the ones that were open)."""
        chosen: list[argparse.ArgumentParser] = [self]
        while True:
            sub = next((a for a in chosen[-1]._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(namespace, sub.dest, None) if sub is not None and sub.dest != argparse.SUPPRESS else None
            if sub is None or name not in sub.choices:
                return chosen
            chosen.append(sub.choices[name])


def closest_flag(unknown: Sequence[str], parsers: Iterable[argparse.ArgumentParser]) -> str | None:
    """The known long flags closest to the first unknown one, or None: those it abbreviates (`--obj` ->
    `--objective`), else the nearest spelling (`--replicatse` -> `--replicates`). Hidden flags (old spellings) are not
    suggested."""
    import difflib

    word = next((item.partition("=")[0] for item in unknown if item.startswith("--")), None)
    if word is None:
        return None
    known = list(dict.fromkeys(flag for parser in parsers for action in parser._actions
                               if action.help is not argparse.SUPPRESS
                               for flag in action.option_strings if flag.startswith("--")))
    matches = [flag for flag in known if flag.startswith(word)] or difflib.get_close_matches(word, known, n=1)
    return " or ".join(matches[:3]) if matches else None


def count(text: str) -> int:
    """A type for a count of at least 1 (`--jobs`, `--replicates`): 0 or a negative number is refused, not read as 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def comma_list(text: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"); `none` or an empty string -> ()."""
    return tuple(item for item in text.split(",") if item and item != "none")


def choice_list(names: Iterable[str]) -> Callable[[str], tuple[str, ...]]:
    """A type for a comma-separated list whose items must be among `names` (a registry's): argparse's `choices` for
    lists. An unknown item is a usage error that lists the choices."""
    known = tuple(names)

    def parse(text: str) -> tuple[str, ...]:
        items = comma_list(text)
        unknown = [item for item in items if item not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown[0]!r}; choose from {', '.join(known)}")
        return items

    return parse


class Choices:
    """A registry's names as argparse `choices`, read when first needed (a registry may import torch, and
    `probe --help` must not). `multiple`: the flag takes a comma-separated list, each item one of the names.
    Give the flag a metavar, and write `%(choices)s` in its help to list the names in `--help`."""

    def __init__(self, names: Callable[[], Iterable[str]], multiple: bool = False) -> None:
        self._names, self._known, self.multiple = names, None, multiple

    def _list(self) -> list[str]:
        if self._known is None:
            self._known = list(self._names())
        return self._known

    def __contains__(self, value: Any) -> bool:
        items = value if self.multiple and isinstance(value, tuple) else (value,)
        return all(item in self._list() for item in items)

    def __iter__(self):
        return iter(self._list())

    def parse(self, text: str) -> tuple[str, ...]:
        """A comma-separated list of names (the flag's `type` where `multiple`): an unknown one is a usage error."""
        items = comma_list(text)
        for item in items:
            if item not in self._list():
                raise argparse.ArgumentTypeError(f"invalid choice: {item!r} (choose from {', '.join(self._list())})")
        return items


METAVAR_BY_SUFFIX = {"_db": "DB", "_seconds": "SECONDS", "_minutes": "MINUTES", "_gb": "GB", "_hz": "HZ",
                     "_weights": "CHECKPOINT", "_dir": "DIR", "_csv": "FILE", "_rate": "RATE"}
"""How a flag's value reads in --help, by its config field's ending (argparse would show the field's name)."""


def metavar_for(name: str, value: Any, type: Callable[[str], Any] | None) -> str | None:
    """A word for the value of the flag for field `name`; None keeps argparse's (the name itself, when it is one
    word)."""
    if name == "out":
        return "DIR"
    for suffix, word in METAVAR_BY_SUFFIX.items():
        if name.endswith(suffix):
            return word
    if "_" not in name:
        return None
    if isinstance(value, tuple) or type is comma_list:
        return "A,B,..."
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or type is int:
        return "N"
    if isinstance(value, float) or type is float:
        return "NUMBER"
    return name.rsplit("_", 1)[-1].upper()


class Deprecated(argparse.Action):
    """An old spelling of a flag: it still works, for one release, and says once which flag replaces it. Hidden from
    --help. `const` given: a switch that stores it (`--json` for `--format json`)."""

    def __init__(self, option_strings: list[str], dest: str, instead: str, append: bool = False, **kwargs: Any) -> None:
        self.instead, self.append = instead, append
        if "const" in kwargs:
            kwargs["nargs"] = 0
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"probe: {option_string} is deprecated and goes in the next release; use {self.instead}", file=sys.stderr)
        if self.nargs == 0:
            values = self.const
        if self.append:  # a repeatable flag (--option KEY=VALUE ...)
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def deprecated(parser: argparse.ArgumentParser, old: str, instead: str, dest: str, **kwargs: Any) -> None:
    """Add `old` as a hidden, deprecated spelling of the flag that now reads `instead` (same `dest`)."""
    parser.add_argument(old, action=Deprecated, dest=dest, instead=instead, **kwargs)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_field(parser: argparse.ArgumentParser, config_class: type, name: str, *flags: str, help: str,
              type: Callable[[str], Any] | None = None, default_help: str | None = None, **kwargs: Any) -> None:
    """Add a flag for `config_class.name` whose default is the dataclass's (`default_help` words it when None)."""
    value = default_of(config_class, name)
    flags = flags or (f"--{name.replace('_', '-')}",)
    lazy = isinstance(kwargs.get("choices"), Choices)
    if lazy and kwargs["choices"].multiple:
        type = kwargs["choices"].parse
    if "metavar" not in kwargs and ("choices" not in kwargs or lazy) and not isinstance(value, bool):
        metavar = metavar_for(name, value, type)
        if lazy:  # argparse would list the choices at once, loading their registry
            metavar = metavar or ("A,B,..." if kwargs["choices"].multiple else "NAME")
        if metavar is not None:
            kwargs["metavar"] = metavar
    shown = default_help if default_help is not None else (None if value is None or kwargs.get("required")
                                                           else _shown(value))
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



def add_global_flags(parser: argparse.ArgumentParser, default: object = False) -> None:
    """The flags every command takes, before or after its name (after it, `default` is SUPPRESS, so that a flag given
    before the name is not reset)."""
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no progress bars or progress lines (results, warnings and errors still print)")


def add_classifier_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--classifier-option KEY=VALUE` (repeatable); read it with `parse_options`."""
    parser.add_argument("--classifier-option", action="append", default=[], metavar="KEY=VALUE",
                        help=help or "a classifier option (repeatable), e.g. multi_label=true for a tagger whose outputs "
                                     "are independent sigmoids and which does not say so itself, or revision=... for hf:")


def add_allow_untrained(parser: argparse.ArgumentParser) -> None:
    """`--allow-untrained`, the switch that lets a command go on with a classifier without trained weights."""
    parser.add_argument("--allow-untrained", action="store_true",
                        help="go on with a classifier that has no trained weights (a built-in without "
                             "--classifier-weights, a checkpoint saved untrained, a replaced head); refused otherwise, "
                             "since an untrained network's preferences say nothing of a trained one")


def add_ae_weights(parser: argparse.ArgumentParser) -> None:
    """`--ae-weights CHECKPOINT`, an autoencoder's starting weights ({fold} filled per validation fold)."""
    parser.add_argument("--ae-weights", metavar="CHECKPOINT",
                        help="the autoencoder's starting weights (path or published name); {fold} is filled with the "
                             "validation fold, e.g. runs/pre/fold-{fold}/best.pt")


def parse_options(items: list[str], flag: str = "--option") -> dict[str, object]:
    """`KEY=VALUE` items as a dict; a value that reads as JSON is parsed (`true`, `16000`), any other stays a string."""
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


def parse_folds(text: str | None) -> list[int] | None:
    """`--folds 1,2,3` as a list of folds; None when not given."""
    if not text:
        return None
    try:
        return [int(f) for f in text.split(",")]
    except ValueError:
        raise ConfigError(None, f"--folds takes comma-separated integers, got {text!r}") from None


def int_pair(values: Sequence[Any], flag: str) -> tuple[int, int]:
    """Two integers (a parsed `A,B` flag value), or a ConfigError naming `flag`."""
    try:
        pair = tuple(int(v) for v in values)
    except ValueError:
        pair = ()
    if len(pair) != 2:
        raise ConfigError(None, f"{flag} takes two comma-separated integers, got {','.join(map(str, values))!r}")
    return pair  # type: ignore[return-value]
