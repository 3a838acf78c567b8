"""The attribution store: identical tables with and without it, nothing computed twice across analyses, and damaged or
unwritable entries costing time only."""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.analyses import attribution, randomisation
from probe.analyses.analyse import analyse
from probe.analyses.config import AnalyseConfig, AttributionSettings, ShiftSettings

pytestmark = pytest.mark.slow
TABLES = ("attribution_band_mass", "attribution_band_profile", "attribution_sanity")


def _config(runs: list[Path], out: Path, store: Path | None) -> AnalyseConfig:
    return AnalyseConfig(runs=tuple(map(str, runs)), out=str(out), device="cpu", progress=False, transfer=False,
                         removal=None, shifts=ShiftSettings(n_boot=100), attribution_store=str(store) if store else None,
                         attributions=AttributionSettings(methods=("saliency", "integrated_gradients"), max_clips=4,
                                                          ig_steps=4, sanity_clips=2, randomisation_stages=2))


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "comparison")
    return {f"{folder.name}/{name}": pd.read_parquet(folder / f"{name}.parquet") for folder in folders for name in TABLES}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the maps and the randomisation check were computed (each a pass of classifier calls)."""
    calls = {"maps": 0, "randomisation": 0}
    maps, check = attribution.attribution_maps, randomisation.cascading_randomisation

    def counting_maps(*args, **kwargs):
        calls["maps"] += 1
        return maps(*args, **kwargs)

    def counting_check(*args, **kwargs):
        calls["randomisation"] += 1
        return check(*args, **kwargs)

    monkeypatch.setattr(attribution, "attribution_maps", counting_maps)
    monkeypatch.setattr(randomisation, "cascading_randomisation", counting_check)
    return calls


@pytest.fixture(scope="module")
def third_run(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path, trained_classifier: Path) -> Path:
    from probe.train.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(classifier="small_cnn", classifier_weights=str(trained_classifier), autoencoder="tiny",
                            ae_options={"sample_rate": 16000, "channels": 1, "seed": 2}, data=f"esc50:{synthetic_root}",
                            out=str(tmp_path_factory.mktemp("third") / "run2"), epochs=1, learning_rate=3e-3,
                            progress=False)
    return finetune(config).path


def test_a_second_analysis_computes_only_the_new_runs_after_clips(tmp_path: Path, two_runs: list[Path], third_run: Path,
                                                                 counted: dict[str, int]) -> None:
    store = tmp_path / "store"
    analyse(_config(two_runs, tmp_path / "first", store))
    # per method: the originals once (the runs share the classifier and the clips), each run's "after" once
    assert counted == {"maps": 2 * 3, "randomisation": 1}
    analyse(_config([*two_runs, third_run], tmp_path / "second", store))
    assert counted == {"maps": 2 * 3 + 2, "randomisation": 1}  # the new run's "after" clips, per method, alone
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


def test_a_damaged_entry_is_computed_again_and_a_full_disk_costs_only_time(
        tmp_path: Path, two_runs: list[Path], counted: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    analyse(_config(two_runs, tmp_path / "first", store))
    entries = sorted(store.glob("*.npy"))
    assert len(entries) == 2 * 3 and len(list(store.glob("*.parquet"))) == 1
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
    assert kept == [".parquet"]  # no half-written map, and no temporary file: only the check, which np.save never wrote
    assert "cannot keep" in caplog.text


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, two_runs: list[Path], capsys) -> None:
    from probe.app.cli import main

    store, out = tmp_path / "store", tmp_path / "analysis"
    flags = ["--methods", "saliency", "--attribution-clips", "4", "--sanity-clips", "2", "--randomisation-stages", "2",
             "--bootstrap", "100", "--no-transfer", "--no-answer", "--device", "cpu", "--quiet",
             "--attribution-store", str(store), "--out", str(out)]
    assert main(["analyse", *map(str, two_runs), *flags, "--dry-run", "--budget-minutes", "0"]) == 0
    said = capsys.readouterr().out
    # the originals once, each run's finetuned clips once, the check's trained maps and its 2 stages on 2 clips
    assert "small_cnn saliency: 18 clip passes" in said and "in all" in said
    assert "over the budget of 0 minutes" in said and "--attribution-clips N" in said
    assert not out.exists() and not store.exists()
    assert main(["analyse", *map(str, two_runs), *flags]) == 0
    capsys.readouterr()
    assert main(["analyse", *map(str, two_runs), *flags, "--dry-run"]) == 0
    assert "nothing to compute" in capsys.readouterr().out
