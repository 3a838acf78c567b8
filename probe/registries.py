"""Name-to-implementation registries filled by decorators (schedulers, attribution methods, band sets, ...)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from probe.errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """A dict of named implementations with a `register(name)` decorator and a lookup that lists the known names."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(implementation: T) -> T:
            self[name] = implementation
            return implementation

        return decorate

    def lookup(self, name: str) -> T:
        """The implementation, or a ConfigError naming the known ones."""
        if name not in self:
            raise ConfigError(None, f"unknown {self.kind} {name!r}; known: {', '.join(self)}")
        return self[name]
