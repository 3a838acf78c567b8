"""`probe compare`: the analyses for any pair of original and processed audio (a codec, a denoiser, an AE...).

Files pair up by relative path (the extension may differ: a codec turns x.wav into x.opus). Both
sides are resampled to one rate, down-mixed to mono, aligned by cross-correlation when the
processed side is delayed, and trimmed to the shorter side; clips are then zero-padded to a common
length (zeros on both sides change no band's shift). The processed audio is the "after" condition
of the tables, labelled "processed" in reports. Unpaired and unreadable files are listed, never
silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probe.analyses.config import CompareConfig  # noqa: F401 (re-exported)
from probe.analyses.runs import RunOutputs
from probe.errors import ConfigError, ProbeError


@dataclass
class Pairing:
    pairs: list[tuple[str, Path, Path]] = field(default_factory=list)
    """(relative id, original, processed)."""
    unpaired_originals: list[str] = field(default_factory=list)
    unpaired_processed: list[str] = field(default_factory=list)


def pair_files(originals: Path, processed: Path) -> Pairing:
    """Pair audio files by relative path, ignoring the extension."""
    from probe.audio import is_audio_file

    for folder in (originals, processed):
        if not folder.is_dir():
            raise ConfigError(folder, "not a folder of audio files")
    index = lambda root: {p.relative_to(root).with_suffix("").as_posix(): p  # noqa: E731
                          for p in sorted(root.rglob("*")) if is_audio_file(p)}
    left, right = index(originals), index(processed)
    if not left:
        raise ConfigError(originals, "no audio files")
    pairing = Pairing()
    for key, path in left.items():
        if key in right:
            pairing.pairs.append((key, path, right[key]))
        else:
            pairing.unpaired_originals.append(str(path))
    pairing.unpaired_processed = [str(path) for key, path in right.items() if key not in left]
    return pairing


def estimate_lag(original: np.ndarray, processed: np.ndarray, max_lag: int) -> int:
    """Samples by which `processed` lags `original` (positive: it comes later), by FFT cross-correlation."""
    n = len(original) + len(processed)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(processed, size) * np.conj(np.fft.rfft(original, size))
    correlation = np.fft.irfft(spectrum, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([correlation[: max_lag + 1], correlation[size - max_lag:]])
    return int(lags[np.argmax(values)])


def align(original: np.ndarray, processed: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Undo the processed side's delay, then trim both to the shorter."""
    lag = estimate_lag(original, processed, max_lag) if max_lag > 0 else 0
    if lag > 0:
        processed = processed[lag:]
    elif lag < 0:
        original = original[-lag:]
    length = min(len(original), len(processed))
    return original[:length], processed[:length], lag


