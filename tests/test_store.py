"""The attribution store: identical tables with and without it, nothing computed twice across analyses, and damaged or
unwritable entries costing time only."""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_runs, train_small_cnn
from probe.analyses import attribution, randomisation
from probe.analyses.analyse import analyse
from probe.analyses.config import AnalyseConfig, AttributionSettings, ShiftSettings
from probe.synthetic import SyntheticConfig, write_synthetic_dataset

pytestmark = pytest.mark.integration
TABLES = ("attribution_band_mass", "attribution_band_profile", "attribution_sanity", "attribution_completeness")
WIDE = SyntheticConfig(classes_per_category=1, clips_per_class=10, clip_seconds=0.5)
"""Ten validation clips: enough for the randomisation check, whose verdict needs an interval over 8."""


def _config(runs: list[Path], out: Path, store: Path | None, clips: int = 8) -> AnalyseConfig:
    return AnalyseConfig(runs=tuple(map(str, runs)), out=str(out), device="cpu", progress=False, transfer=False,
                         removal=None, shifts=ShiftSettings(n_boot=100), attribution_store=str(store) if store else None,
                         attributions=AttributionSettings(methods=("saliency", "integrated_gradients"), max_clips=clips,
                                                          ig_steps=4, sanity_clips=8, randomisation_stages=2))


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "comparison")
    return {f"{folder.name}/{name}": pd.read_parquet(folder / f"{name}.parquet") for folder in folders for name in TABLES}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the maps, the randomisation check and the step choice were computed (each a pass of
    classifier calls)."""
    calls = {"maps": 0, "randomisation": 0, "steps": 0}
    for module, name, count in ((attribution, "attribution_maps", "maps"),
                                (randomisation, "cascading_randomisation", "randomisation"),
                                (attribution, "size_steps", "steps")):
        def counting(*args, _function=getattr(module, name), _count=count, **kwargs):
            calls[_count] += 1
            return _function(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return calls


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two tiny runs, and a third, behind a small CNN on a dataset with ten validation clips."""
    root = write_synthetic_dataset(tmp_path_factory.mktemp("wide") / "data", WIDE)
    classifier = train_small_cnn(root, tmp_path_factory.mktemp("wide-clf"))
    runs = tmp_path_factory.mktemp("wide-runs")
    return {"two_runs": tiny_runs(root, classifier, runs), "third_run": tiny_runs(root, classifier, runs, (2,))[0]}


@pytest.fixture(scope="module")
def two_runs(wide: dict[str, object]) -> list[Path]:
    return wide["two_runs"]


@pytest.fixture(scope="module")
def third_run(wide: dict[str, object]) -> Path:
    return wide["third_run"]


def test_a_second_analysis_computes_only_the_new_runs_after_clips(tmp_path: Path, two_runs: list[Path], third_run: Path,
                                                                 counted: dict[str, int]) -> None:
    store = tmp_path / "store"
    analyse(_config(two_runs, tmp_path / "first", store))
    # per method: the originals once (the runs share the classifier and the clips), each run's "after" once; the
    # check once per method; the step choice once
    assert counted == {"maps": 2 * 3, "randomisation": 2, "steps": 1}
    analyse(_config([*two_runs, third_run], tmp_path / "second", store))
    # the new run's "after" clips, per method, alone
    assert counted == {"maps": 2 * 3 + 2, "randomisation": 2, "steps": 1}
    first, second = _tables(tmp_path / "first"), _tables(tmp_path / "second")
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, second[name])


def test_tables_are_identical_with_and_without_the_store(tmp_path: Path, two_runs: list[Path]) -> None:
    analyse(_config(two_runs, tmp_path / "plain", None))
    analyse(_config(two_runs, tmp_path / "filled", tmp_path / "store"))
    analyse(_config(two_runs, tmp_path / "read", tmp_path / "store"))
    plain, filled, read = (_tables(tmp_path / name) for name in ("plain", "filled", "read"))
    for name, frame in plain.items():
        pd.testing.assert_frame_equal(frame, filled[name])
        pd.testing.assert_frame_equal(frame, read[name])


