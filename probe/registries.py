"""Name-to-implementation registries filled by decorators (schedulers, attribution methods, band sets, probes, analyses)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from probe.errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """A dict of named implementations with a `register(name)` decorator and a lookup that lists the known names.

    `load`, when given, is called before the first lookup or listing: it imports the modules whose
    decorators fill the registry (the built-in ones and the plugins), so that importing the registry
    itself stays cheap.
    """

    def __init__(self, kind: str, load: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._load = load

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(implementation: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = implementation
            return implementation

        return decorate

    def ensure_loaded(self) -> "Registry[T]":
        """Run the loader once; returns the registry."""
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self

    def lookup(self, name: str) -> T:
        """The implementation, or a ConfigError naming the known ones."""
        self.ensure_loaded()
        if name not in self:
            raise ConfigError(None, f"unknown {self.kind} {name!r}; known: {', '.join(self)}")
        return self[name]

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self.ensure_loaded())
