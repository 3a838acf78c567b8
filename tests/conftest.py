"""Shared fixtures: small real audio files, a small synthetic dataset, trained small models, a local HTTP server."""
from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
import torch

from probe.models import load_classifier, save_classifier
from probe.synthetic import SyntheticConfig, write_synthetic_dataset

SMALL_SYNTHETIC = SyntheticConfig(classes_per_category=1, clips_per_class=5, clip_seconds=0.5)
PIPELINE_FIXTURES = {"synthetic_root", "trained_classifier", "two_runs"}
"""A test that needs one of these runs a whole pipeline (it trains, finetunes or analyses): `integration`, whatever
its file says, unless it is a held-out validation. `make test-fast` runs the unit tests alone; `make test` adds the
integration tests; `make validate` runs the validation tier (the demo's held-out planted checks, real scale)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("validation"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _probe_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Downloads and the attribution store go to a folder of the session's, never the user's home, and every table
    written is checked against its declared schema (subprocesses inherit both)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROBE_HOME", str(tmp_path_factory.mktemp("probe-home")))
        patch.setenv("PROBE_STRICT_SCHEMA", "1")  # a table that drifts from its declared columns fails the test
        yield


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


def train_small_cnn(root: Path, out: Path) -> Path:
    """A small CNN fitted on the training folds of the synthetic dataset at `root`, saved in probe's format."""
    from probe.cache import decode_split
    from probe.data import load_esc50

    dataset = load_esc50(root)
    train, _ = dataset.split()
    split = decode_split(train, 16000, progress=False)
    torch.manual_seed(0)  # the weights must not depend on which tests ran before this session fixture
    classifier = load_classifier("small_cnn", num_classes=dataset.num_classes, class_names=list(dataset.class_names),
                                 sample_rate=16000, frozen=False, channels=8)
    classifier.frontend.eval()
    optimizer = torch.optim.Adam(classifier.net.parameters(), lr=3e-3)
    x, y = split.as_tensor(), torch.from_numpy(split.targets)
    for _ in range(25):
        classifier.net.train()
        loss = torch.nn.functional.cross_entropy(classifier(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    classifier.untrained = None
    return save_classifier(classifier.eval(), out / "small_cnn.pt")


def tiny_runs(root: Path, classifier: Path, out: Path, seeds: tuple[int, ...] = (0, 1)) -> list[Path]:
    """Complete tiny finetune runs behind the small CNN at `classifier`, one per AE seed, in `out`/run{seed}."""
    from probe.train.finetune import FinetuneConfig, finetune

    runs = []
    for seed in seeds:
        config = FinetuneConfig(classifier="small_cnn", classifier_weights=str(classifier), autoencoder="tiny",
                                ae_options={"sample_rate": 16000, "channels": 1, "seed": seed},
                                data=f"esc50:{root}", out=str(out / f"run{seed}"), epochs=1,
                                learning_rate=3e-3, progress=False)
        runs.append(finetune(config).path)
    return runs


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """A small CNN fitted on the synthetic training folds, saved in probe's format."""
    return train_small_cnn(synthetic_root, tmp_path_factory.mktemp("clf"))


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path, trained_classifier: Path) -> list[Path]:
    """Two complete tiny finetune runs (one per AE start) behind the same small CNN."""
    return tiny_runs(synthetic_root, trained_classifier, tmp_path_factory.mktemp("runs"))


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from `self.server.files` (name -> bytes), honouring `Range: bytes=N-`."""

    def do_GET(self) -> None:  # noqa: N802
        files = self.server.files  # type: ignore[attr-defined]
        self.server.requests.append((self.path, self.headers.get("Range")))  # type: ignore[attr-defined]
        body = files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        delay = self.server.delay_s  # type: ignore[attr-defined]
        piece = 64 * 1024 if delay else len(body)
        try:
            for offset in range(start, len(body), piece):
                self.wfile.write(body[offset : offset + piece])
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-transfer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[http.server.ThreadingHTTPServer]:
    """A local HTTP server on 127.0.0.1: set `.files` (name -> bytes) and, to pace transfers, `.delay_s` per 64 kB."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files = {}  # type: ignore[attr-defined]
    httpd.requests = []  # type: ignore[attr-defined]
    httpd.delay_s = 0.0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
