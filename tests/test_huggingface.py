"""`hf:PATH_OR_REPO`: transformers audio classifiers behind probe's differentiable copies of their feature extractors.

The models are tiny ones built offline from a config with seeded weights and written with `save_pretrained`, the
format the hub serves: parity is against transformers' own feature extractor followed by the model.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from probe.errors import ConfigError
from probe.models.classifiers import load_classifier

transformers = pytest.importorskip("transformers")
SAMPLE_RATE = 16000


def save_ast(folder: Path, labels: list[str], max_length: int = 64, num_mel_bins: int = 32,
             multi_label: bool = False) -> Path:
    """A tiny AST with seeded weights, saved as the hub serves one (`multi_label`: sigmoid outputs, AudioSet-style)."""
    torch.manual_seed(0)
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=max_length,
        num_mel_bins=num_mel_bins, initializer_range=0.5, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else None)
    transformers.ASTForAudioClassification(config).save_pretrained(folder)
    transformers.ASTFeatureExtractor(num_mel_bins=num_mel_bins, max_length=max_length).save_pretrained(folder)
    return folder


def save_wav2vec2(folder: Path, num_labels: int = 5, attention_mask: bool = True) -> Path:
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        num_labels=num_labels, feat_extract_norm="layer", initializer_range=0.5)
    transformers.Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=attention_mask).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ast_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ast(tmp_path_factory.mktemp("hf") / "ast", ["dog", "rooster", "pig", "cow", "frog"])


@pytest.fixture(scope="module")
def wav2vec2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_wav2vec2(tmp_path_factory.mktemp("hf") / "wav2vec2")


def clips(lengths: tuple[int, ...] = (8000, 8000, 8000), seed: int = 0) -> list[np.ndarray]:
    """Noise with a tone at a different level per clip (the per-clip normalisations must differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(max(lengths)) / SAMPLE_RATE
    return [(0.05 * (i + 1) * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * (i + 1) * t[:n])).astype(np.float32)
            for i, n in enumerate(lengths)]


def reference_logits(folder: Path, waveforms: list[np.ndarray]) -> torch.Tensor:
    """What transformers itself gives: its feature extractor on numpy, then the model."""
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    model = transformers.AutoModelForAudioClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return torch.cat([model(**extractor(w, sampling_rate=SAMPLE_RATE, return_tensors="pt")).logits for w in waveforms])


@pytest.mark.parametrize("lengths", [(8000, 8000, 8000), (16000, 16000)], ids=["padded", "truncated"])
def test_ast_logits_equal_transformers_own_pipeline(ast_folder: Path, lengths: tuple[int, ...]) -> None:
    waveforms = clips(lengths)
    classifier = load_classifier(f"hf:{ast_folder}")
    ours = classifier(torch.from_numpy(np.stack(waveforms)))
    reference = reference_logits(ast_folder, waveforms)
    assert reference.abs().max() > 0.1  # logits big enough for the tolerance to mean something
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert classifier.sample_rate == SAMPLE_RATE and classifier.class_names == ["dog", "rooster", "pig", "cow", "frog"]
    # the network's input, held as a mel spectrogram: (B, 1, mel bins, max_length frames), with Kaldi's mel bands
    assert classifier.mel(torch.from_numpy(np.stack(waveforms))).shape == (len(lengths), 1, 32, 64)
    assert classifier.frontend.config.n_fft == 512 and classifier.frontend.config.hop_length == 160


@pytest.mark.parametrize("attention_mask", [True, False])
def test_wav2vec2_logits_equal_transformers_own_pipeline(tmp_path: Path, attention_mask: bool) -> None:
    folder = save_wav2vec2(tmp_path / "w2v", attention_mask=attention_mask)
    waveforms = clips()
    classifier = load_classifier(f"hf:{folder}")
    ours = classifier(torch.from_numpy(np.stack(waveforms)))
    reference = reference_logits(folder, waveforms)
    assert reference.abs().max() > 0.1
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert classifier.class_names == [f"LABEL_{i}" for i in range(5)]
    assert classifier.min_samples == 10 + (8 - 1) * 5  # the convolutions' receptive field


