"""The model zoo: published checkpoint formats, strict loading, parity with upstream packages."""
from __future__ import annotations

import contextlib
import io
import pickle
import sys
from pathlib import Path

import pytest
import torch

from probe.errors import CheckpointError, ConfigError
from probe.models import load_classifier, save_classifier
from probe.probes import load_autoencoder
from probe.zoo import model_specs
from probe.models.base import WaveformClassifier

FAST_CLASSIFIERS = [pytest.param(s.name, marks=pytest.mark.integration) if s.name.startswith("dymn10_") else s.name
                    for s in model_specs("classifier") if s.name != "passt"]
"""The DyMN ablations build slowly: their round trips run with the slow tests."""


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Seeded random weights and BatchNorm statistics, so a round trip is not trivially zeros."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                noise = torch.randn(tensor.shape, generator=generator) * 0.05
                tensor.copy_(noise.abs() + 0.5 if name.endswith("running_var") else tensor + noise)


@pytest.mark.parametrize("name", FAST_CLASSIFIERS)
def test_classifier_state_dict_round_trip(name: str, tmp_path: Path) -> None:
    source = load_classifier(name)
    _randomise(source.net)
    if hasattr(source.net, "set_temperature"):
        source.net.set_temperature(1.0)  # what a DyMN loaded from a trained checkpoint runs at
    published = tmp_path / f"{name}.pt"
    torch.save(source.net.state_dict(), published)  # the published format: the network's plain state_dict
    loaded = load_classifier(name, weights=published)
    x = torch.randn(2, 16000) * 0.1
    torch.testing.assert_close(loaded(x), source(x))
    ours = save_classifier(loaded, tmp_path / f"{name}-probe.pt")
    torch.testing.assert_close(load_classifier(name, weights=ours)(x), source(x))


@pytest.mark.parametrize(
    "name,keys,first,last,millions",
    [("mn10", 312, "features.0.0.weight", "classifier.5.bias", 4.27), ("dymn10", 578, "in_c.0.weight", "classifier.5.bias", 9.94)],
)
def test_efficientat_checkpoint_layout(name: str, keys: int, first: str, last: str, millions: float) -> None:
    net = load_classifier(name).net
    state = net.state_dict()
    assert len(state) == keys
    assert next(iter(state)) == first and list(state)[-1] == last
    assert abs(sum(p.numel() for p in net.parameters()) / 1e6 - millions) < 0.01
    assert all(m.eps == 0.001 and m.momentum == 0.01 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_dymn_temperature_follows_upstream() -> None:
    from probe.models.dymn import DynamicConv

    def temperatures(classifier: WaveformClassifier) -> set[float]:
        return {m.temperature for m in classifier.modules() if isinstance(m, DynamicConv)}

    assert temperatures(load_classifier("dymn10")) == {30.0}
    assert temperatures(load_classifier("dymn10", temperature=1.0)) == {1.0}


def test_dymn_trained_checkpoint_runs_at_temperature_one(tmp_path: Path) -> None:
    from probe.models.dymn import DynamicConv

    torch.save(load_classifier("dymn10").net.state_dict(), tmp_path / "d.pt")
    loaded = load_classifier("dymn10", weights=tmp_path / "d.pt")
    assert {m.temperature for m in loaded.modules() if isinstance(m, DynamicConv)} == {1.0}


@pytest.mark.integration
def test_passt_matches_hear21passt(tmp_path: Path) -> None:
    from hear21passt.base import get_model_passt
    from hear21passt.models.preprocess import AugmentMelSTFT
    from hear21passt.wrapper import PasstBasicWrapper

    with contextlib.redirect_stdout(io.StringIO()):
        mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                             htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)
        net = get_model_passt(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=50)
    reference = PasstBasicWrapper(mel=mel, net=net, mode="logits").eval()
    state = reference.net.state_dict()
    assert len(state) == 159 and tuple(state["time_new_pos_embed"].shape) == (1, 768, 1, 99)
    torch.save(state, tmp_path / "passt.pt")
    ours = load_classifier("passt", weights=tmp_path / "passt.pt")
    x = torch.randn(2, 32000 * 3) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-4, rtol=1e-4)
    assert ours.num_classes == 50 and ours.class_names[0] == "dog"


def test_frozen_classifier_stays_in_eval() -> None:
    classifier = load_classifier("small_cnn", num_classes=5)
    assert not any(p.requires_grad for p in classifier.parameters())
    classifier.train()
    assert not any(m.training for m in classifier.modules())
    trainable = load_classifier("small_cnn", num_classes=5, frozen=False)
    assert all(p.requires_grad for p in trainable.parameters())
    assert trainable.train().net.training


def test_new_head_keeps_the_body(tmp_path: Path) -> None:
    audioset = load_classifier("mn10", num_classes=527)
    _randomise(audioset.net)
    torch.save(audioset.net.state_dict(), tmp_path / "as.pt")
    reloaded = load_classifier("mn10", weights=tmp_path / "as.pt")
    assert reloaded.num_classes == 527
    # An AudioSet-format checkpoint names its outputs with AudioSet's labels (class_labels_indices.csv order).
    assert reloaded.class_names[0] == "Speech" and reloaded.class_names[137] == "Music"
    assert reloaded.class_names[526] == "Field recording" and len(set(reloaded.class_names)) == 527
    esc = load_classifier("mn10", weights=tmp_path / "as.pt", num_classes=50)
    assert esc.num_classes == 50
    torch.testing.assert_close(esc.net.features[3].block[0][0].weight, audioset.net.features[3].block[0][0].weight)


