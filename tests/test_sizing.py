"""Sized before it runs: what the analysed fold's recordings can show, said before any training, and a dry run that
times one step and writes nothing."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from probe.analyses.removal import paired_drop
from probe.app.cli import main
from probe.sizing import MIN_INTERVAL_UNITS, Sizing, size_dataset, smallest_upper_bound, units_for_without

ROOT = Path(__file__).resolve().parents[1]


def test_the_smallest_bound_is_the_removal_checks_own() -> None:
    """Known answer: a removal that changes none of n decisions reaches exactly the bound the sizing predicts."""
    for n in (8, 37, 52, 80, 400):
        unchanged = np.ones(n, dtype=bool)
        assert paired_drop(unchanged, unchanged)[2] == pytest.approx(smallest_upper_bound(n), abs=1e-9)
    assert smallest_upper_bound(80) == pytest.approx(3.27, abs=0.01)  # the README's "3.3 points at 80 clips"


def test_units_for_without_is_the_first_count_below_the_margin() -> None:
    for margin in (2.0, 5.0, 10.0):
        needed = units_for_without(margin)
        assert smallest_upper_bound(needed) < margin <= smallest_upper_bound(needed - 1) or needed == MIN_INTERVAL_UNITS
    assert units_for_without(5.0) == 52


def test_forty_recordings_cannot_show_can_do_without() -> None:
    sizing = Sizing({1: 8, 2: 8, 3: 8, 4: 8, 5: 8}, 1, 8, 8)
    lines = sizing.lines()
    assert sizing.verdicts and not sizing.without_reachable
    warning = next(line for line in lines if "'can do without' cannot be shown" in line)
    assert f"bounded at {smallest_upper_bound(8):.1f} points" in warning
    assert f"it needs {units_for_without()} there, about {5 * units_for_without()} recordings in all" in warning
    enough = Sizing({1: 60, 2: 60}, 1, 60, 60)
    assert enough.without_reachable and not any("warning" in line for line in enough.lines())
    few = Sizing({1: 3, 2: 3}, 1, 3, 3)
    assert any("no verdict word can be shown" in line for line in few.lines())


def test_units_count_recordings_not_clips(tmp_path: Path) -> None:
    """Clips cut from one recording are one unit (ESC-50's src_file): the sizing reads the dataset's groups."""
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset
    from probe.data import load_esc50

    dataset = load_esc50(write_synthetic_dataset(tmp_path / "data", SyntheticConfig(clips_per_class=10)))
    sizing = size_dataset(dataset, 1)
    assert sum(sizing.clips_per_fold.values()) == len(dataset)
    assert sizing.analysed_clips == sum(1 for clip in dataset.clips if clip.fold == 1)
    assert sizing.analysed_units == len({clip.group or clip.clip_id for clip in dataset.clips if clip.fold == 1})


def _recordings(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        sf.write(folder / f"rec-{i:02d}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return folder


def test_dry_run_says_what_forty_recordings_can_show_and_writes_nothing(tmp_path: Path, capsys) -> None:
    data = _recordings(tmp_path / "my-recordings", 40)
    out = tmp_path / "runs" / "mine"
    assert main(["finetune", "--classifier", "small_cnn", "--classifier-option", "sample_rate=16000",
                 "--allow-untrained", "--data", f"audio:{data}", "--objective", "fidelity", "--probe", "spectral-gain",
                 "--replicates", "5", "--out", str(out), "--device", "cpu", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert re.search(r"clips per fold: 1: \d+, 2: \d+, 3: \d+, 4: \d+, 5: \d+", said)
    assert "'can do without' cannot be shown" in said and f"about {5 * units_for_without()} recordings" in said
    timing = re.search(r"time: one step of 4 clips took ([\d.]+) s on cpu: about (.+) per run \((\d+) epochs.*for 5 "
                       r"training run", said)
    assert timing and float(timing.group(1)) > 0 and timing.group(3) == "20", said
    assert not (tmp_path / "runs").exists()


def test_the_docs_give_the_computed_counts() -> None:
    """The README and the unlabeled-audio page give the recordings 'can do without' needs as the code computes them."""
    needed = units_for_without()
    for page in (ROOT / "README.md", ROOT / "docs" / "unlabeled-audio.md"):
        text = " ".join(page.read_text().split())
        assert re.search(rf"below {needed},? no", text), page
        assert f"about {5 * needed}" in text, page
        assert "40 or more" not in text, page


def test_a_long_loop_says_how_far_it_is_and_a_short_one_says_nothing(capsys) -> None:
    from probe.progress import Progress, Ticker, reporting

    with reporting(Progress(True)):
        quiet = Ticker("clips", 3, every_s=60.0)
        for _ in range(3):
            quiet.advance()
        ticking = Ticker("clips", 4, every_s=0.0)
        for _ in range(4):
            ticking.advance()
        bounded = Ticker("passes", 24, every_s=0.0, at_most=True)
        bounded.advance()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(", about")[0].strip() for line in lines] == ["clips: 1/4", "clips: 2/4", "clips: 3/4",
                                                                    "passes: 1/at most 24"]
    assert all(line.rstrip().endswith(" left") for line in lines)
    Ticker("outside", 2, every_s=0.0).advance()  # no command's progress: says nothing
    assert capsys.readouterr().out == ""
