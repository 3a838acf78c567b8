"""Categories for a classifier's own classes: ESC-50's only for ESC-50's names, a user's mapping where the data
folder has one naming every class, else one category."""
from __future__ import annotations

from pathlib import Path

from probe import esc50
from probe.data import categories_of


def test_esc50_names_get_esc50_categories() -> None:
    names, of_class = categories_of(esc50.CLASS_NAMES)
    assert names == esc50.CATEGORY_NAMES and len(of_class) == 50


def test_other_names_get_a_users_mapping_or_one_category(tmp_path: Path) -> None:
    classes = ["C4", "D4", "speech"]
    assert categories_of(classes) == (("all",), (0, 0, 0))
    assert categories_of(classes, tmp_path) == (("all",), (0, 0, 0))  # no mapping there
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "categories.csv").write_text("class,category\nC4,notes\nD4,notes\nspeech,voice\n")
    assert categories_of(classes, tmp_path) == (("notes", "voice"), (0, 0, 1))
    # a mapping that does not name every class is the data's, not the classifier's: left aside
    assert categories_of(["C4", "E4"], tmp_path) == (("all",), (0, 0))
