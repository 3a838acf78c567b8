"""`python -m benchmarks --gpu`: the GPU figures, in one command that keeps to a time budget (default 450 s).

    python -m benchmarks --gpu [--budget-s 450] [--out DIR] [--no-append]
    python -m benchmarks --gpu --smoke --device cpu     # the same plan, tiny, on a CPU: checks its shape

In order of importance, each measurement in its own process (so its peak memory is its own):
1. finetuning throughput behind the full ArchiSound AE on 5 s clips, for mn10, dymn10 and PaSST: the original
   configuration (batch 4, fp32, per-file decoding) against ours eager, ours with torch.compile, and, for the CNNs,
   ours with channels-last weights; bf16 autocast; MFU against the card's dense bf16 peak;
2. a micro-batch sweep of PaSST with peak memory;
3. 10 s clips with and without activation checkpointing;
4. `probe analyse` of 400 clips with PaSST and every default attribution method.
What the budget leaves out is listed as not run, never guessed. The section appended to BENCHMARKS.md comes from
the results JSON alone.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOPPER_BF16_DENSE_TFLOPS = 989.0
"""Dense bf16 peak of the H100 SXM and the H200 (the same Hopper chip) by NVIDIA's datasheets: the MFU denominator."""


def plan(smoke: bool) -> list[dict[str, Any]]:
    """The measurements, most important first: each a finetune_step's flags or an analysis, with its section."""
    if smoke:
        classifiers, ae, seconds, batch, sweep, long_batch = ["small_cnn"], "tiny", 0.5, 4, (2, 4), 2
    else:
        classifiers, ae, seconds, batch, sweep, long_batch = ["mn10", "dymn10", "passt"], "random", 5.0, 32, (8, 16, 32, 64), 32
    steps = 2 if smoke else 10
    common = {"autoencoder": ae, "steps": steps}
    items: list[dict[str, Any]] = []
    for classifier in classifiers:
        base = {**common, "classifier": classifier, "seconds": seconds}
        items += [
            {"section": "finetune", "name": "original", **base, "mode": "original", "batch": 4, "clips": 32},
            {"section": "finetune", "name": "ours, eager", **base, "mode": "ours", "batch": batch, "clips": 4 * batch},
            {"section": "finetune", "name": "ours, compiled", **base, "mode": "ours", "batch": batch, "clips": 4 * batch,
             "compile": True},
        ]
        if classifier != "passt":  # channels-last concerns 2-D convolutions
            items.append({"section": "finetune", "name": "ours, channels-last", **base, "mode": "ours", "batch": batch,
                          "clips": 4 * batch, "channels_last": True})
    heaviest = classifiers[-1]
    items += [{"section": "micro-batch", "name": f"micro-batch {b}", **common, "classifier": heaviest, "mode": "ours",
               "seconds": seconds, "batch": b, "clips": 2 * b} for b in sweep]
    items += [{"section": "long clips", "name": f"{2 * seconds:g} s clips{', checkpointed' if c else ''}", **common,
               "classifier": heaviest, "mode": "ours", "seconds": 2 * seconds, "batch": long_batch,
               "clips": 2 * long_batch, "checkpointing": c} for c in (False, True)]
    items.append({"section": "analyse", "name": "probe analyse", "classifier": heaviest, "clips": 8 if smoke else 400,
                  "seconds": seconds})
    return items


def finetune_command(item: dict[str, Any], device: str) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.finetune_step", "--mode", item["mode"], "--classifier",
               item["classifier"], "--autoencoder", item["autoencoder"], "--seconds", str(item["seconds"]),
               "--clips", str(item["clips"]), "--steps", str(item["steps"]), "--batch", str(item["batch"]),
               "--device", device]
    flags = {"compile": "--compile", "channels_last": "--channels-last", "checkpointing": "--checkpointing"}
    return command + [flag for key, flag in flags.items() if item.get(key)]


