"""The package layout: one namespace, and imports that go one way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"train": "probe.train", "analyses": "probe.analyses", "reports": "probe.reports"}


def test_subpackages_install_under_probe() -> None:
    import importlib

    for folder, module in SUBPACKAGES.items():
        imported = importlib.import_module(module)
        assert Path(imported.__file__).resolve().parent == ROOT / folder


@pytest.mark.parametrize("folder", sorted(SUBPACKAGES))
def test_imports_go_one_way(folder: str) -> None:
    """train, analyses and reports depend on probe, never on each other; probe on none of them."""
    forbidden = {name for f, name in SUBPACKAGES.items() if f != folder}
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), f"{path} imports {name}"


def test_library_does_not_import_the_subpackages() -> None:
    """Only the entry points (the CLI and the demo, which compose everything) may reach into train/analyses/reports."""
    for path in (ROOT / "probe").rglob("*.py"):
        if path.name in ("cli.py", "demo.py"):
            continue
        text = path.read_text()
        for module in SUBPACKAGES.values():
            assert f"import {module}" not in text and f"from {module}" not in text, f"{path} imports {module}"
