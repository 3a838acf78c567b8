"""MkDocs hook: a page that stands for a file outside docs/ shows that file, with its links rebased.

The repository's root files (README.md, VALIDATION.md, BENCHMARKS.md, RELIABILITY.md, CHANGELOG.md) stay where
their readers and writers expect them, and the Markdown reads on GitHub as it is. A page in docs/ holding the
comment `<!-- page: ../VALIDATION.md -->` is, on the site, that file: its relative links are rebased from the file's
folder to the page's, and a link to another root file that a page stands for points at that page. Any other link
is left as it is, so that `mkdocs build --strict` reports it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

PAGE = re.compile(r"^<!--\s*page:\s*(\S+?)\s*-->$", flags=re.M)
FENCE = re.compile(r"(^```.*?^```)", flags=re.S | re.M)
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")

stands_for: dict[Path, str] = {}
"""The resolved source file -> the docs page (its src_uri) that shows it."""


def on_files(files, config):
    stands_for.clear()
    for file in files.documentation_pages():
        match = PAGE.search(Path(file.abs_src_path).read_text(encoding="utf-8"))
        if match:
            stands_for[(Path(file.abs_src_path).parent / match.group(1)).resolve()] = file.src_uri
    return files


def on_page_markdown(markdown, page, config, files):
    match = PAGE.search(markdown)
    if not match:
        return markdown
    page_folder = Path(page.file.abs_src_path).parent
    source = (page_folder / match.group(1)).resolve()
    docs_dir = Path(config["docs_dir"]).resolve()

    def rebase(link: re.Match) -> str:
        target = link.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return link.group(0)
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve()
        if resolved in stands_for:
            new = os.path.relpath(docs_dir / stands_for[resolved], page_folder)
        elif resolved.is_relative_to(docs_dir):
            new = os.path.relpath(resolved, page_folder)
        else:
            return link.group(0)
        return f"{link.group(1)}{Path(new).as_posix()}{'#' + anchor if anchor else ''}{link.group(3)}"

    text = source.read_text(encoding="utf-8")
    parts = FENCE.split(text)
    return "".join(part if index % 2 else LINK.sub(rebase, part) for index, part in enumerate(parts))