def measure(item: dict[str, Any], device: str, timeout: float) -> dict[str, Any]:
    """One item in its own process, within `timeout` seconds; a failure is recorded with its reason."""
    if item["section"] == "analyse":
        from benchmarks.analyses_memory import measure as analyse

        return analyse(item["classifier"], item["clips"], item["seconds"], device, ["--attribution-store", "none"],
                       timeout=timeout)
    try:
        result = subprocess.run(finetune_command(item, device), capture_output=True, text=True, cwd=ROOT,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"over the {timeout:.0f} s left of the budget"}
    if result.returncode:
        error = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        return {"failed": "out of memory" if "OutOfMemoryError" in result.stderr else error[:160]}
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["gpu"]:
        measured["mfu"] = round(measured["achieved_tflop_s"] / HOPPER_BF16_DENSE_TFLOPS, 4)
    return measured


def run(smoke: bool, device: str, budget_s: float, results_path: Path | None = None) -> dict[str, Any]:
    """Every item of the plan that the budget allows, in order; the results as a dict (kept after each item)."""
    import torch

    cuda = device == "cuda"
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "driver": _driver() if cuda else None, "cpu_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "versions": {name: version(name) for name in ("torch", "torchaudio", "audio-probe")},
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]), "budget_s": budget_s, "items": []}
    started = time.perf_counter()
    for item in plan(smoke):
        left = budget_s - (time.perf_counter() - started)
        label = f"{item['section']}: {item['classifier']} {item['name']}"
        if left < 20:
            outcome = {"failed": "not run: the time budget was spent"}
        else:
            print(f"[{time.perf_counter() - started:5.0f} s] {label}", flush=True)
            outcome = measure(item, device, left)
        results["items"].append({**item, "result": outcome})
        if results_path:
            results_path.write_text(json.dumps(results, indent=2) + "\n")
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def _driver() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def markdown(results: dict[str, Any]) -> str:
    """The run as a BENCHMARKS.md section; nothing in it is typed by hand."""
    where = results["gpu"] or f"CPU ({results['machine']}, {results['cpu_threads']} threads)"
    lines = [f"## GPU figures, {where}, {results['date']}", "",
             f"Command: `{results['command']}`; driver {results['driver'] or 'unknown'}; versions: "
             + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
             + f"; budget {results['budget_s']:g} s, used {results['total_s']:g} s.", ""]
    items = results["items"]
    original = {i["classifier"]: i["result"] for i in items if i["section"] == "finetune" and i["name"] == "original"}
    lines += ["| classifier | configuration | clip | batch | clips/s | x original | peak memory (MB) | MFU |",
              "|---|---|---|---|---|---|---|---|"]
    for item in items:
        if item["section"] in ("finetune", "micro-batch", "long clips"):
            r = item["result"]
            if "failed" in r:
                lines.append(f"| {item['classifier']} | {item['name']} | {item['seconds']:g} s | {item['batch']} | "
                             f"{r['failed']} | | | |")
                continue
            base = original.get(item["classifier"], {})
            ratio = f"{r['clips_per_s'] / base['clips_per_s']:.2f}x" if base.get("clips_per_s") else ""
            mfu = f"{r['mfu']:.1%}" if "mfu" in r else ""
            lines.append(f"| {item['classifier']} | {item['name']} ({r.get('precision', 'fp32')}) | {item['seconds']:g} s "
                         f"| {r['batch']} | {r['clips_per_s']} | {ratio} | {r['peak_memory_mb']} | {mfu} |")
    for item in items:
        if item["section"] == "analyse":
            r = item["result"]
            lines += ["", f"`probe analyse`, {item['classifier']}, {item['clips']} clips of {item['seconds']:g} s, every "
                      "default method: " + (r["failed"] if "failed" in r else
                                            f"{r['wall_s']} s, peak RSS {r['peak_rss_mb']} MB"
                                            + (f", integrated gradients at {r['ig_steps']} steps" if r.get("ig_steps")
                                               else "") + ".")]
    lines.append("")
    return "\n".join(lines)


def main(args) -> None:
    """Run the plan on `args.device` and write the results JSON and, unless smoke or --no-append, BENCHMARKS.md."""
    import torch

    device = "cuda" if torch.cuda.is_available() and args.device in ("auto", "cuda") else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = args.out / f"{'smoke-' if args.smoke else ''}gpu-{stamp}-{device}.json"
    results = run(args.smoke, device, args.budget_s, path)
    path.write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    print(text)
    if not args.no_append and not args.smoke:
        with open(ROOT / "BENCHMARKS.md", "a") as handle:
            handle.write("\n" + text)
