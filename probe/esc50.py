"""ESC-50's fixed facts: class names in target order, the five categories, the folds.

Piczak, "ESC: Dataset for Environmental Sound Classification", ACM MM 2015.
"""
from __future__ import annotations

from pathlib import Path

ESC50_CSV = Path("meta") / "esc50.csv"
CATEGORIES_CSV = Path("meta") / "categories.csv"
"""Optional `class,category` table of an ESC-50-layout folder."""
DATASET_JSON = Path("meta") / "dataset.json"
"""Optional descriptor of an ESC-50-layout folder: {"sample_rate": ..., "clip_seconds": ...}."""

CLASS_NAMES: tuple[str, ...] = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
    "brushing_teeth", "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening",
    "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells", "airplane",
    "fireworks", "hand_saw",
)  # fmt: skip

CATEGORY_NAMES: tuple[str, ...] = (
    "Animals",
    "Natural soundscapes & water sounds",
    "Human, non-speech sounds",
    "Interior/domestic sounds",
    "Exterior/urban noises",
)
CLASSES_PER_CATEGORY = 10
FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5)
VALIDATION_FOLD = 1
SAMPLE_RATE_32K = 32000
CLIP_SECONDS = 5.0


def category_of(target: int) -> int:
    """ESC-50's category of a class target: blocks of ten."""
    return target // CLASSES_PER_CATEGORY

STUDY_EXAMPLES = (8, 12, 31, 66, 86, 102)
"""The study's sample page: crow, clapping, water drops, crackling fire, insects, pig (validation positions, fold 1)."""
