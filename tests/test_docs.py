"""The documentation says what the code does: its generated pages are current, its commands parse, its site builds.

- The reference pages (command line, registries, tables) equal what `python -m probe.app.docs` makes now.
- The README's demo quick start parses with the command's own parser, and its set-up names real `make` targets.
- Every `probe COMMAND --flag` in a code block of the README or of docs/ is a flag that command's parser knows.
- `mkdocs build --strict` passes: a broken link, a missing page or an object the API page cannot find fails it.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from probe.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
SHELL = ("", "bash", "sh", "shell", "console")


def shell_blocks(text: str) -> list[str]:
    """The shell code blocks of Markdown text (bash, or unmarked), fence by fence."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                if language in SHELL:
                    blocks.append("\n".join(lines) + "\n")
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def code_blocks(path: Path) -> list[str]:
    return shell_blocks(path.read_text())


def section(text: str, heading: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    start = text.index(heading) + len(heading)
    following = re.search(r"^#", text[start:], flags=re.M)
    return text[start:start + following.start()] if following else text[start:]


def commands_in(block: str) -> list[list[str]]:
    """Each `probe ...` command of a shell block as its arguments after `probe`: continuation lines joined, comments
    dropped, `&&`/`;`/`|` chains split, and `probe` spelled as a path or as `-m probe.app.cli` recognised."""
    found = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        tokens, current = list(lexer), []
        for token in [*tokens, ";"]:
            if token and set(token) <= set(";&|"):
                starts = [i for i, word in enumerate(current) if word == "probe" or word.endswith("/probe")
                          or word == "probe.app.cli"]
                if starts:
                    found.append(current[starts[0] + 1:])
                current = []
            else:
                current.append(token)
    return found


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices


def documented_commands() -> list[tuple[str, list[str]]]:
    """(file, arguments) of every `probe` command in a code block of the README and of the docs pages."""
    return [(str(path.relative_to(ROOT)), args) for path in [README, *PAGES] for block in code_blocks(path)
            for args in commands_in(block) if args]


def test_the_generated_pages_are_current(tmp_path: Path) -> None:
    """The committed reference pages equal what the code makes now (run `make docs` after changing a flag, a
    registered entry or an analysis). Made in a fresh process without plugins, as `make docs` makes them."""
    env = {key: value for key, value in os.environ.items() if key != "PROBE_PLUGINS"}
    subprocess.run([sys.executable, "-m", "probe.app.docs", str(tmp_path)], check=True, env=env, capture_output=True)
    made = sorted(path.name for path in tmp_path.glob("*.md"))
    assert made == ["cli.md", "registries.md", "tables.md"]
    for name in made:
        committed = ROOT / "docs" / "reference" / name
        assert committed.exists() and committed.read_text() == (tmp_path / name).read_text(), \
            f"docs/reference/{name} is stale: run `make docs`"


def test_the_generated_pages_name_every_command_registry_entry_and_table() -> None:
    from probe.analyses.registry import ANALYSES
    from probe.app.docs import find_registries, generate

    pages = generate()
    for name in subparsers(build_parser()):
        assert f"`probe {name}`" in pages["cli.md"] or f"probe {name}`" in pages["cli.md"], name
    for path, registry in find_registries():
        assert f"`{path}`" in pages["registries.md"]
        for entry in registry.names():
            assert f"`{entry}`" in pages["registries.md"], (registry.kind, entry)
    for analysis in ANALYSES.entries():
        for schema in analysis.schemas:  # every table under its own heading, with every declared column
            section = pages["tables.md"].split(f"### `{schema.name}`\n", 1)[1].split("\n### ", 1)[0]
            assert all(f"| `{column}` |" in section for column in schema.column_names), schema.name
    assert "--select-on" in pages["cli.md"] and "analyse" in pages["tables.md"]


def test_the_readme_demo_quick_start_parses() -> None:
    """The demo quick start, run as printed, would start the demo: every `probe` command in it parses, and the set-up's
    `make` targets exist (`make demo` itself runs `probe demo --out demo-out`, parsed here too)."""
    text = README.read_text()
    quick_start = section(text, "### 1. The demo")
    commands = [args for block in shell_blocks(quick_start) for args in commands_in(block)]
    assert commands and all(args[0] == "demo" for args in commands)
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n\t(.*)$", makefile, flags=re.M).group(1)
    commands += commands_in(recipe)
    for args in commands:
        parsed = build_parser().parse_args(args)
        assert parsed.command == "demo", args
    for target in re.findall(r"^make (\S+)", section(text, "## Set-up") + quick_start, flags=re.M):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"the Makefile has no {target!r} target"


def test_every_documented_flag_is_one_its_command_knows() -> None:
    """A flag in a README or docs code block that its command's parser does not know is a documentation error."""
    parsers = subparsers(build_parser())
    commands = documented_commands()
    assert len({args[0] for _, args in commands}) >= 8, "the docs' code blocks should show most commands"
    problems = []
    for where, args in commands:
        if args[0] not in parsers:
            problems.append(f"{where}: probe {args[0]} is no command")
            continue
        known = {option for action in parsers[args[0]]._actions for option in action.option_strings}
        for word in args[1:]:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                problems.append(f"{where}: probe {args[0]} has no {flag}")
    assert not problems, "\n".join(problems)


def test_the_flag_check_can_fail() -> None:
    parsers = subparsers(build_parser())
    (args,) = commands_in("probe finetune --no-such-flag 1 --out x  # a comment --also-not")
    known = {option for action in parsers[args[0]]._actions for option in action.option_strings}
    assert args == ["finetune", "--no-such-flag", "1", "--out", "x"]
    assert [word for word in args if word.startswith("--") and word not in known] == ["--no-such-flag"]
    assert commands_in("probe analyse A --out B && .venv/bin/probe report B --out C") == [
        ["analyse", "A", "--out", "B"], ["report", "B", "--out", "C"]]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` (the README as the home page, the root files as pages, the API from docstrings)."""
    pytest.importorskip("mkdocs")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "reference" / "cli" / "index.html").exists()