@pytest.mark.parametrize("family", ["ast", "wav2vec2"])
def test_gradients_reach_the_waveform_and_not_the_frozen_weights(family: str, ast_folder: Path,
                                                                 wav2vec2_folder: Path) -> None:
    classifier = load_classifier(f"hf:{ast_folder if family == 'ast' else wav2vec2_folder}")
    classifier.train()  # pinned in eval mode: dropout stays off
    waveform = torch.from_numpy(np.stack(clips())).requires_grad_()
    first, second = classifier(waveform), classifier(waveform)
    torch.testing.assert_close(first, second)
    first[:, 0].sum().backward()
    assert torch.isfinite(waveform.grad).all() and (waveform.grad.abs().sum(-1) > 0).all()
    assert not any(p.requires_grad or p.grad is not None for p in classifier.parameters())
    assert not classifier.training and not classifier.net.training


def test_outputs_follow_the_data_class_order(ast_folder: Path) -> None:
    x = torch.from_numpy(np.stack(clips()))
    model_order = load_classifier(f"hf:{ast_folder}")
    # the model's names (dog, rooster, pig, cow, frog) in another order, one in other case: a 3-cycle and a swap, so
    # that an inverted permutation would not pass
    data_names = ["pig", "Dog", "rooster", "frog", "cow"]
    reordered = load_classifier(f"hf:{ast_folder}", num_classes=5, class_names=data_names)
    assert reordered.class_names == data_names
    torch.testing.assert_close(reordered(x), model_order(x)[:, [2, 0, 1, 4, 3]])