def test_a_step_choice_read_from_the_store_gives_the_maps_computed_with_it(tmp_path: Path, two_runs: list[Path],
                                                                          counted: dict[str, int]) -> None:
    """The first originals' integrated gradients come from the step choice; where the store holds the choice but not
    the maps (here: more clips, the same first ones), they are computed as the choice computes them, so the tables
    equal those of an analysis without the store."""
    store = tmp_path / "store"
    analyse(_config(two_runs, tmp_path / "eight", store))
    analyse(_config(two_runs, tmp_path / "ten", store, clips=10))
    assert counted["steps"] == 1  # the second analysis read the choice
    analyse(_config(two_runs, tmp_path / "plain", None, clips=10))
    for name, frame in _tables(tmp_path / "plain").items():
        pd.testing.assert_frame_equal(frame, _tables(tmp_path / "ten")[name])


def test_a_damaged_entry_is_computed_again_and_a_full_disk_costs_only_time(
        tmp_path: Path, two_runs: list[Path], counted: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    analyse(_config(two_runs, tmp_path / "first", store))
    entries = sorted(store.glob("*.npy"))
    assert len(entries) == 2 * 3 and len(list(store.glob("*.parquet"))) == 2 + 1  # a check per method, the steps
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncated, as by a disk that filled up mid-copy
    computed = counted["maps"]
    analyse(_config(two_runs, tmp_path / "again", store))
    assert counted["maps"] == computed + 1 and "unreadable" in caplog.text
    for name, frame in _tables(tmp_path / "first").items():
        pd.testing.assert_frame_equal(frame, _tables(tmp_path / "again")[name])

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", no_room)
    analyse(_config(two_runs, tmp_path / "full", tmp_path / "full-store"))  # the analysis goes on without the store
    kept = [p.suffix for p in (tmp_path / "full-store").rglob("*") if p.is_file()]
    # no half-written map, and no temporary file: only the checks and the steps, which np.save never wrote
    assert set(kept) == {".parquet"} and len(kept) == 3
    assert "cannot keep" in caplog.text


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    from probe.app.cli import main

    store, out = tmp_path / "store", tmp_path / "analysis"
    flags = ["--methods", "saliency", "--attribution-clips", "8", "--sanity-clips", "8", "--randomisation-stages", "2",
             "--bootstrap", "100", "--no-transfer", "--no-answer", "--device", "cpu", "--quiet",
             "--attribution-store", str(store), "--out", str(out)]
    assert main(["analyse", *map(str, two_runs), *flags, "--dry-run", "--budget-minutes", "0"]) == 0
    said = capsys.readouterr().out
    # the originals once and each run's finetuned clips once; the check's trained maps and its 2 stages on 8 clips
    assert "small_cnn saliency: 24 clip passes" in said and "small_cnn saliency (randomisation check): 24" in said
    assert "in all" in said
    assert "over the budget of 0 minutes" in said and "--attribution-clips N" in said
    assert not out.exists() and not store.exists()
    ig = [*flags[2:], "--methods", "integrated_gradients", "--dry-run"]
    assert main(["analyse", *map(str, two_runs), *ig]) == 0  # steps still to choose: the plan says what it timed
    assert "integrated_gradients (timed at 16 steps: each rung the completeness walk climbs" in capsys.readouterr().out
    assert main(["analyse", *map(str, two_runs), *ig, "--ig-steps", "4"]) == 0
    assert "timed at" not in capsys.readouterr().out
    assert main(["analyse", *map(str, two_runs), *flags]) == 0
    capsys.readouterr()
    assert main(["analyse", *map(str, two_runs), *flags, "--dry-run"]) == 0
    assert "nothing to compute" in capsys.readouterr().out
