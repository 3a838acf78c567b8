"""Attribution maps on the classifier's mel input (captum), their mass per band, and a sanity check.

A network that reads the waveform is attributed through an STFT inspection layer (`probe.models.inspection`): its
maps are time-frequency maps too, on the layer's linear frequency bins.

Every method is a registry entry mapping (forward, mel batch, baseline, targets) to attributions
shaped like the input. Maps are taken as absolute values and normalised to unit mass per clip,
so methods and clips compare on the same scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from probe.analyses.bands import input_band_set
from probe.progress import Ticker
from probe.analyses.completeness import (chosen_steps, clip_attributions, completeness_summary, size_steps,
                                         sizing_key, with_steps)
from probe.analyses.config import AttributionSettings  # noqa: F401 (re-exported)
from probe.analyses.passes import samples_per_pass
from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.schema import TableSchema, col
from probe.analyses.routes import attribution_per_clip, contrast_per_clip, correlate
from probe.analyses.spectral import group_means
from probe.analyses.store import AttributionStore, code_hash, content_hash, map_settings, weights_hash
from probe.models.base import WaveformClassifier
from probe.models.inspection import attribution_view
from probe.registries import Registry
from probe.rundir import ORIGINAL, Tables
from probe.seeding import derive_seed, seeded

Attribute = Callable[[Callable, torch.Tensor, torch.Tensor, torch.Tensor, "AttributionSettings", int], torch.Tensor]
"""(forward, mel batch, baseline, targets, settings, the most samples one pass may carry) -> attributions."""


@dataclass(frozen=True)
class AttributionMethod:
    """A registered attribution method: the function, and how many clips one call may take."""

    attribute: Attribute
    one_clip_per_call: bool = False
    """One clip per call, whatever the memory budget: its random draws are then the clip's own, and a rerun on a
    machine with another budget draws the same."""
    sized_by_completeness: bool = False
    """Its steps (`ig_steps`) are chosen per classifier by the completeness error (`probe.analyses.completeness`)."""
    reads: tuple[str, ...] = ()
    """The method's own settings it reads (of `probe.analyses.store.METHOD_SETTINGS`): its maps are stored under
    those, so another method's settings never make it compute again."""


ATTRIBUTION_METHODS: Registry[AttributionMethod] = Registry("attribution method", builtins="probe.analyses")
"""Built in here; a module of `analyses/` or a plugin adds one with `@register_method(name)`."""


def register_method(name: str, one_clip_per_call: bool = False, sized_by_completeness: bool = False,
                    reads: tuple[str, ...] = ()) -> Callable[[Attribute], Attribute]:
    """Decorator: register `attribute(forward, mel, baseline, targets, settings, max_batch)` as the method `name`;
    `reads` names the method's own settings it uses (`ig_steps`, `shap_samples`, `occlusion_patch`)."""

    def decorate(attribute: Attribute) -> Attribute:
        ATTRIBUTION_METHODS.register(name, AttributionMethod(attribute, one_clip_per_call, sized_by_completeness,
                                                             reads))
        return attribute

    return decorate


@register_method("integrated_gradients", sized_by_completeness=True, reads=("ig_steps",))
def integrated_gradients(forward, mel, baseline, targets, settings, max_batch):
    """Integrated gradients (Sundararajan et al. 2017) from silence, at `ig_steps` chosen by completeness."""
    from captum.attr import IntegratedGradients

    # captum runs the clips x steps interpolations `max_batch` at a time
    return IntegratedGradients(forward).attribute(mel, baselines=baseline, target=targets, n_steps=settings.ig_steps,
                                                  internal_batch_size=max_batch)


@register_method("saliency")
def saliency(forward, mel, baseline, targets, settings, max_batch):
    """The signed gradient of the target's logit with respect to the input (Simonyan et al. 2014)."""
    from captum.attr import Saliency

    return Saliency(forward).attribute(mel, target=targets, abs=False)  # signed: the randomisation check reads both


