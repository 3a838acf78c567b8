"""Opening report pages in headless Chromium (Debian's package) through playwright, for the report tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium() -> str:
    """The Chromium executable; skips the calling test, saying why, when there is none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it): "
                    "the browser check of the report did not run")
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")
    return path


def check_in_chromium(pages: list[Path], screenshot_prefix: str) -> None:
    """Every page loads without console errors; every img and audio source resolves; every audio has a duration.

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
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
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
                assert not errors, f"{path}: {errors}"
                assert images and all(width > 0 for _, width in images), f"{path}: images not loaded: {images}"
                assert all(duration > 0 for _, duration in durations), f"{path}: audio without duration: {durations}"
                if number < 2:
                    name = "index" if number == 0 else "page"
                    page.screenshot(path=str(ARTIFACTS / f"{screenshot_prefix}-{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
