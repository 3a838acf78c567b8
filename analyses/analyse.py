"""`probe analyse`: everything the report needs, computed from finetune run directories alone.

ANALYSISDIR/summary.json                 the runs, the comparison, and where everything lies
ANALYSISDIR/comparison/                  transfer matrix, band profiles side by side, divergent classes,
                                         rank correlations of the routes (band shifts, attributions) per classifier,
                                         classifier A minus B for the same probe setting on the same clips
ANALYSISDIR/<run>/summary.json           accuracy, plain-sentence band verdicts, attribution agreement
ANALYSISDIR/<run>/*.parquet|csv          tidy tables (per clip and band, per class and band, ...)
ANALYSISDIR/<run>/nmi_*.parquet|csv      Palacio's normalised mutual information, per clip and summarised
ANALYSISDIR/<run>/arrays.npz             mean spectra, mel maps and attribution maps per class and category
ANALYSISDIR/<run>/audio/                 example clips: original, reconstructions, residual (WAV)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probe.analyses import accuracy, attribution, bands, bandshift, information, routes, spectral, transfer
from probe.analyses.runs import RunOutputs, classifier_label, load_run, setting_label, unique_labels
from probe.errors import ConfigError
from probe.fileio import atomic_write, staged_directory, write_json, write_text

STUDY_EXAMPLES = (8, 12, 31, 66, 86, 102)
"""The study's sample page: crow, clapping, water drops, crackling fire, insects, pig (ESC-50 fold 1)."""


@dataclass(frozen=True)
class AnalyseConfig:
    runs: tuple[str, ...]
    out: str = "analysis"
    band_sets: tuple[str, ...] = ("octave", "third_octave", "mel")
    shifts: bandshift.ShiftSettings = field(default_factory=bandshift.ShiftSettings)
    attributions: attribution.AttributionSettings = field(default_factory=attribution.AttributionSettings)
    examples: tuple[int, ...] | None = None
    """Validation positions to keep as audio; default: the study's on ESC-50 fold 1, else one clip per class."""
    residuals: str = "examples"
    """Residual audio (original - finetuned reconstruction) for the `examples` only, or for `all` clips."""
    transfer: bool = True
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        if not self.runs:
            raise ConfigError(None, "give at least one finetune run directory")
        if self.shifts.correction not in bandshift.CORRECTIONS:
            raise ConfigError(None, f"unknown correction {self.shifts.correction!r}; known: {', '.join(bandshift.CORRECTIONS)}")
        for method in self.attributions.methods:
            attribution.ATTRIBUTION_METHODS.lookup(method)
        bands.band_sets_for(self.band_sets, 32000)  # raises on unknown names
        if "original" not in self.attributions.conditions:
            raise ConfigError(None, "attributions always include the originals")
        if self.residuals not in ("examples", "all"):
            raise ConfigError(None, f"--residuals is examples or all, got {self.residuals!r}")
        if not 0 < self.shifts.level < 1:
            raise ConfigError(None, f"the confidence level must lie in (0, 1), got {self.shifts.level}")


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled, self.started = enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:6.1f} s] {message}", flush=True)


def write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """A table as parquet (typed) and CSV (for anything else), each written atomically."""
    with atomic_write(folder / f"{name}.parquet") as handle:
        frame.to_parquet(handle, index=False)
    write_text(folder / f"{name}.csv", frame.to_csv(index=False))


def default_examples(run: RunOutputs) -> list[int]:
    from probe import esc50

    if tuple(run.class_names) == esc50.CLASS_NAMES and len(run.targets) == 400:
        return list(STUDY_EXAMPLES)
    first_of_class = [int(np.flatnonzero(run.targets == c)[0]) for c in np.unique(run.targets)]
    return first_of_class[:12]


def analyse(config: AnalyseConfig) -> Path:
    """Analyse every run, compare them, and write ANALYSISDIR atomically; returns its path."""
    config.validate()
    from probe.models.classifiers import load_classifier
    from probe.devices import pick_device

    say = Progress(config.progress)
    device = pick_device(config.device)
    runs = [load_run(path) for path in config.runs]
    unique_labels(runs)
    loaded: dict[tuple, Any] = {}  # one instance per distinct classifier, shared by the runs behind it
    classifiers = {}
    for run in runs:
        key = run.classifier_key()
        if key not in loaded:
            say(f"{run.label}: loading classifier {run.config.get('classifier')}")
            loaded[key] = load_classifier(
                run.config["classifier"], run.classifier_weights(), len(run.class_names), class_names=run.class_names,
                device=device, **run.config.get("classifier_options", {}))
        classifiers[run.label] = loaded[key]
    return write_analysis(runs, classifiers, config, device, say)


