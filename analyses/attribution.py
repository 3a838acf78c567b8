"""Attribution maps on the classifier's mel input (captum), their mass per band, and a sanity check.

Every method is a registry entry mapping (forward, mel batch, baseline, targets) to attributions
shaped like the input. Maps are taken as absolute values and normalised to unit mass per clip,
so methods and clips compare on the same scale.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from probe.models.classifiers import WaveformClassifier
from probe.registries import Registry

AttributionMethod = Callable[[Callable, torch.Tensor, torch.Tensor, torch.Tensor, "AttributionSettings"], torch.Tensor]
ATTRIBUTION_METHODS: Registry[AttributionMethod] = Registry("attribution method")
register_method = ATTRIBUTION_METHODS.register


@dataclass(frozen=True)
class AttributionSettings:
    methods: tuple[str, ...] = ("integrated_gradients", "saliency", "gradient_shap", "occlusion")
    max_clips: int | None = None
    """Attribute at most this many validation clips, spread over the classes; default 64 on a GPU, 16 on a CPU."""
    batch_size: int = 8
    ig_steps: int = 16
    shap_samples: int = 8
    occlusion_patch: tuple[int, int] = (16, 50)
    """Occluded (mel bins, frames) per patch; the stride equals the patch."""
    conditions: tuple[str, ...] = ("original", "after")
    """Attribute the originals (always) and, by default, the finetuned reconstructions too."""
    sanity_clips: int = 8
    max_frames: int = 100
    seed: int = 0


@register_method("integrated_gradients")
def integrated_gradients(forward, mel, baseline, targets, settings):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(forward).attribute(mel, baselines=baseline, target=targets, n_steps=settings.ig_steps,
                                                  internal_batch_size=len(mel) * settings.ig_steps)


@register_method("saliency")
def saliency(forward, mel, baseline, targets, settings):
    from captum.attr import Saliency

    return Saliency(forward).attribute(mel, target=targets, abs=True)


@register_method("gradient_shap")
def gradient_shap(forward, mel, baseline, targets, settings):
    from captum.attr import GradientShap

    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    noise = torch.randn((4, *mel.shape[1:]), generator=generator).to(mel.device) * 0.1
    baselines = baseline[:1] + noise  # a small distribution around silence
    return GradientShap(forward).attribute(mel, baselines=baselines, target=targets, n_samples=settings.shap_samples,
                                           stdevs=0.05)


@register_method("occlusion")
def occlusion(forward, mel, baseline, targets, settings):
    from captum.attr import Occlusion

    patch = (1, min(settings.occlusion_patch[0], mel.shape[2]), min(settings.occlusion_patch[1], mel.shape[3]))
    return Occlusion(forward).attribute(mel, sliding_window_shapes=patch, strides=patch, baselines=baseline,
                                        target=targets, perturbations_per_eval=8)


def clip_budget(settings: AttributionSettings, device: torch.device) -> int:
    """Attributions cost seconds per clip on a CPU (integrated gradients on mn10: about 3 s)."""
    return settings.max_clips if settings.max_clips is not None else (64 if device.type == "cuda" else 16)


def select_clips(targets: np.ndarray, max_clips: int) -> np.ndarray:
    """Up to `max_clips` indices, round-robin over the classes so that every class is represented."""
    by_class = [list(np.flatnonzero(targets == c)) for c in np.unique(targets)]
    chosen: list[int] = []
    while len(chosen) < min(max_clips, len(targets)):
        for members in by_class:
            if members and len(chosen) < max_clips:
                chosen.append(members.pop(0))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def attribution_maps(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray, method: str,
                     settings: AttributionSettings, device: torch.device) -> np.ndarray:
    """Unit-mass |attribution| maps (N, mel bins, frames) for `method`, computed in batches."""
    forward = classifier.logits_from_mel
    maps = []
    for start in range(0, len(waveforms), settings.batch_size):
        x = torch.tensor(np.asarray(waveforms[start : start + settings.batch_size]), dtype=torch.float32, device=device)
        y = torch.tensor(np.asarray(targets[start : start + settings.batch_size]), device=device)
        with torch.no_grad():
            mel = classifier.mel(x)
            baseline = classifier.mel(torch.zeros_like(x))
        with torch.enable_grad():
            attribution = ATTRIBUTION_METHODS[method](forward, mel.requires_grad_(), baseline, y, settings).detach()
        magnitude = attribution.abs().sum(1).float()  # over the channel axis: (B, F, T)
        maps.append((magnitude / magnitude.sum((1, 2), keepdim=True).clamp_min(1e-30)).cpu().numpy())
    return np.concatenate(maps)


def pool_frames(maps: np.ndarray, frames: int) -> np.ndarray:
    """Average-pool the time axis to at most `frames` (for class-mean figures)."""
    if maps.shape[-1] <= frames:
        return maps
    pooled = torch.nn.functional.adaptive_avg_pool1d(torch.as_tensor(maps).flatten(0, 1), frames)
    return pooled.reshape(*maps.shape[:2], frames).numpy()


def randomised_copy(classifier: WaveformClassifier, seed: int) -> WaveformClassifier:
    """The classifier with every network layer re-initialised (Adebayo et al. 2018's model randomisation)."""
    clone = copy.deepcopy(classifier)
    torch.manual_seed(seed)
    for module in clone.net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone


def rank_similarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation per clip between two sets of maps (N, ...)."""
    from scipy.stats import spearmanr

    return np.array([spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(first, second)])
