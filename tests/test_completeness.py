"""Integrated gradients' steps chosen by completeness: exact where the method is exact, more steps where the path
integral bends, the bound kept, and nothing judged where the output does not move."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from probe.analyses import completeness
from probe.analyses.config import AttributionSettings
from probe.models.base import WaveformClassifier
from probe.models.frontend import MelConfig, MelFrontEnd

RATE = 16000
CPU = torch.device("cpu")


class MelNet(nn.Module):
    """Logits from each mel band's time mean, through tanh(`steepness` x) where `steepness` > 0: at 0, linear in the
    input (integrated gradients are then exact at any step count); the steeper, the more the path integral bends
    between silence and the clip, and the more steps its sum needs."""

    def __init__(self, steepness: float) -> None:
        super().__init__()
        self.steepness = steepness
        self.head = nn.Linear(32, 3)
        with torch.no_grad():
            self.head.weight.copy_(torch.linspace(-1, 1, 96).reshape(3, 32))
            self.head.bias.zero_()

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        features = mel[:, 0].mean(-1)  # (batch, mel bins)
        return self.head(torch.tanh(self.steepness * features) if self.steepness else features)


def _classifier(net: nn.Module) -> WaveformClassifier:
    config = MelConfig(sample_rate=RATE, n_mels=32, n_fft=512, win_length=400, hop_length=160, fmax_hz=7000)
    return WaveformClassifier("mel_net", MelFrontEnd(config), net, sample_rate=RATE, class_names=["a", "b", "c"]).freeze()


def _clips(n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    waveforms = np.random.default_rng(0).standard_normal((n, RATE // 4)).astype(np.float32) * 0.3
    return waveforms, np.arange(n) % 3


def test_a_linear_classifier_needs_the_fewest_steps() -> None:
    waveforms, targets = _clips()
    table = completeness.size_steps(_classifier(MelNet(0.0)), waveforms, targets, AttributionSettings(), CPU)
    assert completeness.chosen_steps(table) == completeness.STEP_LADDER[0]
    assert sorted(set(table.steps)) == [4, 8, 16]  # walked down from the start, every rung within the bound
    assert np.nanmax(table.relative_error) < 1e-4  # exact up to float rounding


def test_a_bent_path_climbs_the_ladder_until_the_bound_holds() -> None:
    waveforms, targets = _clips()
    classifier = _classifier(MelNet(8.0))
    errors = {steps: np.nanmedian(completeness.relative_completeness_errors(classifier, waveforms, targets, steps,
                                                                            AttributionSettings(), CPU))
              for steps in completeness.STEP_LADDER[:4]}
    assert errors[4] > 0.05  # four steps are not enough here: the test would not tell otherwise
    assert errors[4] > errors[8] > errors[16] > errors[32]
    settings = AttributionSettings(ig_max_error=0.05)
    table = completeness.size_steps(classifier, waveforms, targets, settings, CPU)
    chosen = completeness.chosen_steps(table)
    tried = sorted(set(table.steps))
    assert chosen == 32 and tried == [16, 32]  # the start fails the bound: up one rung, which holds
    assert np.nanmedian(table[table.chosen].relative_error) <= 0.05
    assert np.nanmedian(table[table.steps == 16].relative_error) > 0.05  # the rung below the choice does not hold
    summary = completeness.completeness_summary(table, settings)
    assert summary["steps"] == chosen and summary["sized"] and summary["within_bound"]
    assert summary["tried"] == tried and summary["clips"] == len(waveforms)


def test_fixed_steps_are_measured_not_chosen() -> None:
    waveforms, targets = _clips()
    settings = AttributionSettings(ig_steps=4)
    table = completeness.size_steps(_classifier(MelNet(8.0)), waveforms, targets, settings, CPU)
    assert set(table.steps) == {4} and table.chosen.all()
    summary = completeness.completeness_summary(table, settings)
    assert not summary["sized"] and summary["within_bound"] is False and summary["median_relative_error"] > 0.05


def test_an_output_that_silence_matches_has_no_error_to_judge() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(len(mel), 3) + 0 * mel.sum((1, 2, 3))[:, None]

    waveforms, targets = _clips(2)
    table = completeness.size_steps(_classifier(Constant()), waveforms, targets, AttributionSettings(), CPU)
    assert set(table.steps) == {completeness.START_STEPS} and table.relative_error.isna().all()
    summary = completeness.completeness_summary(table, AttributionSettings())
    assert summary["median_relative_error"] is None and summary["within_bound"] is None


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_a_bound_outside_zero_to_one_is_refused(bad: float) -> None:
    from probe.analyses.config import AnalyseConfig
    from probe.errors import ConfigError

    with pytest.raises(ConfigError, match="--ig-max-error"):
        AnalyseConfig(runs=("x",), attributions=AttributionSettings(ig_max_error=bad)).validate()


def _run(**attributions) -> SimpleNamespace:
    return SimpleNamespace(summary={"attributions": {"methods": ["integrated_gradients"], **attributions}})


def _steps(**changes) -> dict:
    return {"steps": 16, "sized": True, "clips": 2, "clips_judged": 2, "median_relative_error": 0.012,
            "max_relative_error": 0.05, "within_bound": True, "tried": [8, 16], **changes}


def test_the_page_says_how_the_steps_were_chosen_and_what_the_check_found() -> None:
    from probe.reports.findings import attribution_checks

    said = attribution_checks([_run(completeness=_steps(), randomisation_not_run="not run: turned off (--sanity-clips 0)")])
    assert "16 steps (chosen by completeness)" in said[0] and "1.2 % on 2 clips" in said[0]
    assert "approximate" not in said[0] and said[1] == "Randomisation check not run: turned off (--sanity-clips 0)."
    unmeasured = attribution_checks([_run(completeness=_steps(median_relative_error=None, within_bound=None,
                                                              clips_judged=0))])[0]
    assert "the default: the error cannot be measured" in unmeasured and "%" not in unmeasured
    fixed = attribution_checks([_run(completeness=_steps(steps=4, sized=False, median_relative_error=0.3,
                                                         within_bound=False))])[0]
    assert "fixed, not chosen by completeness" in fixed and "not met at the fixed 4 steps" in fixed and "approximate" in fixed
    check = {"passed": False, "max_similarity": 0.5, "clips": 8, "clips_constant": 8, "spearman_abs": float("nan"),
             "spearman_signed": float("nan"), "spearman_abs_high": float("nan"), "spearman_signed_high": float("nan")}
    passed = {**check, "passed": True, "clips_constant": 0, "spearman_abs": 0.1, "spearman_signed": 0.05,
              "spearman_abs_high": 0.2, "spearman_signed_high": 0.15}
    sentence = attribution_checks([_run(randomisation_check={"occlusion": check, "saliency": passed},
                                        randomisation_settings={"clips": 8, "stages": 4})])[0]
    assert "occlusion has no verdict" in sentence and "saliency passes" in sentence and "on 8 clips" in sentence


def test_the_first_clips_maps_are_the_walks_and_are_not_computed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integrated gradients without fixed steps: the walk's attributions at the steps it chose are the first clips'
    maps, so each of those clips goes through the chosen steps once; the maps equal those computed afresh."""
    from captum.attr import IntegratedGradients

    from probe.analyses import attribution

    waveforms, targets = _clips(5)
    classifier = _classifier(MelNet(8.0))
    settings = AttributionSettings(methods=("integrated_gradients",), completeness_clips=2)
    attributed: list[tuple[int, int]] = []  # (clips, steps) per call
    original = IntegratedGradients.attribute

    def counting(self, inputs, *args, **kwargs):
        attributed.append((len(inputs), kwargs["n_steps"]))
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(IntegratedGradients, "attribute", counting)
    maps = attribution.attribution_maps(classifier, waveforms, targets, "integrated_gradients", settings, CPU)
    calls = list(attributed)
    chosen = completeness.chosen_steps(completeness.size_steps(classifier, waveforms[:2], targets[:2], settings, CPU))
    assert chosen > completeness.START_STEPS  # the walk climbed: the maps' steps differ from the first rung's
    assert sum(clips for clips, steps in calls if steps == chosen) == 5  # the walk's 2 clips, then the other 3 alone
    fresh = attribution.attribution_maps(classifier, waveforms, targets, "integrated_gradients",
                                         completeness.with_steps(settings, chosen), CPU)
    np.testing.assert_allclose(maps, fresh, rtol=1e-4, atol=1e-7)
