"""A full disk or a read-only output folder: a one-line error, exit code 3 (a runtime failure), and earlier outputs
intact."""
from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from probe.app.cli import main

pytestmark = pytest.mark.integration

FLAGS = ["--methods", "saliency", "--attribution-clips", "3", "--bootstrap", "200", "--no-transfer", "--device", "cpu",
         "--quiet"]


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make `folder` unwritable: permissions, or (for root, whom permissions do not stop) the immutable flag."""
    folder.chmod(0o555)
    immutable = False
    try:
        probe_file = folder / ".write-test"
        try:
            probe_file.touch()
        except OSError:
            pass
        else:  # root: permissions do not apply
            probe_file.unlink()
            if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
                pytest.skip("cannot make a folder read-only here (root without the immutable flag)")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_read_only_output_folder_is_a_clear_error(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    parent = tmp_path / "outputs"
    out = parent / "analysis"
    assert main(["analyse", str(two_runs[0]), "--out", str(out), *FLAGS]) == 0
    before = _fingerprint(out)
    capsys.readouterr()
    with _read_only(parent):
        assert main(["analyse", str(two_runs[0]), "--out", str(out), *FLAGS]) == 3
        assert main(["report", str(out), "--out", str(parent / "site"), "--quiet"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("probe: error: ") for line in err), err
    assert str(out) in err[0] and ("cannot write" in err[0] or "Permission denied" in err[0])
    assert _fingerprint(out) == before, "the earlier analysis must stay as it was"


def test_a_full_disk_is_a_clear_error_and_leaves_earlier_outputs(tmp_path: Path, two_runs: list[Path]) -> None:
    out = tmp_path / "analysis"
    assert main(["analyse", str(two_runs[0]), "--out", str(out), *FLAGS]) == 0
    before = _fingerprint(out)

    def small_disk() -> None:  # every write past 64 kB fails with EFBIG, as writes to a full disk fail with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = subprocess.run([sys.executable, "-m", "probe.app.cli", "analyse", str(two_runs[0]), "--out", str(out), *FLAGS],
                            capture_output=True, text=True, preexec_fn=small_disk, timeout=300,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("probe: error: ") and "cannot write" in lines[0], result.stderr[-2000:]
    assert _fingerprint(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".analysis.")], "no staging folder may be left"


@contextlib.contextmanager
def _small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (root only; skips where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                                        str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


DECODE_INTO = """
import os, sys
from probe.cache import decode_split
from probe.errors import ProbeError
from probe.data import load_esc50
if sys.argv[3:] == ["without-fallocate"]:  # as on macOS: the free space is compared instead
    del os.posix_fallocate
try:
    decode_split(load_esc50(sys.argv[1]), 16000, cache_dir=sys.argv[2], progress=False)
except ProbeError as exc:
    print(f"probe: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


@pytest.mark.parametrize("platform", ["", "without-fallocate"])
def test_a_cache_that_does_not_fit_on_the_disk_is_an_error_not_a_crash(tmp_path: Path, synthetic_root: Path,
                                                                      platform: str) -> None:
    # The cache is memory-mapped: without reserving its blocks first, a page written to a full disk is SIGBUS.
    with _small_filesystem(tmp_path / "small", "256k") as small:
        result = subprocess.run([sys.executable, "-c", DECODE_INTO, str(synthetic_root), str(small / "cache"), platform],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot write the decoded-audio cache" in lines[0], result.stderr[-2000:]
        assert str(small / "cache") in lines[0] and "No space left on device" in lines[0]
        assert list((small / "cache").iterdir()) == [], "no half-written cache file may be left"
