"""The cascading randomisation check (Adebayo et al. 2018): it covers every parameter from the output backwards,
it fails for a map that ignores the weights, it passes for the gradients of a trained CNN, and it draws from no
global generator."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from probe.analyses import attribution, randomisation
from probe.analyses.config import AttributionSettings
from probe.models import load_classifier

CPU = torch.device("cpu")
SETTINGS = AttributionSettings(randomisation_stages=4)


class WithRawParameter(nn.Module):
    """A raw parameter held directly on a module that also has children (as PaSST's position embeddings)."""

    def __init__(self) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, 4))
        self.first = nn.Linear(4, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.LayerNorm(4))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.first(x + self.position)))


def test_every_parameter_is_in_one_layer_and_the_layers_run_from_the_output() -> None:
    net = WithRawParameter()
    layers = randomisation.parameter_layers(net)
    listed = [id(p) for _, parameters in layers for p in parameters]
    assert sorted(listed) == sorted(id(p) for p in net.parameters()) and len(set(listed)) == len(listed)
    assert [name for name, _ in layers] == ["head", "block.2", "block.0", "first", "(net)"]
    assert layers[-1][1] == [net.position]


def test_redrawing_keeps_shapes_and_follows_the_generator_alone() -> None:
    first, second = WithRawParameter(), WithRawParameter()
    second.load_state_dict(first.state_dict())
    for net in (first, second):
        randomisation.redraw_(list(net.parameters()), torch.Generator().manual_seed(5))
    for a, b in zip(first.parameters(), second.parameters()):
        assert a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    assert first.position.abs().sum() > 0  # a constant (zero) tensor gets FALLBACK_STD, not its own std of 0


@pytest.fixture(scope="module")
def held_out_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Ten fresh synthetic clips (seed 1) from the classes the trained CNN knows; it never saw them."""
    from probe.cache import decode_split
    from probe.data import load_esc50
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset

    config = SyntheticConfig(classes_per_category=1, clips_per_class=2, clip_seconds=0.5, seed=1)
    split = decode_split(load_esc50(write_synthetic_dataset(tmp_path_factory.mktemp("held_out") / "data", config)),
                         16000, progress=False)
    return split.as_tensor().numpy(), split.targets


@pytest.fixture
def input_itself() -> Iterator[str]:
    """A test-only "attribution" that ignores the weights: the input mel itself."""
    name = "input_itself"
    attribution.register_method(name)(lambda forward, mel, baseline, targets, settings, max_batch: mel)
    try:
        yield name
    finally:
        del attribution.ATTRIBUTION_METHODS[name]


def _check(classifier: Path | torch.nn.Module, clips: tuple[np.ndarray, np.ndarray], methods: list[str]):
    if isinstance(classifier, Path):
        classifier = load_classifier("small_cnn", weights=classifier).eval()
    waveforms, targets = clips
    return randomisation.cascading_randomisation(classifier, waveforms, targets, methods, SETTINGS, CPU, seed=11)


def test_the_check_fails_for_a_map_that_ignores_the_weights(trained_classifier: Path, held_out_clips,
                                                             input_itself: str) -> None:
    table = _check(trained_classifier, held_out_clips, [input_itself])
    final = table[table.stage == table.stage.max()].set_index("maps")
    print(table[["stage", "layers_randomised", "fraction_of_parameters", "maps", "spearman"]])
    assert (final.fraction_of_parameters == 1).all() and (final.clips == len(held_out_clips[1])).all()
    assert (final.clips_constant == 0).all() and (final.spearman > 0.99).all() and set(final.index) == {"absolute", "signed"}
    assert not table.passed.any()
    summary = randomisation.randomisation_summary(table)[input_itself]
    assert not summary["passed"] and summary["max_similarity"] == randomisation.MAX_SIMILARITY


def test_the_check_passes_for_the_gradients_of_a_trained_cnn(trained_classifier: Path, held_out_clips) -> None:
    table = _check(trained_classifier, held_out_clips, ["saliency"])
    print(table[["stage", "layers_randomised", "fraction_of_parameters", "maps", "spearman", "ci_high"]])
    assert list(table.stage) == [1, 1, 2, 2, 3, 3, 4, 4] and table.layers_randomised.is_monotonic_increasing
    assert table.fraction_of_parameters.is_monotonic_increasing and table.fraction_of_parameters.iloc[-1] == 1
    final = table[table.stage == 4]
    assert (final.clips == len(held_out_clips[1])).all() and (final.clips_constant == 0).all()
    assert (final.ci_high < randomisation.MAX_SIMILARITY).all() and set(final.maps) == {"absolute", "signed"}
    assert table.passed.all()
    summary = randomisation.randomisation_summary(table)["saliency"]
    assert summary["passed"] and summary["spearman_signed_high"] == final.set_index("maps").ci_high["signed"]
    assert [s["stage"] for s in summary["stages"]] == [1, 2, 3, 4]


def test_the_check_draws_from_no_global_generator(trained_classifier: Path, held_out_clips) -> None:
    classifier = load_classifier("small_cnn", weights=trained_classifier).eval()  # building it draws its init
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    first = _check(classifier, held_out_clips, ["gradient_shap"])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    again = _check(classifier, held_out_clips, ["gradient_shap"])
    assert first.equals(again)  # the seed alone fixes the draws, and the classifier itself stays as it was