def test_bad_checkpoints_get_clear_errors(tmp_path: Path) -> None:
    state = load_classifier("small_cnn", num_classes=5).net.state_dict()
    wrong_keys = dict(state)
    wrong_keys["surprise.weight"] = wrong_keys.pop("head.weight")
    torch.save(wrong_keys, tmp_path / "keys.pt")
    with pytest.raises(CheckpointError, match=r"1 missing keys: head\.weight; 1 unexpected keys: surprise\.weight"):
        load_classifier("small_cnn", weights=tmp_path / "keys.pt", num_classes=5)
    wrong_shape = dict(state)
    wrong_shape["features.0.weight"] = torch.zeros(3, 3)
    torch.save(wrong_shape, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"wrong shapes: features\.0\.weight \(3, 3\)"):
        load_classifier("small_cnn", weights=tmp_path / "shape.pt", num_classes=5)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_classifier("small_cnn", weights=tmp_path / "empty.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_classifier("small_cnn", weights=tmp_path / "corrupt.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_classifier("small_cnn", weights=tmp_path / "absent.pt")


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickled_code_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"state_dict": _Exploit()}, handle)
    with pytest.raises(CheckpointError):
        load_classifier("small_cnn", weights=tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="known: .*mn10"):
        load_classifier("resnet9000")


def test_user_factory_classifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    sample_rate = 16000\n"
        "    def __init__(self, num_classes):\n"
        "        super().__init__(); self.linear = torch.nn.Linear(1, num_classes)\n"
        "    def forward(self, x):\n"
        "        return self.linear(x.pow(2).mean(-1, keepdim=True))\n"
        "def factory(num_classes):\n"
        "    return Net(num_classes)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    classifier = load_classifier("my_models:factory", num_classes=3)
    assert classifier.sample_rate == 16000 and classifier(torch.randn(2, 800)).shape == (2, 3)
    assert not any(p.requires_grad for p in classifier.parameters())
    sys.modules.pop("my_models", None)


def test_archisound_layout_and_hub_checkpoint(tmp_path: Path) -> None:
    from audio_encoders_pytorch import AutoEncoder1d, TanhBottleneck

    upstream = AutoEncoder1d(in_channels=2, patch_size=4, channels=32, multipliers=[1, 2, 4, 8, 8, 8, 1],
                             factors=[2, 2, 2, 1, 1, 1], num_blocks=[2, 2, 8, 8, 8, 8], bottleneck=TanhBottleneck()).eval()
    hub_state = {f"autoencoder.{k}": v for k, v in upstream.state_dict().items()}
    assert len(hub_state) == 620
    torch.save(hub_state, tmp_path / "pytorch_model.bin")
    ours = load_autoencoder("archisound", weights=tmp_path / "pytorch_model.bin")
    assert abs(sum(p.numel() for p in ours.parameters()) / 1e6 - 20.77) < 0.01
    x = torch.randn(1, 2, 3200) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), upstream(x))
        latent = ours.encode(x)
    assert latent.shape == (1, 32, 100) and latent.abs().max() <= 1
    torch.save(upstream.state_dict(), tmp_path / "bare.pt")  # a bare AutoEncoder1d state_dict loads too
    with torch.no_grad():
        torch.testing.assert_close(load_autoencoder("archisound", weights=tmp_path / "bare.pt")(x), upstream(x))


def test_autoencoder_round_trip_and_odd_lengths(tmp_path: Path) -> None:
    model = load_autoencoder("tiny", seed=3)
    torch.save(model.checkpoint(), tmp_path / "ae.pt")
    loaded = load_autoencoder(str(tmp_path / "ae.pt"))
    x = torch.randn(2, 2, 1001)
    with torch.no_grad():
        assert loaded(x).shape == x.shape
        torch.testing.assert_close(loaded(x), model(x))
    wide = load_autoencoder("tiny", seed=3, width=16, channels=1, sample_rate=16000)  # the demo's tiny AE
    assert wide.config.channels == 16 and wide.channels == 1
    torch.save(wide.checkpoint(), tmp_path / "wide.pt")
    mono = torch.randn(1, 1, 999)
    with torch.no_grad():
        torch.testing.assert_close(load_autoencoder(str(tmp_path / "wide.pt"))(mono), wide(mono))


def test_random_autoencoder_is_seeded() -> None:
    first, again, other = (load_autoencoder("tiny", seed=s).state_dict() for s in (1, 1, 2))
    key = "autoencoder.encoder.to_in.block.block1.project.weight"
    torch.testing.assert_close(first[key], again[key])
    assert not torch.allclose(first[key], other[key])


def test_registry_metadata_is_complete() -> None:
    for spec in model_specs():
        assert (spec.sample_rate > 0 or "classifier's rate" in spec.description) and spec.description
        for source in spec.weights:
            assert source.url.startswith("https://") and source.filename and "/" not in source.filename
            assert source.sha256 is None or len(source.sha256) == 64
