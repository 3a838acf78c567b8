"""Shared fixtures: small real audio files and a small synthetic dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from probe.synthetic import SyntheticConfig, write_synthetic_dataset

SMALL_SYNTHETIC = SyntheticConfig(classes_per_category=1, clips_per_class=5, clip_seconds=0.5)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def sine_wav(tmp_path: Path) -> Path:
    """A 0.5 s, 1 kHz mono sine at 32 kHz."""
    path = tmp_path / "sine.wav"
    t = np.arange(16000) / 32000
    sf.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 32000, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-class synthetic dataset in ESC-50 layout (25 half-second clips at 16 kHz)."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "data", SMALL_SYNTHETIC)
