"""`python -m benchmarks`: the original configuration against ours, side by side, plus analyses, predict and start-up.

    python -m benchmarks [--smoke] [--device auto] [--classifiers mn10,dymn10,passt] [--no-append]
    python -m benchmarks --gpu [--smoke] [--budget-s 450]      # the GPU figures (benchmarks/gpu.py)

On a CPU it uses 1 s clips and the tiny AE, so that it runs in minutes; on a GPU, the full ArchiSound
architecture on 5 s clips. Every figure comes from this run; the results are appended to
BENCHMARKS.md (machine, date, versions and this command) and kept as JSON in benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from benchmarks.gpu import HOPPER_BF16_DENSE_TFLOPS

ROOT = Path(__file__).resolve().parents[1]


def run_step(mode: str, classifier: str, autoencoder: str, seconds: float, clips: int, steps: int, batch: int,
             device: str, compile_: bool = False) -> dict:
    """One finetune_step measurement in a fresh process (so its peak memory is its own)."""
    command = [sys.executable, "-m", "benchmarks.finetune_step", "--mode", mode, "--classifier", classifier,
               "--autoencoder", autoencoder, "--seconds", str(seconds), "--clips", str(clips), "--steps", str(steps),
               "--batch", str(batch), "--device", device] + (["--compile"] if compile_ else [])
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def help_cold_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "probe.app.cli", "--help"], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - started


def predict_throughput(files: int, device: str) -> float:
    """`probe predict` over a folder of 1 s files with small_cnn, in files/s (start-up included)."""
    import tempfile

    import numpy as np
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(files):
            sf.write(Path(tmp) / f"{i}.wav", np.random.default_rng(i).standard_normal(32000).astype(np.float32) * 0.1, 32000)
        from probe.models import load_classifier, save_classifier

        weights = save_classifier(load_classifier("small_cnn", num_classes=50), Path(tmp) / "clf.pt")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "probe.app.cli", "predict", "--classifier", "small_cnn", "--weights", str(weights),
                        "--device", device, "--out", str(Path(tmp) / "p.csv"), tmp], capture_output=True, check=True, cwd=ROOT)
        return files / (time.perf_counter() - started)


def linear_fit(x: list[float], y: list[float]) -> float:
    """R^2 of a least-squares line through the points (1.0: perfectly linear)."""
    import numpy as np

    x_, y_ = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x_, y_, 1)
    residual = y_ - (slope * x_ + intercept)
    total = ((y_ - y_.mean()) ** 2).sum()
    return float(1 - (residual**2).sum() / total) if total > 0 else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description="probe benchmarks: original configuration vs ours", allow_abbrev=False)
    parser.add_argument("--smoke", action="store_true", help="seconds-long run (tests): one classifier, two steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--classifiers", default="mn10,dymn10,passt")
    parser.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="the folder for the results JSON (default: benchmarks/results)")
    parser.add_argument("--no-compile", action="store_true", help="measure our path eager on a GPU (no torch.compile)")
    parser.add_argument("--results", help="also keep the results JSON here, rewritten after every measurement "
                                          "(a run cut short keeps what it measured)")
    parser.add_argument("--render", metavar="JSON", help="append the BENCHMARKS.md section of an earlier run's JSON, and stop")
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU figures (compile, bf16, channels-last, micro-batch sweep, checkpointed long clips, "
                             "MFU, a 400-clip analysis) within --budget-s; with --smoke, their shape on a CPU")
    parser.add_argument("--budget-s", type=float, default=450.0, help="--gpu: seconds the whole plan may take")
    args = parser.parse_args()
    if args.gpu:
        from benchmarks import gpu

        gpu.main(args)
        return
    if args.render:
        results = json.loads(Path(args.render).read_text())
        with open(ROOT / "BENCHMARKS.md", "a") as handle:
            handle.write("\n" + markdown(results))
        return
    import torch

    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    device = "cuda" if cuda else "cpu"
    autoencoder, seconds = ("random", 5.0) if cuda else ("tiny", 1.0)
    classifiers = ["small_cnn"] if args.smoke else args.classifiers.split(",")
    steps, clips = (2, 8) if args.smoke else ((20, 200) if cuda else (6, 48))
    ours_batch = 4 if args.smoke else (32 if cuda else 16)
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
                     "gpu": torch.cuda.get_device_name(0) if cuda else None, "cpu_threads": torch.get_num_threads(),
                     "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "versions": {name: version(name) for name in ("torch", "torchaudio", "audio-probe")},
                     "command": " ".join(["python -m benchmarks", *sys.argv[1:]]), "finetune": [], "scaling": []}
    for classifier in classifiers:
        print(f"finetune step: {classifier}", flush=True)
        original = run_step("original", classifier, autoencoder, seconds, clips, steps, 4, device)
        try:
            ours = run_step("ours", classifier, autoencoder, seconds, clips, steps, ours_batch, device,
                            compile_=cuda and not args.no_compile)
        except SystemExit as failure:
            if not cuda:
                raise
            # torch.compile depends on the machine's compiler toolchain: measure eager rather than nothing, and say so
            print(f"torch.compile failed; measuring eager instead:\n{failure}", file=sys.stderr, flush=True)
            ours = {**run_step("ours", classifier, autoencoder, seconds, clips, steps, ours_batch, device), "compile_failed": True}
        row = {"classifier": classifier, "original": original, "ours": ours,
               "speedup": round(ours["clips_per_s"] / original["clips_per_s"], 2)}
        if cuda:
            row["mfu_ours"] = round(ours["achieved_tflop_s"] / HOPPER_BF16_DENSE_TFLOPS, 4)
        results["finetune"].append(row)
        _checkpoint(results, args.results)
    if not args.smoke:
        scaling_classifier = classifiers[0]
        for length in (0.5, 1.0, 2.0):
            print(f"scaling: {length * seconds:g} s clips", flush=True)
            results["scaling"].append({"axis": "clip seconds", "value": length * seconds, **_scaling_step(
                "ours", scaling_classifier, autoencoder, length * seconds, clips, steps, ours_batch, device)})
            _checkpoint(results, args.results)
        for batch in (4, 8, 16):
            print(f"scaling: micro-batch {batch}", flush=True)
            results["scaling"].append({"axis": "micro-batch", "value": batch, **_scaling_step(
                "ours", scaling_classifier, autoencoder, seconds, clips, steps, batch, device)})
            _checkpoint(results, args.results)
    results["help_cold_start_s"] = round(help_cold_start(), 3)
    _checkpoint(results, args.results)
    results["predict_files_per_s"] = round(predict_throughput(8 if args.smoke else 64, device), 2)
    _checkpoint(results, args.results)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("-", "")
    (out / f"{'smoke-' if args.smoke else ''}{stamp}-{device}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    print(text)
    if not args.no_append and not args.smoke:
        with open(ROOT / "BENCHMARKS.md", "a") as handle:
            handle.write("\n" + text)


def _scaling_step(*step_args) -> dict:
    """A scaling point; one that fails (out of memory, say) is recorded with its reason instead of ending the run."""
    try:
        return run_step(*step_args)
    except SystemExit as failure:
        reason = "out of memory" if "OutOfMemoryError" in str(failure) else str(failure).splitlines()[0][:120]
        return {"failed": reason, "batch": step_args[6]}


def _checkpoint(results: dict, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(results, indent=2) + "\n")


def markdown(results: dict) -> str:
    """The run as a BENCHMARKS.md section; nothing in it is typed by hand."""
    where = results["gpu"] or f"CPU ({results['machine']}, {results['cpu_threads']} threads)"
    lines = [f"## Finetune throughput, {where}, {results['date']}", "",
             f"Command: `{results['command']}`; versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), "",
             "| classifier | AE | clip | original: clips/s (batch 4, fp32, per-file decoding) | ours: clips/s (batch) | speed-up "
             "| peak memory original / ours (MB) | GFLOP per clip (fwd+bwd) |", "|---|---|---|---|---|---|---|---|"]
    for row in results["finetune"]:
        o, u = row["original"], row["ours"]
        lines.append(f"| {row['classifier']}{' (eager: compile failed)' if u.get('compile_failed') else ''} | {u['autoencoder']} | {u['seconds']:g} s | {o['clips_per_s']} | {u['clips_per_s']} "
                     f"({u['batch']}) | {row['speedup']}x | {o['peak_memory_mb']} / {u['peak_memory_mb']} ({u['memory_kind']}) "
                     f"| {u['gflop_per_clip']} |")
        if "mfu_ours" in row:
            lines[-1] += f" MFU {row['mfu_ours']:.1%}"
    if results["scaling"]:
        lines += ["", "| scaling axis | value | clips/s | peak memory (MB) |", "|---|---|---|---|"]
        shown = lambda r: r.get("seconds", r["value"]) if r["axis"] == "clip seconds" else r["value"]  # noqa: E731
        lines += [f"| {r['axis']} | {shown(r)} | {r['clips_per_s']} | {r['peak_memory_mb']} |" if "failed" not in r else
                  f"| {r['axis']} | {r['value']} | failed: {r['failed']} (batch {r['batch']}) | |" for r in results["scaling"]]
        for axis in ("clip seconds", "micro-batch"):
            rows = [r for r in results["scaling"] if r["axis"] == axis and "failed" not in r]
            if len(rows) < 3:  # a line through two points fits by construction
                continue
            time_per_step = [r["batch"] / r["clips_per_s"] for r in rows]
            lines.append(f"\nTime per step against {axis}: linear fit R^2 = {linear_fit([shown(r) for r in rows], time_per_step):.3f}.")
    if "help_cold_start_s" in results:
        lines += ["", f"`probe --help` cold start: {results['help_cold_start_s']} s."]
    if "predict_files_per_s" in results:
        lines += ["", f"`probe predict` (small_cnn, 1 s files, start-up included): {results['predict_files_per_s']} files/s."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
