"""The study's chain: shapes, gradients into the autoencoder only, and the frozen contract."""
from __future__ import annotations

import pytest
import torch

from probe.models import load_classifier
from probe.probes import load_autoencoder
from probe.pipeline import FrozenContractError, ProbePipeline


def _pipeline(classifier_rate: int = 16000, ae_rate: int = 24000) -> ProbePipeline:
    classifier = load_classifier("small_cnn", num_classes=4, sample_rate=classifier_rate)
    return ProbePipeline(load_autoencoder("tiny", sample_rate=ae_rate), classifier)


def test_chain_shapes_and_rates() -> None:
    pipeline = _pipeline()
    x = torch.randn(3, 8000) * 0.1
    reconstruction = pipeline.reconstruct(x)
    assert reconstruction.shape == x.shape
    assert pipeline(x).shape == (3, 4)
    assert pipeline.sample_rate == 16000


def test_identity_pipeline_equals_the_bare_classifier() -> None:
    classifier = load_classifier("small_cnn", num_classes=4)
    x = torch.randn(2, 8000)
    torch.testing.assert_close(ProbePipeline(None, classifier)(x), classifier(x))


@pytest.mark.integration
def test_only_the_autoencoder_learns_and_batchnorm_stats_do_not_move() -> None:
    pipeline = _pipeline()
    before = {k: v.clone() for k, v in pipeline.classifier.state_dict().items()}
    ae_before = {k: v.clone() for k, v in pipeline.autoencoder.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in pipeline.parameters() if p.requires_grad], lr=1e-3)
    pipeline.train()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(pipeline(torch.randn(4, 8000)), torch.tensor([0, 1, 2, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for key, value in pipeline.classifier.state_dict().items():
        assert torch.equal(value, before[key]), f"classifier {key} changed"
    assert any(not torch.equal(v, ae_before[k]) for k, v in pipeline.autoencoder.state_dict().items())
    assert not pipeline.classifier.training and pipeline.autoencoder.training


def test_the_frozen_contract_is_checked() -> None:
    pipeline = _pipeline()
    next(pipeline.classifier.parameters()).requires_grad_(True)
    with pytest.raises(FrozenContractError, match="require grad"):
        pipeline(torch.randn(1, 8000))
    pipeline = _pipeline()
    torch.nn.Module.train(pipeline.classifier.net, True)  # bypass the wrapper's pin
    with pytest.raises(FrozenContractError, match="train mode"):
        pipeline(torch.randn(1, 8000))


def test_study_rates_32k_to_48k_stereo() -> None:
    classifier = load_classifier("small_cnn", num_classes=2)
    pipeline = ProbePipeline(load_autoencoder("tiny"), classifier)
    assert pipeline.autoencoder.sample_rate == 48000 and pipeline.autoencoder.channels == 2
    x = torch.randn(1, 3200)
    assert pipeline.reconstruct(x).shape == (1, 3200)
