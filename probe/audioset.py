"""AudioSet's 527 label names, in the order of the classifiers' output units (class_labels_indices.csv).

The published EfficientAT and PaSST AudioSet checkpoints predict these classes; loading one with
527 classes names its outputs with them.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

NUM_CLASSES = 527
LABELS_CSV = Path(__file__).parent / "models" / "audioset_labels.csv"


@lru_cache(maxsize=1)
def audioset_labels() -> tuple[tuple[str, str], ...]:
    """(mid, display name) per output index."""
    with open(LABELS_CSV, newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["index"]))
    return tuple((row["mid"], row["display_name"]) for row in rows)


def audioset_class_names() -> list[str]:
    return [name for _, name in audioset_labels()]
