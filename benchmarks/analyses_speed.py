"""Benchmark: `probe analyse` on an ESC-50-sized validation fold (400 clips x 5 s at 32 kHz).

Builds a run directory in `probe finetune`'s output format from synthetic audio (noise bursts and
harmonic tones; the "reconstruction" is a low-passed copy), with a seeded-random mn10 as the
classifier, then times (1) the spectral and band analyses and (2) each attribution method per clip.

    python benchmarks/analyses_speed.py [--clips 400] [--attribution-clips 8] [--device auto] [--out DIR]

Target: the spectral and band analyses of 400 clips in under 60 s on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build_run(folder: Path, clips: int, seconds: float = 5.0, rate: int = 32000, classifier: str = "mn10") -> Path:
    from probe.esc50 import CATEGORY_NAMES, CLASS_NAMES, category_of
    from probe.fileio import write_json
    from probe.models import load_classifier, save_classifier
    from probe.rundir import RunDir

    rng = np.random.default_rng(0)
    length = int(seconds * rate)
    t = np.arange(length) / rate
    targets = np.arange(clips) % 50
    originals = np.empty((clips, length), dtype=np.float32)
    for i, target in enumerate(targets):
        tone = np.sin(2 * np.pi * (200 + 40 * target) * t) * 0.3
        originals[i] = tone + 0.05 * rng.standard_normal(length)
    spectrum = np.fft.rfft(originals, axis=-1)
    spectrum[:, np.fft.rfftfreq(length, 1 / rate) > 4000] *= 0.1
    after = np.fft.irfft(spectrum, n=length, axis=-1).astype(np.float32)

    torch.manual_seed(0)  # seeded random weights
    model = load_classifier(classifier, num_classes=50, class_names=list(CLASS_NAMES))
    weights = save_classifier(model, folder / f"{classifier}_random.pt")
    run = RunDir(folder / "run")
    run.outputs.mkdir(parents=True)
    run.write_config({"classifier": classifier, "classifier_weights": str(weights), "autoencoder": "synthetic-lowpass", "fold": 1},
                     {"classifier_weights": str(weights)})
    for path, array in {run.originals_file: originals, run.reconstructions_file("before"): originals,
                        run.reconstructions_file("after"): after, run.targets_file: targets,
                        **{run.logits_file(c): rng.standard_normal((clips, 50)).astype(np.float32)
                           for c in ("original", "before", "after")}}.items():
        np.save(path, array)
    write_json(run.clip_ids_file, [f"clip-{i}" for i in range(clips)])
    write_json(run.classes_file, {"class_names": list(CLASS_NAMES), "category_names": list(CATEGORY_NAMES),
                                              "class_categories": [category_of(i) for i in range(50)], "sample_rate": rate})
    run.mark_done({"benchmark": True})
    return run.path


def main() -> None:
    from probe.analyses.analyse import AnalyseConfig, analyse
    from probe.analyses.attribution import ATTRIBUTION_METHODS, AttributionSettings, attribution_maps
    from probe.analyses.runs import load_run
    from probe.models import load_classifier
    from probe.devices import pick_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--attribution-clips", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="write the figures here as JSON")
    args = parser.parse_args()
    device = pick_device(args.device)
    results: dict[str, object] = {"clips": args.clips, "device": str(device), "threads": torch.get_num_threads(),
                                  "machine": platform.processor() or platform.machine(),
                                  "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    with tempfile.TemporaryDirectory() as tmp:
        run_path = build_run(Path(tmp), args.clips)
        started = time.perf_counter()
        analyse(AnalyseConfig(runs=(str(run_path),), out=str(Path(tmp) / "analysis"), transfer=False, device=str(device),
                              attributions=AttributionSettings(methods=()), progress=False,
                              allow_untrained=True))  # seeded weights stand in for trained ones
        results["spectral_and_band_analyses_s"] = round(time.perf_counter() - started, 2)
        run = load_run(run_path)
        classifier = load_classifier("mn10", run.classifier_weights(), 50, device=device)
        waveforms, targets = np.asarray(run.originals[: args.attribution_clips]), run.targets[: args.attribution_clips]
        per_clip = {}
        for method in ATTRIBUTION_METHODS:
            started = time.perf_counter()
            attribution_maps(classifier, waveforms, targets, method, AttributionSettings(), device)
            per_clip[method] = round((time.perf_counter() - started) / len(waveforms), 3)
        results["attribution_s_per_clip_mn10"] = per_clip
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
