"""The one registry type: every kind of named, pluggable thing in probe is a `Registry`.

Classifiers, probes, analyses, attribution methods, band sets, objectives, schedulers, data kinds,
classifier schemes, Hugging Face front-ends, fold-selection rules, multiple-comparison corrections
and commands are each one `Registry`. An entry is whatever the kind needs (a builder, a spec
dataclass); its quirks are fields of that entry, so no code outside it compares a registered name.

A registry that names a `builtins` package imports every module of that package (found with
`pkgutil`, no hand-kept list) before its first lookup. Every lookup and listing also imports the
plugins not imported yet (`probe.plugins`), so the Python API sees what the CLI sees.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar, overload

from probe.errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """A dict of named entries of one kind, filled by `register`, with lookups that list the alternatives.

    `builtins`: a package whose modules register the built-in entries; they are imported on first use,
    which keeps importing the registry itself cheap (`probe --help` loads no torch).
    """

    def __init__(self, kind: str, builtins: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._builtins = builtins

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: object = None) -> object:
        """Add `entry` under `name` (or, without an entry, a decorator that adds what it decorates).
        A name registered twice is an error: the first registration would silently lose."""

        def add(implementation: T) -> T:
            if name in self:
                raise ConfigError(None, f"{self.kind} {name!r} is registered twice")
            self[name] = implementation
            return implementation

        return add if entry is None else add(entry)  # type: ignore[arg-type]

    def ensure_loaded(self) -> "Registry[T]":
        """Import the built-in modules (once) and any plugin not imported yet; returns the registry."""
        if self._builtins is not None:
            package, self._builtins = self._builtins, None
            for module in builtin_modules(package):
                importlib.import_module(module)
        from probe.plugins import load_plugins

        load_plugins()
        return self

    def lookup(self, name: str) -> T:
        """The entry, or a ConfigError that names the known ones (and the closest, when one is close)."""
        self.ensure_loaded()
        if name not in self:
            raise ConfigError(None, self.unknown(name))
        return self[name]

    def unknown(self, name: str) -> str:
        """The message for a name not registered: the known names, and the likeliest meant."""
        close = difflib.get_close_matches(name, list(self), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self) or 'none'}"

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self.ensure_loaded())

    def entries(self) -> Iterator[T]:
        """Every registered entry, in registration order."""
        return iter(list(self.ensure_loaded().values()))


def builtin_modules(package: str) -> list[str]:
    """The modules of a package, by name (sorted, so that registration order does not depend on the file system)."""
    root = importlib.import_module(package)
    return sorted(f"{package}.{info.name}" for info in pkgutil.iter_modules(root.__path__) if not info.name.startswith("_"))