def test_errors_are_one_line_config_errors(ast_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has 5 outputs but the data has 50 classes"):
        load_classifier(f"hf:{ast_folder}", num_classes=50)
    with pytest.raises(ConfigError, match="no such folder") as missing:
        load_classifier(f"hf:{tmp_path / 'nothing-here'}")
    assert "\n" not in str(missing.value) and "nothing-here" in str(missing.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot load the Hugging Face classifier") as unreadable:
        load_classifier(f"hf:{broken}")
    assert "\n" not in str(unreadable.value)
    other = tmp_path / "speech2text"
    shutil.copytree(ast_folder, other)
    transformers.Speech2TextFeatureExtractor().save_pretrained(other)
    with pytest.raises(ConfigError, match="Speech2TextFeatureExtractor has no differentiable front-end here; "
                                          "supported: ASTFeatureExtractor, Wav2Vec2FeatureExtractor, "
                                          "WhisperFeatureExtractor"):
        load_classifier(f"hf:{other}")


def test_a_saved_probe_checkpoint_loads_back_into_the_same_model(ast_folder: Path, tmp_path: Path) -> None:
    from probe.models.classifiers import save_classifier

    classifier = load_classifier(f"hf:{ast_folder}")
    path = save_classifier(classifier, tmp_path / "ast.pt")
    with torch.no_grad():
        for parameter in classifier.net.parameters():
            parameter.add_(0.01)  # the checkpoint, not the folder, must decide the weights
    save_classifier(classifier, tmp_path / "shifted.pt")
    x = torch.from_numpy(np.stack(clips()))
    torch.testing.assert_close(load_classifier(f"hf:{ast_folder}", weights=tmp_path / "shifted.pt")(x), classifier(x))
    torch.testing.assert_close(load_classifier(f"hf:{ast_folder}", weights=path)(x), load_classifier(f"hf:{ast_folder}")(x))


def test_waveform_attributions_are_time_frequency_maps(wav2vec2_folder: Path) -> None:
    from probe.analyses.attribution import attribution_maps
    from probe.analyses.bands import band_sets_for
    from probe.analyses.config import AttributionSettings
    from probe.models.inspection import InspectionConfig

    classifier = load_classifier(f"hf:{wav2vec2_folder}")
    waveforms = np.stack(clips())
    maps = attribution_maps(classifier, waveforms, np.array([0, 1, 2]), "saliency", AttributionSettings(),
                            torch.device("cpu"))
    inspection = InspectionConfig.for_rate(SAMPLE_RATE)
    assert maps.shape == (3, inspection.n_fft // 2 + 1, 8000 // inspection.hop_length + 1)  # through the STFT layer
    np.testing.assert_allclose(maps.sum((1, 2)), 1.0, rtol=1e-5)
    (bands,) = band_sets_for(("mel",), SAMPLE_RATE, classifier)  # its input bands: the layer's linear bins
    assert len(bands) == maps.shape[1] and bands.high_hz[-1] == SAMPLE_RATE / 2


def save_whisper(folder: Path, labels: list[str], num_mel_bins: int = 80, chunk_seconds: int = 1) -> Path:
    """A tiny Whisper audio classifier with seeded weights; its extractor pads to `chunk_seconds` (Whisper's is 30 s:
    the encoder takes exactly the frames of one chunk, twice its position count)."""
    torch.manual_seed(0)
    frames = chunk_seconds * SAMPLE_RATE // 160
    config = transformers.WhisperConfig(
        num_mel_bins=num_mel_bins, d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, max_source_positions=frames // 2,
        classifier_proj_size=16, init_std=0.5, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    transformers.WhisperForAudioClassification(config).save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=num_mel_bins, chunk_length=chunk_seconds).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("num_mel_bins", [80, 128])
@pytest.mark.parametrize("lengths", [(8000, 8000, 8000), (24000, 24000)], ids=["padded", "truncated"])
def test_whisper_logits_equal_transformers_own_pipeline(tmp_path: Path, num_mel_bins: int,
                                                        lengths: tuple[int, ...]) -> None:
    folder = save_whisper(tmp_path / "whisper", ["speech", "music", "noise"], num_mel_bins)
    waveforms = clips(lengths)
    classifier = load_classifier(f"hf:{folder}")
    ours = classifier(torch.from_numpy(np.stack(waveforms)))
    reference = reference_logits(folder, waveforms)
    assert reference.abs().max() > 0.1
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert classifier.class_names == ["speech", "music", "noise"]
    assert classifier.mel(torch.from_numpy(np.stack(waveforms))).shape == (len(lengths), 1, num_mel_bins, 100)
    x = torch.from_numpy(np.stack(waveforms)).requires_grad_()
    classifier(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable, as the probes need


def test_whisper_mel_bands_are_its_own_filters(tmp_path: Path) -> None:
    from probe.analyses.bands import band_sets_for

    classifier = load_classifier(f"hf:{save_whisper(tmp_path / 'whisper', ['a', 'b'])}")
    (bands,) = band_sets_for(("mel",), SAMPLE_RATE, classifier)
    assert len(bands) == 80 and bands.low_hz[0] == 0.0 and 7000 < bands.high_hz[-1] <= 8000
    assert np.all(np.diff(bands.centre_hz) >= 0)


def cli(capsys: pytest.CaptureFixture, *args: str) -> str:
    """`probe ARGS` in this process (the models are tiny: a subprocess would cost more than the command); its stdout."""
    from probe.app.cli import main

    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.mark.integration
def test_a_tiny_ast_goes_through_finetune_analyse_and_report(synthetic_root: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, capsys, caplog) -> None:
    """The README's command with a folder given relative to the working directory; the analyses run elsewhere."""
    from probe.data import load_esc50

    names = list(load_esc50(synthetic_root).class_names)
    save_ast(tmp_path / "models" / "my-ast", names)
    run, analysis, report = tmp_path / "run", tmp_path / "analysis", tmp_path / "report"
    monkeypatch.chdir(tmp_path)
    cli(capsys, "finetune", "--classifier", "hf:models/my-ast", "--autoencoder", "tiny", "--ae-option",
        "sample_rate=16000", "--ae-option", "channels=1", "--data", f"esc50:{synthetic_root}", "--epochs", "2",
        "--out", str(run), "--device", "cpu", "--quiet")
    assert "differ from the data's class names" not in caplog.text
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["classifier"] == f"hf:{tmp_path / 'models' / 'my-ast'}"
    assert stored["provenance"]["inputs"]["classifier_source"]["sha256"]
    assert stored["provenance"]["versions"]["transformers"] == transformers.__version__

    monkeypatch.chdir(sys.prefix)  # the run finds its classifier from anywhere
    cli(capsys, "analyse", str(run), "--out", str(analysis), "--methods", "saliency", "--bootstrap", "100",
        "--no-transfer", "--device", "cpu", "--quiet")
    folder = analysis / "my-ast--tiny@16kHz"
    mass = pd.read_parquet(folder / "attribution_band_mass.parquet")
    assert mass.mel_bin.nunique() == 32  # on the fbank the AST reads
    bands = pd.read_parquet(folder / "band_shift_overall.parquet")
    assert (bands.band_set == "mel").sum() and bands.classifier.eq("my-ast").all()

    monkeypatch.chdir(tmp_path)
    cli(capsys, "report", str(analysis), "--out", str(report), "--quiet")
    page = (report / "my-ast" / "index.html").read_text()
    assert "my-ast" in page and "<audio" in page
    compared = tmp_path / "compared"
    cli(capsys, "compare", str(synthetic_root / "audio"), str(synthetic_root / "audio"), "--out", str(compared),
        "--classifier", "hf:models/my-ast", "--quiet")
    assert (compared / "audio" / "accuracy_overall.parquet").is_file()
    predicted = cli(capsys, "predict", "--classifier", "hf:models/my-ast", str(next((synthetic_root / "audio").iterdir())))
    assert predicted.splitlines()[0].endswith(",".join(f"logit_{name}" for name in names))


def test_the_mel_bands_of_a_full_size_ast_front_end(tmp_path: Path) -> None:
    """AST's 128 Kaldi bands on a 512-point FFT at 16 kHz: the lowest are narrower than an FFT bin (found at real
    scale), and still get edges, in order, from the mel scale itself."""
    from probe.analyses.bands import classifier_mel_bands

    classifier = load_classifier(f"hf:{save_ast(tmp_path / 'ast', ['a', 'b'], num_mel_bins=128)}")
    bands = classifier_mel_bands(SAMPLE_RATE, classifier)
    assert len(bands.labels) == 128
    assert (np.diff(bands.centre_hz) > 0).all() and (bands.low_hz < bands.centre_hz).all()
    assert (bands.centre_hz < bands.high_hz).all() and bands.low_hz[0] >= 20 and bands.high_hz[-1] <= SAMPLE_RATE / 2


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubHandler(http.server.BaseHTTPRequestHandler):
    """The part of the Hugging Face hub's protocol that `from_pretrained` uses: HEAD and GET of
    `/{repo}/resolve/{revision}/{file}` with the commit and ETag headers, and the error codes of a missing file or repo.
    `self.server.repos` maps a repo id to its files (name -> bytes)."""

    def _answer(self, with_body: bool) -> None:
        self.server.requests.append((self.command, self.path))  # type: ignore[attr-defined]
        parts = self.path.split("?")[0].strip("/").split("/")
        files = self.server.repos.get("/".join(parts[:2])) if len(parts) >= 5 and parts[2] == "resolve" else None  # type: ignore[attr-defined]
        body = files.get("/".join(parts[4:])) if files is not None else None
        self.send_response(200 if body is not None else 404)
        if body is None:
            self.send_header("X-Error-Code", "EntryNotFound" if files is not None else "RepoNotFound")
        self.send_header("X-Repo-Commit", HUB_COMMIT)
        if body is not None:
            self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if with_body and body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(True)

    def log_message(self, *args: object) -> None:
        pass


def probe_with_hub(endpoint: str, home: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    """`probe ARGS` in a new process: huggingface_hub reads its endpoint and cache from the environment at import."""
    ours = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_")  # the caller's cache, offline switches and endpoint stay out
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(ours) and not key.lower().endswith("_proxy")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", PYTHONWARNINGS="ignore",
               NO_PROXY="127.0.0.1,localhost", **({"HF_HUB_OFFLINE": "1"} if offline else {}))
    return subprocess.run([sys.executable, "-m", "probe.app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.integration
def test_a_hub_id_is_fetched_once_into_the_cache_and_then_loads_offline(ast_folder: Path, tmp_path: Path,
                                                                         capsys) -> None:
    """The real download path (transformers' `from_pretrained` and huggingface_hub) against a local hub."""
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    hub.repos = {"acme/tiny-ast": {p.name: p.read_bytes() for p in ast_folder.iterdir() if p.is_file()}}  # type: ignore[attr-defined]
    hub.requests = []  # type: ignore[attr-defined]
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    endpoint, home = f"http://127.0.0.1:{hub.server_port}", tmp_path / "hf-home"
    clip = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(clip, clips((16000,))[0], SAMPLE_RATE)
    expected = cli(capsys, "predict", "--classifier", f"hf:{ast_folder}", str(clip))
    try:
        pinned = ["--classifier-option", "revision=v1"]  # passed on to both from_pretrained calls
        fetched = probe_with_hub(endpoint, home, "predict", "--classifier", "hf:acme/tiny-ast", *pinned, str(clip))
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        assert fetched.stdout.splitlines() == expected.splitlines()  # the same weights, the same logits
        assert fetched.stderr.count("fetching acme/tiny-ast from the Hugging Face hub") == 1, fetched.stderr
        assert ("GET", "/acme/tiny-ast/resolve/v1/model.safetensors") in hub.requests  # type: ignore[attr-defined]

        missing = probe_with_hub(endpoint, home, "predict", "--classifier", "hf:acme/no-such-model", str(clip))
        lines = missing.stderr.strip().splitlines()
        assert missing.returncode == 2 and lines[-1].startswith("probe: error: hf:acme/no-such-model: the Hugging "
                                                                "Face hub has no such model"), missing.stderr
    finally:
        hub.shutdown()
        hub.server_close()
    cached = probe_with_hub(endpoint, home, "predict", "--classifier", "hf:acme/tiny-ast", "--classifier-option",
                            "revision=v1", str(clip), offline=True)
    assert cached.returncode == 0 and cached.stdout.splitlines() == expected.splitlines(), cached.stderr[-2000:]
    assert "fetching" not in cached.stderr


def test_a_hub_id_that_cannot_be_fetched_fails_in_seconds_naming_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer from the hub (a refused connection, as offline) is a runtime failure, exit 3, within seconds (not
    after transformers' minute of retries); a hub that answers it has no such model makes it a bad input, exit 2;
    with HF_HUB_OFFLINE set and the id not cached, the hub is not asked at all."""
    import time

    closed = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    nowhere = f"http://127.0.0.1:{closed.server_address[1]}"
    closed.server_close()
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"not read: the classifier fails first")
    started = time.monotonic()
    unreachable = probe_with_hub(nowhere, tmp_path / "hf-home", "predict", "--classifier", "hf:acme/tiny-ast", str(clip))
    assert time.monotonic() - started < 30, "the hub's retries are back"
    assert unreachable.returncode == 3, unreachable.stderr
    assert unreachable.stderr.strip().splitlines() == [
        "probe: error: hf:acme/tiny-ast: the Hugging Face hub could not be reached or has no such model (offline or "
        "unknown id): [Errno 111] Connection refused"]
    from huggingface_hub import constants

    from probe.errors import RuntimeFailure

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeFailure, match=r"hf:acme/not-cached: .*\(offline or unknown id\): .*HF_HUB_OFFLINE"):
        load_classifier("hf:acme/not-cached")
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    hub.repos, hub.requests = {}, []  # type: ignore[attr-defined]
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        unknown = probe_with_hub(f"http://127.0.0.1:{hub.server_port}", tmp_path / "hf-home", "predict", "--classifier",
                                 "hf:acme/no-such-model", str(clip))
    finally:
        hub.shutdown()
        hub.server_close()
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines()[-1].startswith(
        "probe: error: hf:acme/no-such-model: the Hugging Face hub has no such model"), unknown.stderr
