"""One progress reporter for every long command: numbered steps or plain lines, with the elapsed time.

Lines, not bars: they read the same on a terminal and in a log file. (The training loop's per-clip
bar is tqdm's, shown on terminals only.)
"""
from __future__ import annotations

import contextlib
import contextvars
import re
import sys
import time
import warnings
from typing import Iterator

EMPTY_MEL_FILTER = "At least one mel filterbank has all zero values"
"""torchaudio's warning when a mel bank is narrower than an STFT bin: expected for 128 bands at low rates, and
harmless for the analyses, which read energies, not single filters."""


def bars_enabled(progress: bool) -> bool:
    """Progress bars only on a terminal: in a log file a bar is a wall of carriage returns."""
    return progress and sys.stderr.isatty()


@contextlib.contextmanager
def without_known_warnings(*messages: str) -> Iterator[None]:
    """Hide these known-harmless warnings (by the start of their message) inside the block; any other still shows."""
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=re.escape(message))
        yield


class Progress:
    """`say(message)` prints `[  12.3 s] message`; with `total`, `[3/7] message  (12 s)`. Disabled: prints nothing."""

    def __init__(self, enabled: bool = True, total: int | None = None, prefix: str = "") -> None:
        self.enabled, self.total, self.prefix = enabled, total, prefix
        self.done = 0
        self.started = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        if self.total is not None:
            self.done += 1
            line = f"[{self.done}/{self.total}] {message}  ({self.elapsed_s:.0f} s)"
        else:
            line = f"[{self.elapsed_s:6.1f} s] {message}"
        if self.enabled:
            print(f"{self.prefix}{line}", flush=True)

    def note(self, message: str) -> None:
        """An indented detail line under the current step."""
        if self.enabled:
            print(f"{self.prefix}    {message}", flush=True)


def duration(seconds: float) -> str:
    """A duration as a person reads it: `40 s`, `12 min`, `9.3 h`, `2.1 days`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


_REPORTER: contextvars.ContextVar["Progress | None"] = contextvars.ContextVar("probe_progress", default=None)


@contextlib.contextmanager
def reporting(say: Progress) -> Iterator[None]:
    """Inside the block, `Ticker`s report through `say` (a command's progress), however deep the loop that counts."""
    token = _REPORTER.set(say)
    try:
        yield
    finally:
        _REPORTER.reset(token)


class Ticker:
    """Counts a loop's items and, once every `every_s` seconds while it runs, says through the command's progress
    (`reporting`) how many are done and about how long the rest should take at the rate so far: a short loop says
    nothing. `total`: the items, or an upper bound (`at_most`)."""

    def __init__(self, what: str, total: int, every_s: float = 10.0, at_most: bool = False) -> None:
        self.what, self.total, self.every_s, self.at_most = what, total, every_s, at_most
        self.done = 0
        self.started = self.said = time.perf_counter()
        self.say = _REPORTER.get()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.perf_counter()
        if self.say is None or self.done >= self.total or now - self.said < self.every_s:
            return
        self.said = now
        left = (now - self.started) / self.done * (self.total - self.done)
        bound = "at most " if self.at_most else ""
        self.say.note(f"{self.what}: {self.done}/{bound}{self.total}, about {bound}{duration(left)} left")
