"""Opening report pages in headless Chromium (Debian's package) through playwright, for the report tests."""
from __future__ import annotations

from urllib.parse import unquote

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
NARROW_WIDTHS = (390, 1400)
"""Viewport widths at which no element may overflow the page horizontally (tables scroll inside themselves)."""


def chromium() -> str:
    """The Chromium executable; skips the calling test, saying why, when there is none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it): "
                    "the browser check of the report did not run")
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")
    return path


def check_in_chromium(pages: list[Path], screenshot_prefix: str) -> None:
    """Every page loads without console errors; every img and audio source and every link resolves (an anchor to an
    element on its page); a sortable table sorts when its heading is clicked; every audio has a duration; at
    390 and 1400 px wide nothing overflows the page sideways (a wide table scrolls inside itself).

    Screenshots of the first two pages are kept in tests/artifacts/.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for number, path in enumerate(pages):
                for width in NARROW_WIDTHS:  # a phone and a laptop: nothing may stick out of the page sideways
                    narrow = browser.new_page(viewport={"width": width, "height": 900})
                    narrow.goto(path.as_uri(), wait_until="load")
                    overflow = narrow.evaluate("""() => {
                        const width = document.documentElement.clientWidth;
                        return Array.from(document.querySelectorAll('body *'))
                            .filter(el => el.getBoundingClientRect().right > width + 1
                                          && !el.closest('table, pre, .scroll'))
                            .slice(0, 5).map(el => el.tagName + '.' + el.className + ': ' + (el.textContent || '').slice(0, 40));
                    }""")
                    scroll = narrow.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
                    assert scroll <= 1 and not overflow, f"{path} at {width} px: the page overflows by {scroll} px: {overflow}"
                    narrow.close()
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                # a media request the page itself cancels (the duration check below restarts a load still in flight)
                # is no failure: whether every audio loads is what that check asserts
                page.on("requestfailed", lambda request: None if request.resource_type == "media" and "ERR_ABORTED" in (
                    request.failure or "") else errors.append(f"failed: {request.url} ({request.failure})"))
                page.goto(path.as_uri(), wait_until="load")
                images = page.evaluate("""async () => {
                    const images = Array.from(document.images);
                    for (const img of images) { img.loading = 'eager'; if (!img.complete) await img.decode().catch(() => {}); }
                    return images.map(img => [img.getAttribute('src'), img.naturalWidth]);
                }""")
                durations = page.evaluate("""async () => Promise.all(Array.from(document.querySelectorAll('audio')).map(
                    audio => audio.readyState >= 1 ? [audio.getAttribute('src'), audio.duration] : new Promise(resolve => {
                        audio.addEventListener('loadedmetadata', () => resolve([audio.getAttribute('src'), audio.duration]));
                        audio.addEventListener('error', () => resolve([audio.getAttribute('src'), -1]));
                        audio.load();
                    })))""")
                links = page.evaluate("""() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))""")
                for href in links:  # every link resolves: a file beside the page, and an anchor to an element there
                    if href.startswith(("http:", "https:", "mailto:")):
                        continue
                    target, _, anchor = href.partition("#")
                    file = (path.parent / unquote(target)).resolve() if target else path
                    assert file.exists(), f"{path}: the link {href} leads nowhere"
                    if anchor and not target:
                        assert page.evaluate("id => document.getElementById(id) !== null", anchor), \
                            f"{path}: no element #{anchor} for the link {href}"
                sortable = page.query_selector("table.sortable thead th")
                if sortable is not None:  # a click sorts (sort.js loaded and ran) and says which way
                    sortable.click()
                    assert sortable.get_attribute("aria-sort") == "ascending", f"{path}: the table did not sort"
                assert not errors, f"{path}: {errors}"
                assert images and all(width > 0 for _, width in images), f"{path}: images not loaded: {images}"
                assert all(duration > 0 for _, duration in durations), f"{path}: audio without duration: {durations}"
                if number < 2:
                    name = "index" if number == 0 else "page"
                    page.screenshot(path=str(ARTIFACTS / f"{screenshot_prefix}-{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
