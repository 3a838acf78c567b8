"""The report's config: a frozen dataclass whose defaults are the only ones (the CLI builds its flags from it)."""
from __future__ import annotations

from dataclasses import dataclass

FIGURE_FORMATS = ("png", "svg", "pdf")
"""What `probe figures` writes by default, and all it can write."""


@dataclass(frozen=True)
class ReportConfig:
    analyses: tuple[str, ...]
    out: str = "report"
    band_set: str = "octave"
    """The band set of the overview profiles (octave or third_octave)."""
    attribution_method: str | None = None
    """The method whose maps the pages show; default: the first one analysed."""
    notes: tuple[str, ...] = ()
    """Extra lines for the top of the index (the demo puts its planted-answer check here)."""
    jobs: int | None = None
    """Processes that draw the figures while the pages are built; default one per core, at most 4; 1 draws them in
    this process. The files are the same for any number."""
    progress: bool = True
