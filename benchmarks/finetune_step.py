"""One finetune-step throughput measurement, run in its own process so that peak memory is its own.

    python -m benchmarks.finetune_step --mode original|ours --classifier mn10 --seconds 1 --clips 32 --steps 6

`original`: the study's configuration: a DataLoader decoding and resampling every WAV file per item
(44.1 kHz files, as ESC-50 ships them), batch 4, fp32, eager. `ours`: probe finetune's path: the
audio decoded once into a device-resident tensor, micro-batches as large as given, bf16 autocast on
CUDA (`--precision`), optional torch.compile, channels-last classifier weights and activation checkpointing.
Both train the AE behind the same frozen classifier with AdamW. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FILE_RATE = 44100


def write_clips(folder: Path, clips: int, seconds: float) -> list[Path]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i in range(clips):
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * FILE_RATE))).astype(np.float32), FILE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


class DecodingDataset(torch.utils.data.Dataset):
    """The original code's data path: decode and resample one file per item."""

    def __init__(self, paths: list[Path], rate: int) -> None:
        self.paths, self.rate = paths, rate

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from probe.audio import load_audio

        audio = load_audio(self.paths[index], sample_rate=self.rate, mono=True)
        return audio.waveform[0], index % 50


def build(classifier_name: str, autoencoder_name: str, device: torch.device):
    from probe.models import load_classifier
    from probe.probes import load_autoencoder
    from probe.pipeline import ProbePipeline

    classifier = load_classifier(classifier_name, num_classes=50, device=device)
    autoencoder = load_autoencoder(autoencoder_name, device=device).train()
    pipeline = ProbePipeline(autoencoder, classifier).to(device)
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=3e-5, weight_decay=1e-5, fused=device.type == "cuda")
    return pipeline, optimizer


class Checkpointed(torch.nn.Module):
    """The pipeline with its activations recomputed in the backward pass (torch.utils.checkpoint): memory for time."""

    def __init__(self, pipeline: torch.nn.Module) -> None:
        super().__init__()
        self.pipeline = pipeline

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return checkpoint(self.pipeline, x, use_reentrant=False)


def step_flops(pipeline, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one forward and backward pass per clip (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(pipeline(x), y).backward()
    pipeline.autoencoder.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--mode", choices=["original", "ours"], required=True)
    parser.add_argument("--classifier", default="mn10")
    parser.add_argument("--autoencoder", default="tiny")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=4, help="micro-batch of `ours` (original: always 4)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="ours: autocast dtype (auto: bf16 on CUDA, fp32 on a CPU)")
    parser.add_argument("--channels-last", action="store_true", help="ours: the classifier's weights channels-last")
    parser.add_argument("--checkpointing", action="store_true",
                        help="ours: recompute the pipeline's activations in the backward pass instead of keeping them")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    from probe.devices import pick_device

    device = pick_device(args.device)
    torch.manual_seed(0)
    pipeline, optimizer = build(args.classifier, args.autoencoder, device)
    rate = pipeline.sample_rate
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_clips(Path(tmp), args.clips, args.seconds)
        if args.mode == "original":
            batch = 4
            loader = torch.utils.data.DataLoader(DecodingDataset(paths, rate), batch_size=batch, shuffle=True,
                                                 num_workers=args.workers, drop_last=True, persistent_workers=args.workers > 0)
            autocast = dict(device_type=device.type, enabled=False)
            model = pipeline

            def batches():
                while True:
                    for x, y in loader:
                        yield x.to(device), y.to(device)
        else:
            from probe.cache import decode_split
            from probe.data import Clip, ClipDataset

            batch = args.batch
            dataset = ClipDataset("bench", Path(tmp), tuple(Clip(p.name, p, i % 50, 1) for i, p in enumerate(paths)),
                                  tuple(f"c{i}" for i in range(50)), ("all",), tuple(0 for _ in range(50)))
            started = time.perf_counter()
            split = decode_split(dataset, rate, clip_seconds=args.seconds, cache_dir=Path(tmp) / "cache", progress=False)
            cache_seconds = time.perf_counter() - started
            data_x, data_y = split.as_tensor().to(device), torch.from_numpy(split.targets % 50).to(device)
            bf16 = args.precision == "bf16" or (args.precision == "auto" and cuda)
            autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
            if args.channels_last:
                pipeline.classifier.to(memory_format=torch.channels_last)
            model = Checkpointed(pipeline) if args.checkpointing else pipeline
            model = torch.compile(model) if args.compile and cuda else model
            generator = torch.Generator().manual_seed(0)

            def batches():
                while True:
                    for index in torch.randperm(len(data_x), generator=generator).split(batch):
                        if len(index) == batch:
                            yield data_x[index.to(device)], data_y[index.to(device)]

        stream = batches()
        x, y = next(stream)
        flops = step_flops(pipeline, x, y)

        def one_step() -> None:
            x, y = next(stream)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(**autocast):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        one_step()  # warm-up (and compilation)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for _ in range(args.steps):
            one_step()
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    clips_per_s = args.steps * batch / elapsed
    result = {
        "mode": args.mode, "classifier": args.classifier, "autoencoder": args.autoencoder, "seconds": args.seconds,
        "batch": batch, "steps": args.steps, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if cuda else None, "clips_per_s": round(clips_per_s, 3),
        "gflop_per_clip": round(flops / 1e9, 2), "achieved_tflop_s": round(flops * clips_per_s / 1e12, 4),
        "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20 if cuda
                                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "memory_kind": "CUDA max allocated" if cuda else "process max RSS",
    }
    if args.mode == "ours":
        result |= {"cache_seconds": round(cache_seconds, 2), "precision": "bf16" if bf16 else "fp32",
                   "compiled": bool(args.compile and cuda), "channels_last": args.channels_last,
                   "checkpointing": args.checkpointing}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
