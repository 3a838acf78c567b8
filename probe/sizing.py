"""What a dataset can show before anything is trained: how many independent units the analysed fold holds, and which
of the answer's words they can reach.

The answer's words are read on the validation fold's clips only (the fold the probes were not trained on), one unit
per source recording. Two limits follow from the unit count alone, whatever the classifier does:

- no interval, and so no verdict word, below `MIN_INTERVAL_UNITS` units;
- "can do without" needs a removal's one-sided upper bound below the margin; with n units the lowest bound any
  removal can reach (none of its decisions changed) is `smallest_upper_bound(n)`, so below `units_for_without()`
  units the word can never be shown.

`probe finetune` prints these lines first (and `--dry-run` stops after them and a timed step), so that a user learns
before hours of training that 40 recordings cannot show what they hope to see.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MIN_INTERVAL_UNITS = 8
"""No interval, and no verdict, from fewer independent units (clips, or source recordings) than this: the
smallest n at which the coverage test shows the studentised interval holding (an ESC-50 class holds 8 clips
per fold)."""

DEFAULT_MARGIN_POINTS = 5.0
"""The answer's margin: a removal costing less than this many points can be done without, more is needed."""

DEFAULT_ALPHA = 0.05
"""The one-sided error rate of each removal decision."""


def _z(alpha: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha)


def smallest_upper_bound(units: float, alpha: float = DEFAULT_ALPHA) -> float:
    """The lowest upper bound any removal can reach with `units` effective clips, in points: none of them changed
    (the Wilson bound Newcombe's interval then takes). A margin below it can never be shown."""
    z = _z(alpha)
    return 100 * z * z / (units + z * z) if units > 0 else 100.0


def units_for_without(margin_points: float = DEFAULT_MARGIN_POINTS, alpha: float = DEFAULT_ALPHA) -> int:
    """The fewest independent units at which a removal that changes nothing is bounded below `margin_points`:
    fewer, and "can do without" cannot be shown."""
    z = _z(alpha)
    needed = z * z * (100 / margin_points - 1)
    units = math.floor(needed) + 1
    return max(units, MIN_INTERVAL_UNITS)


@dataclass(frozen=True)
class Sizing:
    """The clips of a dataset by fold, the analysed fold's units, and the words they can reach."""

    clips_per_fold: dict[int, int]
    analysed_fold: int
    analysed_clips: int
    analysed_units: int
    margin_points: float = DEFAULT_MARGIN_POINTS
    alpha: float = DEFAULT_ALPHA

    @property
    def smallest_bound(self) -> float:
        return smallest_upper_bound(self.analysed_units, self.alpha)

    @property
    def units_needed(self) -> int:
        return units_for_without(self.margin_points, self.alpha)

    @property
    def verdicts(self) -> bool:
        return self.analysed_units >= MIN_INTERVAL_UNITS

    @property
    def without_reachable(self) -> bool:
        return self.smallest_bound < self.margin_points

    @property
    def recordings_needed(self) -> int:
        """About how many recordings in all make the analysed fold hold `units_needed` (folds share them evenly)."""
        folds = max(1, len(self.clips_per_fold))
        return self.units_needed * folds

    def lines(self) -> list[str]:
        """What `probe finetune` prints first."""
        per_fold = ", ".join(f"{fold}: {count}" for fold, count in sorted(self.clips_per_fold.items()))
        said = [f"clips per fold: {per_fold}; the answer is read on fold {self.analysed_fold}: {self.analysed_clips} "
                f"clips from {self.analysed_units} independent recordings"]
        if not self.verdicts:
            said.append(f"warning: no verdict word can be shown: intervals need at least {MIN_INTERVAL_UNITS} "
                        f"independent recordings in the analysed fold, it holds {self.analysed_units}")
        elif self.without_reachable:
            said.append(f"words reachable: 'needs' and 'can do without' (a removal that changes nothing is bounded "
                        f"at {self.smallest_bound:.1f} points, below the {self.margin_points:g}-point margin)")
        else:
            said.append("words reachable: 'needs' only")
        if not self.without_reachable:
            said.append(f"warning: 'can do without' cannot be shown: with {self.analysed_units} recordings in fold "
                        f"{self.analysed_fold} a removal that changes nothing is bounded at {self.smallest_bound:.1f} "
                        f"points, above the {self.margin_points:g}-point margin; it needs {self.units_needed} there, "
                        f"about {self.recordings_needed} recordings in all")
        return said


def size_dataset(dataset: Any, fold: int, margin_points: float = DEFAULT_MARGIN_POINTS,
                 alpha: float = DEFAULT_ALPHA) -> Sizing:
    """The sizing of a loaded `ClipDataset` whose fold `fold` is analysed."""
    counts: dict[int, int] = {f: 0 for f in dataset.folds}
    for clip in dataset.clips:
        counts[clip.fold] = counts.get(clip.fold, 0) + 1
    analysed = [clip for clip in dataset.clips if clip.fold == fold]
    units = len({clip.group or clip.clip_id for clip in analysed})
    return Sizing(counts, fold, len(analysed), units, margin_points, alpha)
