"""One progress reporter for every long command: numbered steps or plain lines, with the elapsed time.

Lines, not bars: they read the same on a terminal and in a log file. (The training loop's per-clip
bar is tqdm's, shown on terminals only.)
"""
from __future__ import annotations

import contextlib
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