@register_method("gradient_shap", one_clip_per_call=True, reads=("shap_samples",))
def gradient_shap(forward, mel, baseline, targets, settings, max_batch):
    """GradientSHAP (Lundberg and Lee 2017): expected gradients over `shap_samples` draws around silence."""
    from captum.attr import GradientShap

    noise = torch.randn((4, *mel.shape[1:])).to(mel.device) * 0.1  # drawn in attribution_maps' seeded scope
    baselines = baseline[:1] + noise  # a small distribution around silence
    # captum expands each clip into n_samples copies in one pass; one sample per pass keeps a pass within the budget
    # (a PaSST clip of 5 s keeps about 570 MB for backward) and the draws independent of it. The mean over the
    # single-sample calls is GradientSHAP's estimate over n_samples.
    explainer = GradientShap(forward)
    total = sum(explainer.attribute(mel, baselines=baselines, target=targets, n_samples=1, stdevs=0.05)
                for _ in range(settings.shap_samples))
    return total / settings.shap_samples


@register_method("occlusion", reads=("occlusion_patch",))
def occlusion(forward, mel, baseline, targets, settings, max_batch):
    """The target's logit change when `occlusion_patch` patches are replaced by silence (Zeiler and Fergus 2014)."""
    from captum.attr import Occlusion

    patch = (1, min(settings.occlusion_patch[0], mel.shape[2]), min(settings.occlusion_patch[1], mel.shape[3]))
    return Occlusion(forward).attribute(mel, sliding_window_shapes=patch, strides=patch, baselines=baseline,
                                        target=targets, perturbations_per_eval=max(1, max_batch // len(mel)))


def clips_per_call(method: str, settings: AttributionSettings, max_batch: int) -> int:
    """How many clips one call of `method` takes, so that a pass through the classifier carries at most `max_batch`
    samples (one, for a method whose entry says so)."""
    if ATTRIBUTION_METHODS.lookup(method).one_clip_per_call:
        return 1
    # integrated gradients: captum splits each call's clips x steps into passes of `max_batch` (at least one clip each)
    return max(1, min(settings.batch_size, max_batch))


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


def unit_mass(attribution: torch.Tensor, signed: bool = False) -> np.ndarray:
    """(B, channels, F, T) attributions as (B, F, T) maps: |attribution| summed over the channels, divided by the
    clip's total (`signed`: the signed sum over the channels, divided by the same total)."""
    magnitude = attribution.abs().sum(1).float()
    total = magnitude.sum((1, 2), keepdim=True).clamp_min(1e-30)
    return ((attribution.sum(1).float() if signed else magnitude) / total).cpu().numpy()


def attribution_maps(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray, method: str,
                     settings: AttributionSettings, device: torch.device, seed: int = 0,
                     signed: bool = False, first_maps: np.ndarray | None = None) -> np.ndarray:
    """Unit-mass |attribution| maps (N, mel bins, frames) for `method`, computed in batches; `signed`: the
    attributions summed over the channel axis with their signs, divided by the clip's total absolute mass.
    Integrated gradients without steps get them chosen by completeness on the first clips, whose maps the choice
    computed (one clip per call) and which are not computed again. `first_maps`: the maps of the first clips, known
    already (`sized_settings` gives them).

    Each batch runs with torch's and numpy's generators seeded from (`seed`, method, batch) and restored after
    (GradientSHAP draws its baselines and noise from them): the same seed gives the same maps, and nothing
    outside sees a draw."""
    if ATTRIBUTION_METHODS.lookup(method).sized_by_completeness and settings.ig_steps is None:
        first, kept = slice(0, settings.completeness_clips), {}  # the analysis sizes them once per classifier instead
        settings = with_steps(settings, chosen_steps(size_steps(classifier, waveforms[first], targets[first], settings,
                                                                device, kept)))
        if not signed and computed_by_the_walk(method):
            first_maps = np.concatenate([unit_mass(a) for a in kept["attributions"]]) if kept["attributions"] else None
    view = attribution_view(classifier)  # a waveform-in network: through its STFT inspection layer
    forward = view.logits_from_mel
    maps: list[np.ndarray] = [] if first_maps is None else [first_maps]
    max_batch = step = None
    start = 0 if first_maps is None else len(first_maps)
    ticker = Ticker(f"{method}: clips attributed", len(waveforms) - start)
    while start < len(waveforms):
        x = torch.tensor(np.asarray(waveforms[start : start + (step or 1)]), dtype=torch.float32, device=device)
        with torch.no_grad():
            mel = view.mel(x)
        if max_batch is None:  # sized once, on the first clip, from the memory budget
            max_batch = samples_per_pass(forward, mel, settings, device)
            step = clips_per_call(method, settings, max_batch)
            continue
        y = torch.tensor(np.asarray(targets[start : start + step]), device=device)
        with torch.no_grad():
            baseline = view.mel(torch.zeros_like(x))
        with torch.enable_grad(), seeded(derive_seed(seed, method, start)):
            attribution = ATTRIBUTION_METHODS[method].attribute(forward, mel.requires_grad_(), baseline, y, settings,
                                                      max_batch).detach()
        maps.append(unit_mass(attribution, signed))
        start += step
        ticker.advance(step)
    return np.concatenate(maps)


def pool_frames(maps: np.ndarray, frames: int) -> np.ndarray:
    """Average-pool the time axis to at most `frames` (for class-mean figures)."""
    if maps.shape[-1] <= frames:
        return maps
    pooled = torch.nn.functional.adaptive_avg_pool1d(torch.as_tensor(maps).flatten(0, 1), frames)
    return pooled.reshape(*maps.shape[:2], frames).numpy()


def band_profile(mass: pd.DataFrame, mel_bands: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean attribution mass per method, condition and mel band over the attributed clips (the
    `attribution_band_profile` table), with the bands' edges in Hz where the mel band set is known."""
    profile = (mass.groupby(["method", "condition", "mel_bin"], sort=False)["mass"].mean().reset_index()
               .rename(columns={"mel_bin": "band_index"}))
    if mel_bands is not None and len(mel_bands):
        profile = profile.merge(mel_bands[["band_index", "low_hz", "centre_hz", "high_hz"]], on="band_index", how="left")
    return profile


def agreement_with_contrast(context: RunContext) -> dict[str, dict[str, float]]:
    """Per method: Spearman's rho between the mean attribution mass per mel band on the originals and the run's
    contrast against its control on the same bands, with a bootstrap interval over the clips. Empty without a
    contrast (a control changes nothing; a compare has no control)."""

    contrast = contrast_per_clip(context.tables)
    if not len(contrast) or contrast.mean().dropna().nunique() < 2:
        return {}
    units = pd.Series(context.run.units, index=context.run.clip_ids)
    shifts = context.config.shifts
    return {method: correlate(attribution_per_clip(context.tables, method), contrast, units, shifts.level,
                              min(shifts.n_boot, 1000), context.rng)
            for method in context.config.attributions.methods}


def maps_key(identity: tuple, method: str, settings: AttributionSettings, clips: str, seed: int,
             device: torch.device, single_first: int = 0) -> str:
    """The attribution store's name for `method`'s maps of the clips whose `content_hash` is `clips` (`single_first`:
    how many of the first were computed one clip per call, by the completeness walk)."""
    entry = ATTRIBUTION_METHODS.lookup(method)
    return AttributionStore.key(kind="maps", classifier=identity, method=method, code=code_hash(entry.attribute),
                                settings=map_settings(settings, entry.reads), clips=clips, seed=seed,
                                device=device.type, **({"single_first": single_first, "walk": code_hash(clip_attributions)}
                                                       if single_first else {}))


def computed_by_the_walk(method: str) -> bool:
    """Whether the completeness walk's attributions are `method`'s own maps: the walk attributes with captum's
    integrated gradients, so only the built-in method that does the same reuses them."""
    return ATTRIBUTION_METHODS.lookup(method).attribute is integrated_gradients


def walked_clips(method: str, condition: str, settings: AttributionSettings, clips: int) -> int:
    """How many of the first clips' maps of `method` on `condition` the completeness walk computes (the originals'
    first `completeness_clips`), and the maps then reuse."""
    return min(settings.completeness_clips, clips) if computed_by_the_walk(method) and condition == ORIGINAL else 0


def classifier_identity(run) -> tuple[str, str | None, str]:
    """The run's classifier by what its maps depend on: its name, its weights' content and its options."""
    name, weights, options = run.classifier_key()
    return name, weights_hash(weights) or weights, options


def sizing_inputs(run, identity: tuple, chosen: np.ndarray, settings: AttributionSettings,
                  device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The originals integrated gradients' steps are chosen on (the first `completeness_clips` of the `chosen`): their
    indices, waveforms and targets, and the store's name for the choice. The plan and the analysis both ask here, so
    they name it alike."""
    first = chosen[: settings.completeness_clips]
    waveforms, targets = run.waveforms("original")[first], run.targets[first]
    return first, waveforms, targets, sizing_key(identity, settings, content_hash(waveforms, targets), device)


def sized_settings(context: RunContext, chosen: np.ndarray,
                   identity: tuple) -> tuple[AttributionSettings, Callable[[], np.ndarray]]:
    """The attribution settings with integrated gradients' steps chosen (or, fixed, measured) by completeness on the
    first of the `chosen` originals, once per classifier and clips (the store keeps the choice); the errors go to the
    `attribution_completeness` table and the summary. Unchanged where no method is sized by completeness. With them,
    the maps of those first originals at the steps chosen: the walk's own where it ran here, else computed the same
    way, one clip per call (so the maps do not depend on whether the store held the choice)."""
    run, settings = context.run, context.config.attributions
    if not any(ATTRIBUTION_METHODS.lookup(method).sized_by_completeness for method in settings.methods):
        return settings, lambda: np.empty((0,))
    first, waveforms, targets, key = sizing_inputs(run, identity, chosen, settings, context.device)
    kept: dict = {}

    def compute() -> pd.DataFrame:
        context.say(f"{run.label}: integrated gradients: choosing the steps by completeness on {len(first)} clips")
        return size_steps(context.classifier, waveforms, targets, settings, context.device, kept)

    table = context.store.table(key, compute)
    summary = completeness_summary(table, settings)
    error = summary["median_relative_error"]
    context.say(f"{run.label}: integrated gradients: {summary['steps']} steps, median completeness error "
                + ("not measurable" if error is None else f"{100 * error:.1f} %")
                + f" (bound {100 * settings.ig_max_error:g} %)")
    context.tables[Tables.ATTRIBUTION_COMPLETENESS] = table.assign(
        clip_id=np.asarray(run.clip_ids)[first][table.position.to_numpy()])[
        ["steps", "clip_id", "relative_error", "chosen"]]
    context.summary.setdefault("attributions", {})["completeness"] = summary
    sized = with_steps(settings, chosen_steps(table))

    def first_maps() -> np.ndarray:
        attributions = kept.get("attributions")
        if attributions is None:
            attributions = clip_attributions(context.classifier, waveforms, targets, sized.ig_steps, sized,
                                             context.device)
        return np.concatenate([unit_mass(a) for a in attributions])

    return sized, first_maps


METHOD = col("method", "str", "the attribution method (`--methods`)")
ATTRIBUTED = col("condition", "str", "whose maps: the originals, or the finetuned reconstructions",
                 values=("original", "after"))
ATTRIBUTION_TABLES = (
    TableSchema(Tables.ATTRIBUTION_BAND_MASS, "attributed clip x condition x method x mel bin: the bin's share of the "
                                              "clip's absolute attribution (a clip's shares sum to 1)",
                (col("clip_id", "str", "the clip"), col("class", "str", "its class"), ATTRIBUTED, METHOD,
                 col("mel_bin", "int", "the classifier's input bin (mel bin, or STFT bin of a waveform model)"),
                 col("mass", "float", "share of the absolute attribution", "fraction"))),
    TableSchema(Tables.ATTRIBUTION_BAND_PROFILE, "method x condition x mel bin: the mean share over the attributed clips",
                (METHOD, ATTRIBUTED, col("band_index", "int", "the input bin"),
                 col("mass", "float", "mean share of the absolute attribution", "fraction"),
                 col("low_hz", "float", "the bin's lower edge, where the classifier's mel bands are known", "Hz",
                     optional=True),
                 col("centre_hz", "float", "the bin's centre", "Hz", optional=True),
                 col("high_hz", "float", "the bin's upper edge", "Hz", optional=True))),
    TableSchema(Tables.ATTRIBUTION_COMPLETENESS, "step count tried x clip: how complete integrated gradients are on the "
                                                 "first originals (`probe.analyses.completeness`)",
                (col("steps", "int", "interpolation steps"), col("clip_id", "str", "the clip"),
                 col("relative_error", "float", "|sum of the attributions - (target logit of the clip - of silence)| "
                                                "over |that difference|; NaN where the difference is below 1e-6",
                     "fraction"),
                 col("chosen", "bool", "these are the steps the maps use"))),
)


@register_analysis("attributions", tables=ATTRIBUTION_TABLES,
                   enabled=lambda config: bool(config.attributions.methods),
                   reads=(Tables.BAND_SHIFT_OVERALL, Tables.BAND_SHIFT_PER_CLIP, Tables.BAND_CONTRAST_VS_CONTROL),
                   writes=("summary:attributions",))
def attribution_analysis(context: RunContext) -> None:
    """Maps per method on originals and finetuned reconstructions; band mass; agreement with the contrast against the
    control (the randomisation check is `randomisation.py`'s). Maps of the originals depend only on the classifier
    and the clips: runs that share both share them."""
    run, classifier, settings = context.run, context.classifier, context.config.attributions
    if classifier is None:
        return
    chosen = select_clips(run.targets, clip_budget(settings, context.device))
    targets = run.targets[chosen]
    identity = classifier_identity(run)
    settings, first_maps = sized_settings(context, chosen, identity)
    mass_rows = []
    overall = context.tables[Tables.BAND_SHIFT_OVERALL]
    mel_shift = overall[(overall.band_set == input_band_set()) & (overall.condition == "after")].sort_values("band_index")
    clips = {condition: run.waveforms(condition)[chosen] for condition in settings.conditions}  # read and hashed once
    hashes = {condition: content_hash(waveforms, targets) for condition, waveforms in clips.items()}
    for method in settings.methods:
        for condition in settings.conditions:
            waveforms, seed = clips[condition], derive_seed(context.config.seed, condition)
            walked = walked_clips(method, condition, settings, len(chosen))
            key = maps_key(identity, method, settings, hashes[condition], seed, context.device, walked)

            def compute(method=method, condition=condition, waveforms=waveforms, seed=seed, walked=walked) -> np.ndarray:
                context.say(f"{run.label}: {method} on {len(chosen)} {condition} clips")
                return attribution_maps(classifier, waveforms, targets, method, settings, context.device, seed,
                                        first_maps=first_maps() if walked else None)

            maps = context.store.array(key, compute)
            band_mass = maps.sum(-1)  # (clips, mel bins)
            n, n_bins = band_mass.shape
            mass_rows.append(pd.DataFrame({
                "clip_id": np.repeat(np.asarray(run.clip_ids)[chosen], n_bins),
                "class": np.repeat(np.asarray(run.class_names)[targets], n_bins), "condition": condition, "method": method,
                "mel_bin": np.tile(np.arange(n_bins), n), "mass": band_mass.ravel(),
            }))
            context.arrays[f"attribution_class_{method}_{condition}"] = group_means(
                pool_frames(maps, settings.max_frames), targets, len(run.class_names)).astype(np.float32)
    context.tables[Tables.ATTRIBUTION_BAND_MASS] = pd.concat(mass_rows, ignore_index=True)
    agreement = agreement_with_contrast(context)
    context.tables[Tables.ATTRIBUTION_BAND_PROFILE] = band_profile(context.tables[Tables.ATTRIBUTION_BAND_MASS], mel_shift)

    note = ("positive rho: the mel bands the classifier attributes most (on the originals) are the bands finetuning "
            "kept most against the control; the interval resamples the clips")
    context.summary.setdefault("attributions", {}).update({
        "clips": len(chosen), "methods": list(settings.methods), "ig_steps": settings.ig_steps,
        "input": "stft" if getattr(classifier, "waveform_input", False) else "mel",
        "agreement_with_contrast": agreement, "agreement_note": note})
