"""Benchmark: peak memory and time of `probe analyse` with every default method, against the number of clips.

    python -m benchmarks.analyses_memory [--classifiers mn10,dymn10,passt] [--clips 16,64,400] [--seconds 5]
                                         [--device cpu] [--out results.json]

Each point builds a run directory in `probe finetune`'s format (synthetic 5 s clips at 32 kHz; the
"reconstruction" a low-passed copy; the classifier with seeded random weights in its published format)
and runs `probe analyse` on it in a fresh process, whose peak RSS (and, on CUDA, peak allocated GPU
memory is not included) is read from the kernel. Goal: peak RSS under 6 GB on the CPU at any
clip count, and time linear in clips.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(classifier: str, clips: int, seconds: float, device: str, extra: list[str],
            timeout: float | None = None) -> dict:
    """One `probe analyse` in its own process: wall time and peak RSS (within `timeout` seconds, if given)."""
    from benchmarks.analyses_speed import build_run

    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(Path(tmp), clips, seconds=seconds, classifier=classifier)
        started = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, "-c", PEAK_REPORTING_CLI, "analyse", str(run), "--out",
                                     str(Path(tmp) / "a"), "--device", device, "--quiet", "--no-transfer",
                                     "--allow-untrained", *extra], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"classifier": classifier, "clips": clips, "failed": f"over the {timeout:.0f} s allowed"}
        elapsed = time.perf_counter() - started
        if result.returncode:
            return {"classifier": classifier, "clips": clips, "failed": result.stderr.strip().splitlines()[-1][:200]}
        steps = integrated_gradient_steps(Path(tmp) / "a")
    peak_kb = int(result.stderr.strip().splitlines()[-1].split()[-1])
    return {"classifier": classifier, "clips": clips, "seconds": seconds, "wall_s": round(elapsed, 1),
            "peak_rss_mb": round(peak_kb / 1024, 1), **steps}


def integrated_gradient_steps(analysis: Path) -> dict:
    """The integrated-gradient steps the analysis used and their median completeness error (from its run's summary);
    empty where it computed none."""
    for summary in sorted(analysis.glob("*/summary.json")):
        attributions = json.loads(summary.read_text()).get("attributions") or {}
        if attributions.get("ig_steps"):
            completeness = attributions.get("completeness") or {}
            return {"ig_steps": attributions["ig_steps"],
                    "ig_median_relative_error": completeness.get("median_relative_error")}
    return {}


PEAK_REPORTING_CLI = (
    "import resource, sys\n"
    "from probe.app.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak rss kB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
"""`probe` in a process that reports its own peak RSS on its last stderr line."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--classifiers", default="mn10,dymn10,passt")
    parser.add_argument("--clips", default="16,64,400")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the results here as JSON")
    parser.add_argument("analyse_args", nargs="*", help="further `probe analyse` flags (after --)")
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "device": args.device,
               "cores": os.cpu_count(), "analyse_args": args.analyse_args, "points": []}
    for classifier in args.classifiers.split(","):
        for clips in map(int, args.clips.split(",")):
            point = measure(classifier, clips, args.seconds, args.device, args.analyse_args)
            print(json.dumps(point), flush=True)
            results["points"].append(point)
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
