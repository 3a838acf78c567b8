"""The cascading model-randomisation check of Adebayo et al. 2018 ("Sanity Checks for Saliency Maps").

An attribution method that explains the classifier must give different maps once the classifier's weights are
replaced by random ones. The layers are randomised from the output backwards, cumulatively, and after each stage
the maps are compared with the trained network's by Spearman rank correlation, on the absolute and on the signed
maps (Adebayo et al. show that absolute maps can stay similar where signed ones do not). A method passes when,
at full randomisation, both similarities are shown to lie below `MAX_SIMILARITY`.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from probe.analyses.attribution import (ATTRIBUTION_METHODS, attribution_maps, classifier_identity, clip_budget,
                                        select_clips)
from probe.analyses.completeness import with_steps
from probe.analyses.config import AttributionSettings
from probe.analyses.registry import RunContext, register_analysis
from probe.analyses.schema import TableSchema, col, interval
from probe.analyses.stats import MIN_INTERVAL_UNITS, bootstrap_mean_ci
from probe.analyses.store import AttributionStore, code_hash, content_hash, map_settings
from probe.errors import ConfigError
from probe.models.base import WaveformClassifier
from probe.rundir import Tables
from probe.seeding import derive_seed

MAX_SIMILARITY = 0.5
"""A method passes when the upper end of the 95 % interval of the mean Spearman, signed and absolute, lies below
this at full randomisation: maps of a network whose weights carry nothing of the training then share at most a
quarter of their rank variance (rho^2 = 0.25) with the trained network's. Fixed before any result was seen."""
LEVEL = 0.95
N_BOOT = 2000
CHECK_VERSION = 2
"""Keys the stored checks: raised whenever what a check computes changes (its table's layout, its stages)."""
FALLBACK_STD = 0.02
"""The spread of the draws for a tensor without one of its own (one element, or constant such as an untrained
norm weight or a zero bias)."""


MAP_KINDS = {"abs": "absolute", "signed": "signed"}
"""The maps compared, by their key in the summary and their name in the table."""
KIND_OF_MAPS = {name: kind for kind, name in MAP_KINDS.items()}