def write_analysis(runs: list[RunOutputs], classifiers: dict[str, Any], config: AnalyseConfig, device: torch.device,
                   say: Progress) -> Path:
    """Analyse prepared runs (`classifiers`: run label -> classifier or None) into config.out, atomically."""
    judges = {run.judge: (classifiers[run.label], run.class_names) for run in runs if classifiers.get(run.label) is not None}
    attribution_cache: dict[tuple, Any] = {}
    summaries, per_class_frames, per_category_frames, overall_frames, route_inputs = [], [], [], [], []
    per_clip_shifts: dict[tuple[str, str], pd.DataFrame] = {}
    with staged_directory(config.out) as staging:
        for run in runs:
            summary, tables = analyse_run(run, classifiers[run.label], staging / run.label, config, device, say,
                                          attribution_cache)
            summaries.append(summary)
            per_class_frames.append(tables["band_shift_per_class"].assign(run=run.label))
            per_category_frames.append(tables["band_shift_per_category"].assign(run=run.label))
            overall_frames.append(tables["band_shift_overall"].assign(run=run.label))
            route_inputs.append((run.judge, summary["autoencoder"], tables))
            per_clip_shifts[(run.judge, summary["autoencoder"])] = tables["band_shift_per_clip"]
        comparison = staging / "comparison"
        comparison.mkdir()
        overall = pd.concat(overall_frames, ignore_index=True)
        write_table(comparison, "band_profiles", overall)
        compared: dict[str, Any] = {}
        correlations = routes.all_route_correlations(route_inputs)
        if len(correlations):
            write_table(comparison, "route_correlations", correlations)
            compared["route_correlations"] = correlations.to_dict("records")
        contrasts = transfer.classifier_contrasts(per_clip_shifts, config.shifts, np.random.default_rng(config.seed))
        if len(contrasts):
            write_table(comparison, "classifier_contrasts", contrasts)
        if len(runs) > 1:
            for key, frames in (("class", per_class_frames), ("category", per_category_frames)):
                divergence = transfer.profile_divergence(pd.concat(frames, ignore_index=True), key)
                write_table(comparison, f"{key}_divergence", divergence)
                compared[f"most_divergent_{key}"] = divergence.head(5).to_dict("records")
        if config.transfer and judges:
            say("transfer: every classifier on every run's reconstructions")
            table = transfer.transfer_table(runs, judges, device)
            write_table(comparison, "transfer", table)
            compared["transfer"] = table.to_dict("records")
        write_json(staging / "summary.json", {
            "runs": [{"label": s["label"], "path": s["path"], "folder": s["label"]} for s in summaries],
            "comparison": compared, "config": _jsonable(config),
        })
    say(f"done: {config.out}")
    return Path(config.out)