def build_outputs(config: CompareConfig, classifier=None) -> tuple[RunOutputs, list[dict[str, Any]]]:
    """The pairs as a run's outputs, plus the table of skipped files and lags."""
    from probe.audio import load_audio

    pairing = pair_files(Path(config.originals), Path(config.processed))
    rate = config.sample_rate or (classifier.sample_rate if classifier is not None else None)
    records: list[dict[str, Any]] = [{"file": f, "status": "skipped", "reason": "no processed counterpart"}
                                     for f in pairing.unpaired_originals]
    records += [{"file": f, "status": "skipped", "reason": "no original counterpart"} for f in pairing.unpaired_processed]
    kept: list[tuple[str, np.ndarray, np.ndarray]] = []
    for key, original_path, processed_path in pairing.pairs:
        try:
            original = load_audio(original_path, sample_rate=rate, mono=True, max_seconds=config.max_seconds)
            rate = rate or original.sample_rate
            processed = load_audio(processed_path, sample_rate=rate, mono=True, max_seconds=config.max_seconds)
        except ProbeError as exc:
            records.append({"file": str(exc.path or original_path), "status": "skipped", "reason": exc.reason})
            continue
        a, b, lag = align(original.waveform[0].numpy(), processed.waveform[0].numpy(),
                          int(config.max_lag_seconds * rate))
        if len(a) == 0:
            records.append({"file": str(processed_path), "status": "skipped", "reason": "nothing left after alignment"})
            continue
        kept.append((key, a, b))
        records.append({"file": str(original_path), "status": "paired", "processed": str(processed_path),
                        "lag_samples": lag, "lag_ms": 1000.0 * lag / rate, "seconds": len(a) / rate})
    if not kept:
        raise ConfigError(Path(config.originals), "no readable pairs of original and processed files")

    classes = [key.split("/")[0] if "/" in key else "all" for key, _, _ in kept]
    class_names = sorted(set(classes))
    if config.categories_csv:
        from probe.data import read_categories_csv

        category_names, class_categories = read_categories_csv(Path(config.categories_csv), class_names)
    else:
        category_names, class_categories = ("all",), tuple(0 for _ in class_names)
    if classifier is not None and list(classifier.class_names) != class_names and len(class_names) > 1:
        raise ConfigError(Path(config.originals), f"the class folders {class_names[:4]} do not match the classifier's "
                                                  f"classes {list(classifier.class_names)[:4]}")
    length = max(len(a) for _, a, _ in kept)
    pad = lambda x: np.pad(x, (0, length - len(x))).astype(np.float32)  # noqa: E731
    originals = np.stack([pad(a) for _, a, _ in kept])
    processed = np.stack([pad(b) for _, _, b in kept])
    targets = np.array([class_names.index(c) for c in classes]) if classifier is None or len(class_names) > 1 \
        else np.zeros(len(kept), dtype=np.int64)
    logits: dict[str, np.ndarray] = {}
    if classifier is not None:
        from probe.analyses.transfer import classifier_logits
        from probe.devices import pick_device

        device = pick_device(config.device)
        logits = {"original": classifier_logits(classifier, originals, rate, device),
                  "after": classifier_logits(classifier, processed, rate, device)}
        if len(class_names) == 1:  # no class folders: score agreement with the classifier's own predictions
            targets = logits["original"].argmax(1)
            class_names = list(classifier.class_names)
            class_categories = tuple(0 for _ in class_names)
    run = RunOutputs(
        path=Path(config.processed), label=Path(config.processed).name or "processed",
        config={"classifier": config.classifier, "classifier_weights": config.classifier_weights,
                "classifier_label": config.classifier or "no classifier",
                "setting_label": Path(config.processed).name, "autoencoder": Path(config.processed).name},
        provenance={}, sample_rate=int(rate), class_names=list(class_names), category_names=list(category_names),
        class_categories=list(class_categories), clip_ids=[key for key, _, _ in kept], targets=targets,
        originals=originals, reconstructions={"after": processed}, logits=logits,
        condition_labels={"original": "original", "after": "processed"},
    )
    return run, records


def compare(config: CompareConfig, analyse_config) -> Path:
    """Pair, align and analyse; writes the analysis folder (readable by `probe report`) plus `pairs.csv`. Random
    draws come from the analysis' seed; the global generators are as they were afterwards."""
    from probe.analyses.analyse import check_names
    from probe.seeding import derive_seed, seeded

    from probe.outputs import check_output

    check_names(analyse_config)
    check_output(analyse_config.out, "analysis",
                 (config.originals, config.processed, config.classifier_weights, config.categories_csv))
    with seeded(derive_seed(analyse_config.seed, "compare")):
        return _compare(config, analyse_config)


def _compare(config: CompareConfig, analyse_config) -> Path:
    import pandas as pd

    from probe.analyses.analyse import write_analysis, write_table
    from probe.devices import pick_device
    from probe.progress import Progress, reporting

    classifier = None
    if config.classifier:
        from probe.download import resolve_weights
        from probe.models.classifiers import load_classifier, require_trained

        weights = resolve_weights(config.classifier_weights) if config.classifier_weights else None  # a path or a name
        classifier = load_classifier(config.classifier, weights, device=pick_device(config.device),
                                     **config.classifier_options)
        require_trained(classifier, analyse_config.allow_untrained)
    say = Progress(analyse_config.progress)
    say(f"pairing {config.originals} with {config.processed}")
    run, records = build_outputs(config, classifier)
    skipped = sum(r["status"] == "skipped" for r in records)
    say(f"{len(run.clip_ids)} pairs, {skipped} files skipped (listed in pairs.csv)")
    with reporting(say):
        out = write_analysis([run], {run.label: classifier}, analyse_config, pick_device(config.device), say)
    write_table(out, "pairs", pd.DataFrame(records))
    return out