def parameter_layers(net: torch.nn.Module) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """The network's layers from the output backwards: each module's own parameters (modules without any skipped),
    in reverse registration order. Registration order only approximates the forward order (a module may be used
    elsewhere than it is registered; a raw parameter on a parent, such as PaSST's position embeddings, comes with
    its parent, ahead of the parent's children). A parameter shared by several modules is listed once, with the
    one nearest the output."""
    layers, seen = [], set()
    for name, module in reversed(list(net.named_modules())):
        own = [p for _, p in module.named_parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if own:
            layers.append((name or "(net)", own))
    return layers


def redraw_(parameters: Sequence[torch.nn.Parameter], generator: torch.Generator) -> None:
    """Replace each parameter in place by draws from N(0, its own std), or N(0, FALLBACK_STD) where it has none,
    keeping shape, dtype and device. Draws come from `generator` on the CPU in float32, so they are the same on
    every device and no global generator is touched."""
    with torch.no_grad():
        for parameter in parameters:
            std = float(parameter.detach().float().std()) if parameter.numel() > 1 else 0.0
            if not math.isfinite(std) or std == 0.0:
                std = FALLBACK_STD
            draw = torch.randn(parameter.shape, generator=generator, dtype=torch.float32) * std
            parameter.copy_(draw.to(device=parameter.device, dtype=parameter.dtype))


def spearman_per_clip(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation per clip between two sets of maps (N, ...); NaN where a map is constant."""
    from scipy.stats import rankdata

    a = rankdata(first.reshape(len(first), -1), axis=1)
    b = rankdata(second.reshape(len(second), -1), axis=1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def _mean_ci(values: np.ndarray, seed: int) -> tuple[float, float, float]:
    mean, low, high = bootstrap_mean_ci(values[:, None], level=LEVEL, n_boot=N_BOOT, rng=np.random.default_rng(seed))
    return float(mean[0]), float(low[0]), float(high[0])


def cascading_randomisation(classifier: WaveformClassifier, waveforms: np.ndarray, targets: np.ndarray,
                            methods: Sequence[str], settings: AttributionSettings, device: torch.device, seed: int,
                            stages: int | None = None) -> pd.DataFrame:
    """One row per method, stage 1..S and maps compared: stage k has re-drawn the top ceil(k L / S) of the L layers
    of `parameter_layers` (cumulatively; the last stage all of them), on a deep copy of `classifier`. Columns:
    `layers_randomised`, `deepest_layer`, `fraction_of_parameters`, `maps` (absolute or signed), the mean over clips
    of the Spearman between the trained and the randomised maps (`spearman`) with its bootstrap interval over clips
    (`ci_low`, `ci_high`), `clips` (compared), `clips_constant` (those where a map is constant, so has no ranks:
    left out of the means) and the method's verdict `passed` (both maps' upper bounds below `MAX_SIMILARITY` at the
    last stage, repeated on its rows).

    The absolute map is |signed map|, which for probe's one-channel mel input is `attribution_maps`' default map,
    so a stage costs one attribution pass. Every pass uses the same attribution seed, so GradientSHAP's draws do
    not differ between the maps compared. A layer's draw depends on `seed` and its name alone; BatchNorm's running
    statistics (buffers, not parameters) are kept. The global torch and numpy generators are left as they were."""
    stages = settings.randomisation_stages if stages is None else stages
    if stages < 1:
        raise ConfigError(None, f"the randomisation check needs at least one stage, got {stages}")
    attribution_seed = derive_seed(seed, "attributions")

    def maps(network: WaveformClassifier, method: str) -> np.ndarray:
        return attribution_maps(network, waveforms, targets, method, settings, device, attribution_seed, signed=True)

    trained = {method: maps(classifier, method) for method in methods}
    randomised = copy.deepcopy(classifier)
    layers = parameter_layers(randomised.net)
    if not layers:
        raise ConfigError(None, f"{classifier.name}'s network has no parameters to randomise")
    total = sum(p.numel() for _, parameters in layers for p in parameters)
    stages = min(stages, len(layers))
    rows, done, drawn = [], 0, 0
    for stage in range(1, stages + 1):
        upto = math.ceil(stage * len(layers) / stages)
        for name, parameters in layers[done:upto]:
            redraw_(parameters, torch.Generator().manual_seed(derive_seed(seed, "layer", name)))
            drawn += sum(p.numel() for p in parameters)
        done = upto
        for method in methods:
            signed_maps = maps(randomised, method)
            similarity = {"abs": spearman_per_clip(np.abs(trained[method]), np.abs(signed_maps)),
                          "signed": spearman_per_clip(trained[method], signed_maps)}
            constant = int((~np.isfinite(similarity["abs"]) | ~np.isfinite(similarity["signed"])).sum())
            for kind, values in similarity.items():
                mean, low, high = _mean_ci(values, derive_seed(seed, "bootstrap", method, stage, kind))
                rows.append({"method": method, "stage": stage, "layers_randomised": done, "layers": len(layers),
                             "deepest_layer": layers[done - 1][0], "fraction_of_parameters": drawn / total,
                             "maps": MAP_KINDS[kind], "spearman": mean, "ci_low": low, "ci_high": high,
                             "clips": len(signed_maps), "clips_constant": constant})
    table = pd.DataFrame(rows)
    final = table[table.stage == stages]
    # no interval (fewer clips than bootstrap_mean_ci's minimum) is no evidence of low similarity: NaN < x is False
    passed = (final.ci_high < MAX_SIMILARITY).groupby(final.method).all()
    table["passed"] = table.method.map(passed).astype(bool)
    return table


def randomisation_summary(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per method, for the run summary: the similarities at full randomisation with their upper bounds, the
    threshold, the number of clips, the stage curve and the verdict."""
    summary = {}
    for method, rows in table.groupby("method", sort=False):
        wide = {}
        for row in rows.itertuples():
            kind = KIND_OF_MAPS[row.maps]
            wide.setdefault(int(row.stage), {"row": row}).update(
                {f"spearman_{kind}": float(row.spearman), f"spearman_{kind}_high": float(row.ci_high)})
        last = wide[max(wide)]
        summary[str(method)] = {
            **{k: v for k, v in last.items() if k != "row"},
            "max_similarity": MAX_SIMILARITY, "clips": int(last["row"].clips),
            "clips_constant": int(last["row"].clips_constant), "passed": bool(last["row"].passed),
            "stages": [{"stage": stage, "layers_randomised": int(values["row"].layers_randomised),
                        "fraction_of_parameters": float(values["row"].fraction_of_parameters),
                        "spearman_abs": values["spearman_abs"], "spearman_signed": values["spearman_signed"]}
                       for stage, values in sorted(wide.items())],
        }
    return summary


def sanity_clips(run, settings: AttributionSettings, device: torch.device) -> np.ndarray:
    """The clips of the randomisation check: the first of the attributed ones."""
    return select_clips(run.targets, clip_budget(settings, device))[: settings.sanity_clips]


def too_few_clips(clips: int) -> str | None:
    """Why the check is not run on this many clips, or None: its verdict needs an interval over the clips."""
    if clips >= MIN_INTERVAL_UNITS:
        return None
    if clips == 0:
        return "not run: turned off (--sanity-clips 0)"
    return (f"not run: its verdict needs an interval over at least {MIN_INTERVAL_UNITS} clips, and it has {clips} "
            f"(the first attributed, at most --sanity-clips)")


def check_key(identity: tuple, method: str, settings: AttributionSettings, clips: str, seed: int,
              device: torch.device) -> str:
    """The attribution store's name for `method`'s randomisation check on the clips whose `content_hash` is `clips`
    (`probe.analyses.store`)."""
    entry = ATTRIBUTION_METHODS.lookup(method)
    return AttributionStore.key(kind="randomisation", classifier=identity, method=method, code=code_hash(entry.attribute),
                                settings=map_settings(settings, entry.reads), clips=clips,
                                seed=seed, device=device.type, check=CHECK_VERSION,
                                verdict=(MAX_SIMILARITY, LEVEL, N_BOOT))


SANITY_SCHEMA = TableSchema(
    Tables.ATTRIBUTION_SANITY, "method x stage x maps: the cascading randomisation check (Adebayo et al. 2018); empty "
                               "when fewer than 8 clips are attributed",
    (col("method", "str", "the attribution method"),
     col("stage", "int", "cumulative stage: stage k of S has re-drawn the top ceil(k L / S) of the L layers"),
     col("layers_randomised", "int", "layers re-drawn so far, from the output"), col("layers", "int", "layers in all"),
     col("deepest_layer", "str", "the last layer re-drawn"),
     col("fraction_of_parameters", "float", "share of the parameters re-drawn", "fraction"),
     col("maps", "str", "which maps are compared", values=tuple(MAP_KINDS.values())),
     col("spearman", "float", "mean over the clips of the Spearman correlation between the trained and the randomised "
                              "network's maps"),
     *interval(of="the mean"), col("clips", "int", "clips compared"),
     col("clips_constant", "int", "clips left out because a map is constant (no ranks)"),
     col("passed", "bool", "the method's verdict: at full randomisation both maps' ci_high lie below 0.5")))


@register_analysis("randomisation", tables=(SANITY_SCHEMA,),
                   enabled=lambda config: bool(config.attributions.methods), reads=("summary:attributions",))
def randomisation_analysis(context: RunContext) -> None:
    """The cascading randomisation check of every attribution method, on the first attributed clips, once per
    classifier, clips and method (the store keeps it for every run behind the classifier)."""
    run, classifier = context.run, context.classifier
    if classifier is None:
        return
    summary = context.summary.setdefault("attributions", {})
    # the analysis's own settings, integrated gradients at the steps it chose: the check vouches for the maps shown
    # (fewer GradientSHAP samples would lower the rank similarity, a bias towards passing; coarser occlusion patches
    # could leave maps with no ranks)
    settings = context.config.attributions
    if summary.get("ig_steps") is not None:
        settings = with_steps(settings, summary["ig_steps"])
    sanity_idx = sanity_clips(run, settings, context.device)
    reason = too_few_clips(len(sanity_idx))
    if reason:
        context.say(f"{run.label}: randomisation check {reason}")
        context.tables[Tables.ATTRIBUTION_SANITY] = pd.DataFrame(columns=list(SANITY_SCHEMA.column_names))
        summary["randomisation_check"], summary["randomisation_not_run"] = {}, reason
        return
    context.say(f"{run.label}: randomisation check on {len(sanity_idx)} clips, "
                f"{settings.randomisation_stages} cascading stages")
    waveforms, targets = run.waveforms("original")[sanity_idx], run.targets[sanity_idx]
    seed, identity = derive_seed(context.config.seed, "randomisation"), classifier_identity(run)
    clips = content_hash(waveforms, targets)
    tables = [context.store.table(
        check_key(identity, method, settings, clips, seed, context.device),
        lambda method=method: cascading_randomisation(classifier, waveforms, targets, (method,), settings,
                                                      context.device, seed, settings.randomisation_stages))
        for method in settings.methods]
    sanity = pd.concat(tables, ignore_index=True)
    context.tables[Tables.ATTRIBUTION_SANITY] = sanity
    summary["randomisation_check"] = randomisation_summary(sanity)
    summary["randomisation_settings"] = {"clips": len(sanity_idx), "stages": settings.randomisation_stages,
                                         "ig_steps": settings.ig_steps, "shap_samples": settings.shap_samples,
                                         "occlusion_patch": list(settings.occlusion_patch)}
