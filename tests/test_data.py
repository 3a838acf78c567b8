"""Datasets and the decoded-audio cache."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from probe import esc50
from probe.cache import content_key, decode_split
from probe.data import load_dataset, load_esc50, load_folder
from probe.errors import AudioError, DatasetError
from probe.synthetic import SyntheticConfig, render_clip, write_synthetic_dataset

from conftest import SMALL_SYNTHETIC


def _official_esc50(root: Path, clips_per_fold: int = 2) -> Path:
    """An official-layout ESC-50 (audio/ at 44.1 kHz) with all 50 classes and a few clips."""
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    rows = []
    for target, name in enumerate(esc50.CLASS_NAMES):
        if target % 10:
            continue  # one class per category keeps the fixture small; names still come from the CSV
        for fold in esc50.FOLDS:
            for take in range(clips_per_fold):
                filename = f"{fold}-{target}{take}-A-{target}.wav"
                sf.write(root / "audio" / filename, np.full((4410, 1), 0.01 * (take + 1), dtype=np.float32), 44100)
                rows.append({"filename": filename, "fold": fold, "target": target, "category": name})
    for target, name in enumerate(esc50.CLASS_NAMES):
        if target % 10:
            rows.append({"filename": "unused", "fold": 9, "target": target, "category": name})
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["filename", "fold", "target", "category", "esc10"])
        writer.writeheader()
        writer.writerows([{**r, "esc10": False} for r in rows if r["filename"] != "unused"])
    return root


def test_official_layout_categories_and_folds(tmp_path: Path) -> None:
    dataset = load_esc50(_official_esc50(tmp_path / "ESC-50"))
    assert dataset.sample_rate is None and dataset.clip_seconds == 5.0
    assert dataset.category_names == esc50.CATEGORY_NAMES
    assert [dataset.class_names[t] for t in (0, 10, 20, 30, 40)] == ["dog", "rain", "crying_baby", "door_wood_knock", "helicopter"]
    assert [dataset.category_of(t) for t in (0, 10, 20, 30, 40)] == [0, 1, 2, 3, 4]
    train, val = dataset.split()
    assert {c.fold for c in val.clips} == {1} and {c.fold for c in train.clips} == {2, 3, 4, 5}
    assert len(train) + len(val) == len(dataset)
    folds = [fold for fold, _, _ in dataset.cross_validation()]
    assert folds == [1, 2, 3, 4, 5]


def test_pass_32k_layout_is_preferred(tmp_path: Path) -> None:
    root = _official_esc50(tmp_path / "esc50")
    shutil.copytree(root / "audio", root / "audio_32k")
    dataset = load_esc50(root)
    assert dataset.sample_rate == 32000 and dataset.clips[0].path.parent.name == "audio_32k"


def test_esc50_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="esc50.csv is missing"):
        load_esc50(tmp_path)
    root = _official_esc50(tmp_path / "e")
    next((root / "audio").iterdir()).unlink()
    with pytest.raises(DatasetError, match="1 files listed"):
        load_esc50(root)
    (root / "meta" / "esc50.csv").write_text("filename,fold\nx.wav,1\n")
    with pytest.raises(DatasetError, match="missing columns"):
        load_esc50(root)
    with pytest.raises(DatasetError, match="no fold"):
        load_esc50(_official_esc50(tmp_path / "f")).subset([7])


def test_synthetic_dataset_is_deterministic_and_loads(tmp_path: Path, synthetic_root: Path) -> None:
    dataset = load_esc50(synthetic_root)
    assert dataset.num_classes == 5 and len(dataset) == 25 and dataset.sample_rate == 16000
    assert dataset.category_names[dataset.category_of(0)] == "harmonic tones"
    again = write_synthetic_dataset(tmp_path / "again", SMALL_SYNTHETIC)
    first = sf.read(dataset.clips[3].path)[0]
    second = sf.read(load_esc50(again).clips[3].path)[0]
    np.testing.assert_array_equal(first, second)


def test_synthetic_bands_carry_the_classes() -> None:
    config = SyntheticConfig()
    rng = np.random.default_rng(0)
    clip = render_clip(0, 5, rng, config)
    spectrum = np.abs(np.fft.rfft(clip)) ** 2
    freqs = np.fft.rfftfreq(clip.size, 1 / config.sample_rate)
    low = spectrum[(freqs > 100) & (freqs < 2000)].sum()
    high = spectrum[freqs > 4000].sum()
    middle = spectrum[(freqs > 2200) & (freqs < 4000)].sum()
    assert low > 20 * middle and high > 20 * middle


def test_folder_dataset_with_categories(tmp_path: Path) -> None:
    for name in ("bark", "meow", "siren"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            sf.write(tmp_path / "data" / name / f"{i}.wav", np.zeros((100, 1), dtype=np.float32) + 0.1, 8000)
    (tmp_path / "data" / "bark" / "notes.txt").write_text("not audio")
    dataset = load_folder(tmp_path / "data")
    assert dataset.class_names == ("bark", "meow", "siren") and len(dataset) == 12
    assert dataset.category_names == ("all",)
    assert load_folder(tmp_path / "data").clips == dataset.clips  # folds are stable
    (tmp_path / "cats.csv").write_text("class,category\nbark,animals\nmeow,animals\nsiren,urban\n")
    grouped = load_folder(tmp_path / "data", tmp_path / "cats.csv")
    assert grouped.category_names == ("animals", "urban") and grouped.class_categories == (0, 0, 1)
    (tmp_path / "bad.csv").write_text("class,category\nbark,animals\n")
    with pytest.raises(DatasetError, match="no category for 2 classes"):
        load_folder(tmp_path / "data", tmp_path / "bad.csv")
    assert len(load_dataset(f"folder:{tmp_path / 'data'}")) == 12
    with pytest.raises(DatasetError, match="unknown --data"):
        load_dataset("youtube:cats")


@pytest.mark.parametrize("beside", ["nothing", "an empty subfolder", "a subfolder with a clip"])
def test_a_flat_folder_given_as_folder_data_says_to_use_audio(beside: str, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Audio files directly in DIR have no class to give: `folder:` says what it takes, and where flat audio goes."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        sf.write(flat / f"{i}.wav", np.zeros((100, 1), dtype=np.float32) + 0.1, 8000)
    if beside != "nothing":
        (flat / "extra").mkdir()
    if beside == "a subfolder with a clip":
        shutil.copy(flat / "0.wav", flat / "extra" / "0.wav")
    with pytest.raises(DatasetError) as refused:
        load_dataset(f"folder:{flat}")
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{flat}: ") and "(3 audio files directly in it)" in message
    assert message.endswith("folder: takes one subfolder per class holding its clips (DIR/<class>/<clip>); for a "
                            f"flat folder of unlabeled audio use audio:{flat}")
    assert len(load_dataset(f"audio:{flat}")) == 3 + (beside == "a subfolder with a clip")
    for name in ("a", "b"):  # with classes beside them, the loose files are left out, and said to be
        (flat / name).mkdir()
        shutil.copy(flat / "0.wav", flat / name / "0.wav")
    with caplog.at_level("WARNING", logger="probe.data"):
        assert set(load_folder(flat).class_names) >= {"a", "b"}
    assert "3 audio file(s) directly in it (0.wav, ...) are in no class folder and are left out" in caplog.text
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no class folders: folder: takes one subfolder per class") as nothing:
        load_folder(empty)
    assert "audio:" not in str(nothing.value)


def test_cache_hits_and_rebuilds_on_change(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "data", SMALL_SYNTHETIC)
    dataset = load_esc50(root)
    first = decode_split(dataset, 8000, cache_dir=tmp_path / "cache", progress=False)
    assert first.waveforms.shape == (25, 4000) and isinstance(first.waveforms, np.memmap)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    again = decode_split(dataset, 8000, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(first.waveforms, again.waveforms)
    key = content_key(dataset, 8000, 4000)
    sf.write(dataset.clips[0].path, np.zeros((8000, 1), dtype=np.float32) + 0.2, 16000)
    assert content_key(dataset, 8000, 4000) != key
    rebuilt = decode_split(dataset, 8000, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_allclose(rebuilt.waveforms[0][100:3000], 0.2, atol=1e-3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert content_key(dataset, 16000, 8000) != content_key(dataset, 8000, 4000)


def test_cache_skips_bad_files_and_lists_them(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "data", SMALL_SYNTHETIC)
    dataset = load_esc50(root)
    dataset.clips[2].path.write_text("garbage")
    split = decode_split(dataset, 8000, cache_dir=tmp_path / "cache", progress=False)
    assert len(split) == 24 and split.skipped == [(dataset.clips[2].clip_id, "not an audio file (unrecognised format)")]
    assert dataset.clips[2].clip_id not in split.clip_ids
    cached = decode_split(dataset, 8000, cache_dir=tmp_path / "cache", progress=False)
    assert cached.waveforms.shape == (24, 4000) and cached.clip_ids == split.clip_ids
    with pytest.raises(AudioError, match="not an audio file"):
        decode_split(dataset, 8000, cache_dir=tmp_path / "cache", strict=True, progress=False)


def test_clips_cut_from_one_recording_carry_its_group(tmp_path: Path) -> None:
    """ESC-50's src_file, or a folder's meta/groups.csv, names the recording each clip was cut from: the analyses
    resample such groups as one unit, and a folder dataset keeps a group's clips in one fold."""
    root = _official_esc50(tmp_path / "ESC-50")
    csv_path = root / "meta" / "esc50.csv"
    rows = list(csv.DictReader(open(csv_path)))
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "src_file"])
        writer.writeheader()
        writer.writerows([{**r, "src_file": r["filename"].split("-A-")[0][:-1]} for r in rows])  # two takes, one source
    clips = load_esc50(root).clips
    assert all(c.group == c.clip_id.split("-A-")[0][:-1] for c in clips)
    assert len({c.group for c in clips}) == len(clips) // 2

    for name in ("bark", "meow"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            sf.write(tmp_path / "data" / name / f"{i}.wav", np.zeros((100, 1), dtype=np.float32) + 0.1, 8000)
    assert all(c.group is None for c in load_folder(tmp_path / "data").clips)
    (tmp_path / "data" / "meta").mkdir()
    (tmp_path / "data" / "meta" / "groups.csv").write_text(
        "file,group\n" + "".join(f"{n}/{i}.wav,{n}-rec{i // 3}\n" for n in ("bark", "meow") for i in range(6)))
    grouped = load_folder(tmp_path / "data").clips
    assert {c.group for c in grouped} == {"bark-rec0", "bark-rec1", "meow-rec0", "meow-rec1"}
    for group in {c.group for c in grouped}:
        assert len({c.fold for c in grouped if c.group == group}) == 1


def test_extra_validation_clips_leave_the_rest_of_the_dataset_unchanged(tmp_path: Path) -> None:
    """More clips in fold 1 (the demo's validation fold) are drawn after every other clip: the others are identical."""
    from dataclasses import replace

    plain = load_esc50(write_synthetic_dataset(tmp_path / "plain", SMALL_SYNTHETIC))
    more = load_esc50(write_synthetic_dataset(tmp_path / "more", replace(SMALL_SYNTHETIC, extra_validation_clips_per_class=2)))
    assert len(more.clips) == len(plain.clips) + 2 * SMALL_SYNTHETIC.num_classes
    added = {c.clip_id for c in more.clips} - {c.clip_id for c in plain.clips}
    assert {c.fold for c in more.clips if c.clip_id in added} == {1}
    for clip in plain.clips:
        assert (tmp_path / "more" / "audio" / clip.path.name).read_bytes() == clip.path.read_bytes()


def test_an_esc50_folder_finds_the_release_unpacked_beneath_it(tmp_path: Path) -> None:
    """`probe download esc50` unpacks the release into a folder of its own: --data esc50:THAT_FOLDER reads it."""
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "esc50" / "ESC-50-master", SyntheticConfig(classes_per_category=1,
                                                                                          clips_per_class=5))
    assert len(load_esc50(tmp_path / "esc50")) == len(load_esc50(root)) == 25
    write_synthetic_dataset(tmp_path / "esc50" / "another", SyntheticConfig(classes_per_category=1, clips_per_class=5))
    with pytest.raises(DatasetError, match="not an ESC-50 folder"):  # two releases beneath: which one is not guessed
        load_esc50(tmp_path / "esc50")
