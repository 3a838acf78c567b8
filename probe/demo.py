"""`probe demo`, offline on a CPU.

For now a smoke run of the foundation: it writes the synthetic dataset, decodes it through
the cache, fits a small CNN for a few epochs, and runs the study's chain (tiny autoencoder,
not yet finetuned, in front of the frozen classifier) on the validation fold. The full
demo (finetuning, analyses, report, planted answer) grows here as those parts land.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from probe.fileio import write_json


@dataclass(frozen=True)
class DemoConfig:
    out: str = "demo-out"
    seed: int = 0
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-3


def run_demo(config: DemoConfig) -> Path:
    """Run the smoke demo; returns the path of its summary."""
    from probe.cache import decode_split
    from probe.data import load_esc50
    from probe.models.autoencoders import load_autoencoder
    from probe.models.classifiers import load_classifier, save_classifier
    from probe.pipeline import ProbePipeline
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset

    started = time.perf_counter()
    out = Path(config.out)
    torch.manual_seed(config.seed)
    synthetic = SyntheticConfig(seed=config.seed)
    print(f"[1/4] synthetic dataset ({synthetic.num_classes} classes, {synthetic.sample_rate} Hz) in {out / 'data'}")
    dataset = load_esc50(write_synthetic_dataset(out / "data", synthetic))
    train_set, val_set = dataset.split()
    train = decode_split(train_set, synthetic.sample_rate, cache_dir=out / "cache")
    val = decode_split(val_set, synthetic.sample_rate, cache_dir=out / "cache")

    print(f"[2/4] fitting a small CNN on {len(train)} clips for {config.epochs} epochs")
    classifier = load_classifier(
        "small_cnn", num_classes=dataset.num_classes, class_names=list(dataset.class_names),
        frozen=False, sample_rate=synthetic.sample_rate,
    )
    _fit(classifier, train.as_tensor(), torch.from_numpy(train.targets), config)
    save_classifier(classifier, out / "classifier.pt")

    print("[3/4] running the chain: tiny autoencoder (untrained) -> frozen classifier")
    autoencoder = load_autoencoder("tiny", sample_rate=synthetic.sample_rate, seed=config.seed)
    pipeline = ProbePipeline(autoencoder, classifier).eval()
    waveforms = val.as_tensor()
    with torch.inference_mode():
        original = pipeline.classifier(waveforms).argmax(-1).numpy()
        through_ae = pipeline(waveforms).argmax(-1).numpy()
    summary = {
        "config": asdict(config),
        "validation_clips": len(val),
        "accuracy_originals": float((original == val.targets).mean()),
        "accuracy_through_untrained_autoencoder": float((through_ae == val.targets).mean()),
        "chance": 1.0 / dataset.num_classes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = out / "summary.json"
    write_json(path, summary)
    print(f"[4/4] accuracy on originals {summary['accuracy_originals']:.3f}, "
          f"through the untrained AE {summary['accuracy_through_untrained_autoencoder']:.3f} "
          f"(chance {summary['chance']:.3f}); {summary['seconds']} s")
    return path


def _fit(classifier: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, config: DemoConfig) -> None:
    from tqdm import tqdm

    optimizer = torch.optim.AdamW(classifier.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    classifier.frontend.eval()  # keep the mel deterministic; only the CNN trains
    for _ in tqdm(range(config.epochs), desc="epochs", unit="epoch", leave=False):
        classifier.net.train()
        for batch in torch.randperm(len(x), generator=generator).split(config.batch_size):
            loss = torch.nn.functional.cross_entropy(classifier(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    classifier.eval()