def analyse_run(run: RunOutputs, classifier, folder: Path, config: AnalyseConfig, device: torch.device,
                say: Progress, attribution_cache: dict[tuple, Any] | None = None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """All single-run analyses of one run into `folder`; returns its summary and its main tables."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(config.seed)
    n_classes, n_categories = len(run.class_names), len(run.category_names)
    categories = run.categories
    timings: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}

    started = time.perf_counter()
    if run.logits:
        say(f"{run.label}: accuracy on {len(run.targets)} clips")
        tables.update(accuracy.accuracy_tables(run.logits, run.targets, run.class_names, run.class_categories,
                                               run.category_names))

    say(f"{run.label}: spectra and band-energy shifts ({', '.join(config.band_sets)})")
    spectra = {c: bands.power_spectra(run.waveforms(c)) for c in run.conditions}
    band_sets = bands.band_sets_for(config.band_sets, run.sample_rate, classifier)
    tables.update(bandshift.band_shift_tables(spectra, band_sets, run.clip_ids, run.targets, run.class_names,
                                              run.class_categories, run.category_names, config.shifts, rng))
    arrays: dict[str, np.ndarray] = {"stft_frequencies_hz": bands.fft_frequencies(run.sample_rate)}
    arrays.update(_gain_curves(run))
    floor_db = _objective_field(run, "gain_floor_db")
    if "gain_db" in arrays and floor_db is not None:
        tables["band_shift_overall"] = bandshift.mark_not_needed(tables["band_shift_overall"], arrays["gain_frequencies_hz"],
                                                                 arrays["gain_db"], float(floor_db))
    for condition in run.conditions:
        log_spectra = 10 * np.log10(spectra[condition] + bands.EPSILON)
        arrays[f"stft_db_class_{condition}"] = spectral.group_means(log_spectra, run.targets, n_classes)
        arrays[f"stft_db_category_{condition}"] = spectral.group_means(log_spectra, categories, n_categories)

    say(f"{run.label}: spectral descriptors and mel maps")
    descriptor_rows, maps = [], {}
    for condition in run.conditions:
        values = spectral.spectral_descriptors(run.waveforms(condition), run.sample_rate)
        descriptor_rows.append(pd.DataFrame({"clip_id": run.clip_ids, "class": np.asarray(run.class_names)[run.targets],
                                             "condition": condition, **values}))
        maps[condition] = spectral.mel_maps(run.waveforms(condition), run.sample_rate)
        arrays[f"mel_db_class_{condition}"] = spectral.group_means(maps[condition], run.targets, n_classes).astype(np.float32)
        arrays[f"mel_db_category_{condition}"] = spectral.group_means(maps[condition], categories, n_categories).astype(np.float32)
    tables["descriptors_per_clip"] = pd.concat(descriptor_rows, ignore_index=True)
    tables["descriptor_shifts"] = _descriptor_shifts(tables["descriptors_per_clip"], tuple(run.reconstructions), config, rng)
    say(f"{run.label}: normalised mutual information (Palacio et al.) on the mel maps")
    tables["nmi_per_clip"] = information.nmi_per_clip(maps, run.clip_ids, run.class_names, run.targets, rng)
    tables["nmi_summary"] = information.nmi_summary(tables["nmi_per_clip"], run.class_categories, run.class_names,
                                                    run.category_names, config.shifts.level, config.shifts.n_boot, rng)
    timings["spectral_and_bands_s"] = time.perf_counter() - started

    attribution_summary: dict[str, Any] = {}
    if config.attributions.methods and classifier is not None:
        started = time.perf_counter()
        attribution_summary = _attributions(run, classifier, tables, arrays, config, device, say,
                                            {} if attribution_cache is None else attribution_cache)
        timings["attributions_s"] = time.perf_counter() - started

    examples = list(config.examples) if config.examples is not None else default_examples(run)
    bad = [i for i in examples if not 0 <= i < len(run.targets)]
    if bad:
        raise ConfigError(None, f"example position {bad[0]} is outside the {len(run.targets)} validation clips of {run.path}")
    example_rows = _write_examples(run, examples, folder / "audio")
    if config.residuals == "all":
        say(f"{run.label}: residual audio for all {len(run.targets)} clips")
        _write_residuals(run, folder / "audio" / "residuals")

    for name, frame in tables.items():
        write_table(folder, name, frame)
    with atomic_write(folder / "arrays.npz") as handle:
        np.savez_compressed(handle, **arrays)

    overall = tables["band_shift_overall"]
    summary = {
        "label": run.label, "path": str(run.path), "classifier": classifier_label(run.config),
        "autoencoder": setting_label(run.config), "objective": _objective(run),
        "control": run.config.get("autoencoder") == "identity", "clips": len(run.targets), "sample_rate": run.sample_rate,
        "class_names": run.class_names, "category_names": run.category_names, "class_categories": run.class_categories,
        "accuracy": tables["accuracy_overall"].set_index("condition")[["top1", "top5"]].to_dict("index")
        if "accuracy_overall" in tables else {},
        "bands": {condition: {band_set.name: bandshift.describe_bands(overall, condition, band_set.name)
                              for band_set in band_sets} for condition in run.reconstructions},
        "condition_labels": run.condition_labels,
        "information": _information_summary(tables["nmi_summary"]),
        "attributions": attribution_summary, "examples": example_rows, "timings": timings,
        "settings": {"shifts": asdict(config.shifts), "seed": config.seed},
    }
    write_json(folder / "summary.json", summary)
    return summary, tables


def _gain_curves(run: RunOutputs) -> dict[str, np.ndarray]:
    """A spectral-gain run's trained curves: the classifier's, and one per class when it was trained per class."""
    outputs, curves = run.path / "outputs", {}
    if (outputs / "gain_db.npy").is_file():
        curves["gain_frequencies_hz"], curves["gain_db"] = np.load(outputs / "gain_db.npy")
    if (outputs / "gain_db_per_class.npy").is_file():
        curves["gain_db_per_class"] = np.load(outputs / "gain_db_per_class.npy")
    return curves


def _information_summary(nmi: pd.DataFrame) -> dict[str, Any]:
    """The overall intra and inter NMI (with CIs) per condition, for the summary and the report."""
    overall = nmi[nmi.scope == "overall"].drop(columns=["scope", "group"]).set_index("condition")
    return {"measure": "normalised mutual information of quantised log-mel maps (Palacio et al.)",
            **{condition: {k: float(v) for k, v in row.items()} for condition, row in overall.iterrows()}}


def _descriptor_shifts(per_clip: pd.DataFrame, conditions: tuple[str, ...], config: AnalyseConfig,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Per descriptor and reconstruction condition: the mean shift from the original, with a bootstrap CI."""
    from probe.analyses.stats import bootstrap_mean_ci, wilcoxon_per_column

    original = per_clip[per_clip.condition == "original"].set_index("clip_id")
    rows = []
    for condition in conditions:
        rec = per_clip[per_clip.condition == condition].set_index("clip_id").loc[original.index]
        diffs = (rec[list(spectral.DESCRIPTORS)] - original[list(spectral.DESCRIPTORS)]).to_numpy()
        mean, low, high = bootstrap_mean_ci(diffs, config.shifts.level, config.shifts.n_boot, rng)
        p_values = wilcoxon_per_column(diffs)
        for i, name in enumerate(spectral.DESCRIPTORS):
            rows.append({"condition": condition, "descriptor": name, "mean_original": float(original[name].mean()),
                         "mean_shift": mean[i], "ci_low": low[i], "ci_high": high[i], "p_value": p_values[i]})
    return pd.DataFrame(rows)


def _attributions(run: RunOutputs, classifier, tables: dict[str, pd.DataFrame], arrays: dict[str, np.ndarray],
                  config: AnalyseConfig, device: torch.device, say: Progress, cache: dict[tuple, Any]) -> dict[str, Any]:
    """Maps per method on originals and finetuned reconstructions; band mass; agreement with the band shifts.

    Maps of the originals depend only on the classifier and the clips, so runs that share both share them (`cache`).
    """
    from scipy.stats import spearmanr

    settings = config.attributions
    chosen = attribution.select_clips(run.targets, attribution.clip_budget(settings, device))
    targets = run.targets[chosen]
    mass_rows, agreement, maps_by_method = [], {}, {}
    mel_shift = tables["band_shift_overall"]
    mel_shift = mel_shift[(mel_shift.band_set == "mel") & (mel_shift.condition == "after")].sort_values("band_index")
    for method in settings.methods:
        for condition in settings.conditions:
            key = (run.classifier_key(), tuple(run.clip_ids), tuple(chosen), method)
            if condition == "original" and key in cache:
                maps = cache[key]
            else:
                say(f"{run.label}: {method} on {len(chosen)} {condition} clips")
                maps = attribution.attribution_maps(classifier, run.waveforms(condition)[chosen], targets, method, settings,
                                                    device)
                if condition == "original":
                    cache[key] = maps
            if condition == "original":
                maps_by_method[method] = maps
            band_mass = maps.sum(-1)  # (clips, mel bins)
            n, n_bins = band_mass.shape
            mass_rows.append(pd.DataFrame({
                "clip_id": np.repeat(np.asarray(run.clip_ids)[chosen], n_bins),
                "class": np.repeat(np.asarray(run.class_names)[targets], n_bins), "condition": condition, "method": method,
                "mel_bin": np.tile(np.arange(n_bins), n), "mass": band_mass.ravel(),
            }))
            pooled = attribution.pool_frames(maps, settings.max_frames)
            arrays[f"attribution_class_{method}_{condition}"] = spectral.group_means(
                pooled, targets, len(run.class_names)).astype(np.float32)
            shift = mel_shift.mean_shift_db.to_numpy()
            measured = np.isfinite(shift)  # bands no clip held energy in have no shift to rank
            if condition == "original" and len(shift) == n_bins and measured.sum() >= 3 and np.ptp(shift[measured]) > 0:
                rho, p_value = spearmanr(band_mass.mean(0)[measured], shift[measured])
                agreement[method] = {"spearman_rho": float(rho), "p_value": float(p_value), "bands": int(measured.sum())}
    tables["attribution_band_mass"] = pd.concat(mass_rows, ignore_index=True)

    say(f"{run.label}: randomisation sanity check on {min(settings.sanity_clips, len(chosen))} clips")
    sanity_idx = chosen[: settings.sanity_clips]
    sanity_key = (run.classifier_key(), tuple(run.clip_ids), tuple(sanity_idx), "sanity")
    if sanity_key not in cache:
        randomised = attribution.randomised_copy(classifier, settings.seed)
        sanity = {}
        for method in settings.methods:
            random_maps = attribution.attribution_maps(randomised, run.waveforms("original")[sanity_idx],
                                                       run.targets[sanity_idx], method, settings, device)
            similarity = attribution.rank_similarity(maps_by_method[method][: len(sanity_idx)], random_maps)
            sanity[method] = {"mean_rank_similarity": float(np.nanmean(similarity)),
                              "passed": bool(np.nanmean(similarity) < 0.5)}
        cache[sanity_key] = sanity
    sanity = cache[sanity_key]
    tables["attribution_sanity"] = pd.DataFrame([{"method": m, **v} for m, v in sanity.items()])
    note = ("positive rho: the bands the classifier attributes most are the bands its finetuned AE keeps loudest "
            "relative to the original")
    return {"clips": len(chosen), "methods": list(settings.methods), "agreement_with_band_shift": agreement,
            "agreement_note": note, "randomisation_check": sanity}


def _write_examples(run: RunOutputs, examples: list[int], folder: Path) -> list[dict[str, Any]]:
    """WAV files for the chosen clips: original, both reconstructions, and the residual (original - finetuned)."""
    from probe.audio import write_wav

    rows = []
    for position in examples:
        clip_id = run.clip_ids[position]
        stem = f"{position:04d}"
        files = {}
        for condition in run.conditions:
            files[condition] = write_wav(folder / f"{stem}_{condition}.wav", run.waveforms(condition)[position],
                                         run.sample_rate).name
        residual = np.asarray(run.originals[position]) - np.asarray(run.reconstructions["after"][position])
        files["residual"] = write_wav(folder / f"{stem}_residual.wav", residual, run.sample_rate).name
        target = int(run.targets[position])
        rows.append({"position": position, "clip_id": clip_id, "class": run.class_names[target],
                     "category": run.category_names[run.class_categories[target]], "files": files,
                     "predicted": {c: _class_name(run, int(np.argmax(logits[position]))) for c, logits in run.logits.items()}})
    return rows


def _class_name(run: RunOutputs, index: int) -> str:
    return run.class_names[index] if index < len(run.class_names) else str(index)


def _write_residuals(run: RunOutputs, folder: Path) -> None:
    from probe.audio import write_wav

    for position, clip_id in enumerate(run.clip_ids):
        residual = np.asarray(run.originals[position]) - np.asarray(run.reconstructions["after"][position])
        write_wav(folder / f"{Path(clip_id).stem}.wav", residual, run.sample_rate)


def _objective(run: RunOutputs) -> str:
    return _objective_field(run, "objective") or "cross-entropy"


def _objective_field(run: RunOutputs, key: str) -> Any:
    """A field of the run's objective.json (what it optimised, and a gain probe's floor), None if absent."""
    path = run.path / "outputs" / "objective.json"
    return json.loads(path.read_text()).get(key) if path.is_file() else None


def _jsonable(config: AnalyseConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(config).items() if k != "progress"}
