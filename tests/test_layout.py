"""The package layout: one namespace, imports that go one way, and no import circles."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"train": "probe.train", "analyses": "probe.analyses", "reports": "probe.reports"}
APP = "probe.app"


def _modules() -> dict[str, Path]:
    """Every module of the installed namespace, by dotted name, with its file."""
    found = {}
    for folder, package in {"probe": "probe", **SUBPACKAGES}.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [part for part in path.relative_to(ROOT / folder).with_suffix("").parts if part != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement in `path` mentions, at any depth (lazy imports included)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _internal_imports() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported_names(path, module):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_subpackages_install_under_probe() -> None:
    for folder, module in SUBPACKAGES.items():
        imported = importlib.import_module(module)
        assert Path(imported.__file__).resolve().parent == ROOT / folder


@pytest.mark.parametrize("folder", sorted(SUBPACKAGES))
def test_imports_go_one_way(folder: str) -> None:
    """train, analyses and reports depend on probe, never on each other nor on the shell."""
    forbidden = [name for f, name in SUBPACKAGES.items() if f != folder] + [APP]
    for module, targets in _internal_imports().items():
        if _within(module, SUBPACKAGES[folder]):
            bad = [t for t in targets if any(_within(t, f) for f in forbidden)]
            assert not bad, f"{module} imports {bad}"


def test_library_imports_no_subpackage_and_nothing_imports_the_shell() -> None:
    """The library core reaches into none of train, analyses, reports and app; only probe.app composes them."""
    for module, targets in _internal_imports().items():
        if _within(module, APP):
            continue
        bad = [t for t in targets if _within(t, APP)]
        assert not bad, f"{module} imports the shell: {bad}"
        if any(_within(module, package) for package in SUBPACKAGES.values()):
            continue
        bad = [t for t in targets if any(_within(t, package) for package in SUBPACKAGES.values())]
        assert not bad, f"{module} (the library) imports {bad}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    """No two modules import each other, directly or around a circle, even lazily inside functions."""
    assert _cycles(_internal_imports()) == []


def test_the_circle_finder_finds_circles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_declares_ranges_and_make_installs_the_tested_set() -> None:
    """The distribution is `audio-probe` (the name `probe` on the public index is another project's); its runtime
    dependencies are ranges, never exact pins; constraints.txt pins every one of them, and `make` installs with it;
    the version is written once, in pyproject.toml, and read back through the installed metadata."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    import probe

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "audio-probe"
    requirements = [Requirement(text) for text in project["dependencies"]]
    assert not [str(r) for r in requirements if any(spec.operator == "==" for spec in r.specifier)]
    assert "timm" not in {r.name for r in requirements}, "timm comes with hear21passt; probe never imports it"
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, exact = line.partition("==")
            pinned[name.strip().lower().replace("_", "-")] = exact.strip()
    for requirement in requirements:
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"constraints.txt does not pin {name}"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])
    assert pinned["torch"] == "2.11.0" and pinned["torchaudio"] == "2.11.0"
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
    assert probe.__version__ == version("audio-probe") == project["version"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and (ROOT / "CITATION.cff").is_file()
