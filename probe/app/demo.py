"""`probe demo`: the whole study end to end, offline, with a planted answer it must find.

Synthetic mode (the default, minutes on a CPU): an ESC-like dataset whose classes are coded in
a low band (< 2 kHz) and a high band (> 4 kHz); three small CNNs taught to rely on the low band,
the high band, or both (for the first two, the other band of every training clip carries a random
class, so it holds no information); behind each, the study's AE finetuning from a reconstruction-
pretrained and from a random start, the energy-penalised AE and the spectral-gain probe; then the
analyses, the HTML report, and `planted.json`: whether each probe recovered each planted band.

Study mode (`--data esc50:DIR --weights-dir DIR`): the study's grid, mn10, dymn10 and PaSST behind
the ESC-50-pretrained and the random AE, with the same analyses and report.

Like the CLI, this module composes the subpackages (train, analyses, reports); it is an entry point.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from probe.errors import ConfigError
from probe.fileio import safe_name, write_json

LOW, HIGH = "low", "high"


@dataclass(frozen=True)
class DemoConfig:
    out: str = "demo-out"
    seed: int = 0
    data: str | None = None
    """None: the synthetic demo. esc50:DIR: the study's grid on ESC-50 (needs --weights-dir)."""
    weights_dir: str | None = None
    device: str = "auto"
    classifier_epochs: int = 14
    pretrain_epochs: int = 24
    finetune_epochs: int = 6
    gain_epochs: int = 8
    energy_penalty: float = 1.0
    attribution_clips: int = 40
    progress: bool = True


@dataclass(frozen=True)
class PlantedClassifier:
    name: str
    relies_on: str | None
    """LOW, HIGH, or None (uses both bands)."""


PLANTED = (PlantedClassifier("low_band_cnn", LOW), PlantedClassifier("high_band_cnn", HIGH),
           PlantedClassifier("full_band_cnn", None))
CONTROL = "identity (control)"
"""The no-autoencoder control: shown beside the probes; it points at no band by construction."""
TINY_AE_WIDTH = 16
"""Twice the tiny AE's default width: after 24 epochs at a constant rate it reconstructs both bands about
20 dB above its error (width 8: 19 dB low, 13 dB high; a cosine decay: 16 dB high), and a probe can only
show that a band is kept when the AE reconstructs it in the first place."""
RECOVERY_DB = 6.0
"""A probe recovers the planted band when the high-minus-low contrast has the planted sign and at least this size."""


class Steps:
    """Numbered progress lines with elapsed time."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled, self.started = total, 0, enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.done += 1
        if self.enabled:
            print(f"[{self.done}/{self.total}] {message}  ({time.perf_counter() - self.started:.0f} s)", flush=True)


def run_demo(config: DemoConfig) -> Path:
    """Run the demo (synthetic, or the study's grid with `data`); returns the report's index.html."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if config.data:
        return _study(config)
    return _synthetic(config)


# --- the synthetic demo with a planted answer --------------------------------------------------


def _synthetic(config: DemoConfig) -> Path:
    from probe.data import load_esc50
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset
    from probe.train.finetune import FinetuneConfig, finetune
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    out = Path(config.out)
    step = Steps(7, config.progress)
    synthetic = SyntheticConfig(seed=config.seed)
    step(f"synthetic dataset: {synthetic.num_classes} classes in 5 categories, {synthetic.sample_rate} Hz, "
         f"low band {synthetic.low_band_hz[0]:g}-{synthetic.low_band_hz[1]:g} Hz, high band "
         f"{synthetic.high_band_hz[0]:g}-{synthetic.high_band_hz[1]:g} Hz -> {out / 'data'}")
    root = write_synthetic_dataset(out / "data", synthetic)
    dataset = load_esc50(root)
    data = f"esc50:{root}"

    step("training three small CNNs: one relies on the low band, one on the high band, one on both")
    classifiers = {planted.name: _planted_classifier(planted, dataset, synthetic, out / "classifiers", config)
                   for planted in PLANTED}

    step(f"pretraining the tiny AE by reconstruction ({config.pretrain_epochs} epochs)")
    ae_options = {"sample_rate": synthetic.sample_rate, "channels": 1, "seed": config.seed, "width": TINY_AE_WIDTH}
    pretrained = pretrain_autoencoder(PretrainConfig(
        autoencoder="tiny", ae_options=ae_options, data=data, out=str(out / "runs" / "pretrain-ae"),
        epochs=config.pretrain_epochs, learning_rate=3e-3, batch_size=8, micro_batch_size=None, scheduler="none",
        seed=config.seed, device=config.device, progress=False))

    settings = {
        "pretrained AE": dict(autoencoder=str(pretrained.best)),
        "random AE": dict(autoencoder="tiny", ae_options=ae_options),
        f"pretrained AE + energy {config.energy_penalty:g}": dict(autoencoder=str(pretrained.best),
                                                                   energy_penalty=config.energy_penalty),
        "spectral gain": dict(autoencoder="spectral_gain", gain_penalty=0.1, learning_rate=0.05, epochs=config.gain_epochs),
        CONTROL: dict(autoencoder="identity", epochs=0),
    }
    step(f"finetuning {len(settings)} probes behind each classifier ({len(settings) * len(classifiers)} runs)")
    base = FinetuneConfig(data=data, epochs=config.finetune_epochs, learning_rate=3e-3, batch_size=8, seed=config.seed,
                          device=config.device, classifier="small_cnn", progress=False)
    runs = []
    for name, weights in classifiers.items():
        for setting, overrides in settings.items():
            folder = out / "runs" / f"{name}--{safe_name(setting)}"
            run = finetune(replace(base, classifier_weights=str(weights), classifier_label=name, setting_label=setting,
                                   out=str(folder), **overrides), resume=True)
            runs.append(run.path)
            if config.progress:
                done = json.loads(run.done.read_text())
                best = done["best_val_accuracy"]
                shown = f"best val accuracy {best:.3f}" if best is not None else \
                    f"nothing trained; val accuracy {done['bare_classifier_accuracy']:.3f}"
                print(f"    {name} / {setting}: {shown}", flush=True)

    return _analyse_and_report(config, out, runs, step, planted=True)


def _planted_classifier(planted: PlantedClassifier, dataset, synthetic, folder: Path, config: DemoConfig) -> Path:
    """Train (or reuse) a small CNN whose reliance on a band is planted through its training clips.

    The band it must not use carries a random class at a random level relative to the used band (-50 to
    +6 dB), so neither its content nor its presence informs. The used band keeps its level, and no level
    augmentation is applied: a classifier that stops caring how loud its band is gives an energy
    penalty a free way out (scaling everything down) instead of dropping the unused band. Additive
    noise (20-55 dB below the clip), drawn afresh for every batch, keeps it from hinging on silence in
    unused regions, which an autoencoder in front would otherwise disturb.
    """
    from probe.models.classifiers import load_classifier, save_classifier
    from probe.synthetic import PEAK, render_bands

    path = folder / f"{planted.name}.pt"
    if path.is_file():
        return path
    rng = np.random.default_rng([config.seed, PLANTED.index(planted)])
    train, _ = dataset.split()
    targets = np.array([clip.target for clip in train.clips])
    num_classes = dataset.num_classes

    def render(target: int) -> np.ndarray:
        other = int(rng.integers(num_classes))
        low_class, high_class = {LOW: (target, other), HIGH: (other, target), None: (target, target)}[planted.relies_on]
        low, high = render_bands(low_class, high_class, rng, synthetic)
        unused_db = rng.uniform(-50, 6)
        low_db, high_db = {LOW: (0.0, unused_db), HIGH: (unused_db, 0.0), None: (0.0, 0.0)}[planted.relies_on]
        clip = low * 10 ** (low_db / 20) + high * 10 ** (high_db / 20)
        return (PEAK * clip / (np.abs(clip).max() + 1e-9)).astype(np.float32)

    x = torch.from_numpy(np.stack([render(int(t)) for t in targets]))
    y = torch.from_numpy(targets)
    torch.manual_seed(config.seed)
    classifier = load_classifier("small_cnn", num_classes=num_classes, class_names=list(dataset.class_names),
                                 frozen=False, sample_rate=synthetic.sample_rate, pooling="time")
    optimizer = torch.optim.AdamW(classifier.net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(config.seed)
    classifier.frontend.eval()  # a deterministic mel; only the CNN trains
    for _ in range(config.classifier_epochs):
        classifier.net.train()
        for batch in torch.randperm(len(x), generator=generator).split(16):
            clips = x[batch]
            snr_db = 20 + 35 * torch.rand(len(batch), 1, generator=generator)
            noise_rms = clips.pow(2).mean(-1, keepdim=True).sqrt() * 10 ** (-snr_db / 20)
            clips = clips + noise_rms * torch.randn(clips.shape, generator=generator)
            loss = torch.nn.functional.cross_entropy(classifier(clips), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return save_classifier(classifier.eval(), path)


def _analyse_and_report(config: DemoConfig, out: Path, runs: list[Path], step: Callable[[str], None],
                        planted: bool) -> Path:
    from probe.analyses.analyse import AnalyseConfig, analyse
    from probe.analyses.attribution import AttributionSettings
    from probe.analyses.bandshift import ShiftSettings
    from probe.reports.build import ReportConfig, build_report

    analysis = out / "analysis"
    step(f"analysing {len(runs)} runs -> {analysis}")
    if not _complete(analysis, runs):
        analyse(AnalyseConfig(
            runs=tuple(str(r) for r in runs), out=str(analysis), shifts=ShiftSettings(n_boot=1000),
            attributions=AttributionSettings(methods=("integrated_gradients", "saliency"), conditions=("original",),
                                             max_clips=config.attribution_clips),
            seed=config.seed, device=config.device, progress=False))
    notes: tuple[str, ...] = ()
    if planted:
        verdicts = planted_answer(analysis)
        write_json(out / "planted.json", verdicts)
        notes = (PLANTED_INTRO, *describe_planted(verdicts))
        if config.progress:
            for line in describe_planted(verdicts):
                print(f"    {line}", flush=True)
    step(f"writing the report -> {out / 'report'}")
    index = build_report(ReportConfig((str(analysis),), str(out / "report"), band_set="third_octave", notes=notes,
                                      progress=False))
    return index


def _complete(analysis: Path, runs: list[Path]) -> bool:
    """An analysis is reused when it covers exactly these runs and is newer than every one of them."""
    summary = analysis / "summary.json"
    if not summary.is_file():
        return False
    covered = {entry["path"] for entry in json.loads(summary.read_text())["runs"]}
    newest_run = max((run / "done.json").stat().st_mtime for run in runs)
    return covered == {str(run) for run in runs} and summary.stat().st_mtime > newest_run


# --- reading the planted answer ------------------------------------------------------------------


def _finetuning_change(per_clip: Any) -> Any:
    """Per clip and third-octave band: the finetuned shift minus the untuned one (dB), NaN where the clip's
    band held next to nothing (the analysis' per-clip floor)."""
    thirds = per_clip[per_clip.band_set == "third_octave"]
    shifts = thirds.pivot_table(index=["clip_id", "band_index"], columns="condition", values="shift_db", dropna=False)
    centres = thirds.drop_duplicates("band_index").set_index("band_index").centre_hz
    change = (shifts["after"] - shifts["before"]).rename("change_db").reset_index()
    return change.assign(centre_hz=change.band_index.map(centres))


def _cell_mean(change: Any, low_hz: float, high_hz: float) -> float:
    """Mean change over every (clip, band) cell whose band centre lies in [low_hz, high_hz] and that held energy."""
    return float(change[(change.centre_hz >= low_hz) & (change.centre_hz <= high_hz)].change_db.mean())


def planted_answer(analysis: Path) -> dict[str, Any]:
    """Per classifier and probe: the high-minus-low contrast in dB, and whether it points at the planted band.

    Probes: what finetuning changed, measured against the untuned control: per clip and third-octave
    band, the energy shift of the finetuned output minus that of the same probe before finetuning (the
    AE's own bias cancels; for the spectral gain the control is the identity), averaged over the
    (clip, band) cells inside each band that held energy; a band a clip leaves nearly empty says
    nothing about what was kept, and weighting bands equally would let those few clips count as much
    as the many that carry the class. Attributions: the integrated-gradients mass in the mel bins
    inside each band, as a ratio in dB. A positive contrast means the probe favoured the high band.
    """
    import pandas as pd

    from probe.synthetic import SyntheticConfig

    synthetic = SyntheticConfig()
    (low_lo, low_hi), (high_lo, high_hi) = synthetic.low_band_hz, synthetic.high_band_hz
    results: dict[str, Any] = {"recovery_threshold_db": RECOVERY_DB, "classifiers": {}}
    summary = json.loads((analysis / "summary.json").read_text())
    for entry in summary["runs"]:
        folder = analysis / entry["folder"]
        run_summary = json.loads((folder / "summary.json").read_text())
        classifier, setting = run_summary["classifier"], run_summary["autoencoder"]
        relies_on = next((p.relies_on for p in PLANTED if p.name == classifier), None)
        change = _finetuning_change(pd.read_parquet(folder / "band_shift_per_clip.parquet"))
        probes = results["classifiers"].setdefault(classifier, {"relies_on": relies_on, "probes": {}})["probes"]
        contrast = _cell_mean(change, high_lo, high_hi) - _cell_mean(change, low_lo, low_hi)
        probes[setting] = _verdict(0.0 if np.isnan(contrast) else contrast, None if setting == CONTROL else relies_on)
        if setting == "pretrained AE":  # attributions do not depend on the probe: read them once per classifier
            mass = pd.read_parquet(folder / "attribution_band_mass.parquet")
            mass = mass[(mass.method == "integrated_gradients") & (mass.condition == "original")]
            overall = pd.read_parquet(folder / "band_shift_overall.parquet")
            mel = overall[(overall.band_set == "mel") & (overall.condition == "after")][["band_index", "low_hz", "high_hz"]]
            per_bin = mass.groupby("mel_bin")["mass"].mean().rename_axis("band_index").reset_index().merge(mel)
            low = per_bin[(per_bin.low_hz >= low_lo) & (per_bin.high_hz <= low_hi)]["mass"].sum()
            high = per_bin[(per_bin.low_hz >= high_lo) & (per_bin.high_hz <= high_hi)]["mass"].sum()
            probes["attribution (integrated gradients)"] = _verdict(10 * np.log10(high / low), relies_on)
    return results


PLANTED_INTRO = (
    "The planted answer: low_band_cnn was trained to rely on the low band (150-1800 Hz), high_band_cnn on the high band "
    "(4500-7200 Hz), full_band_cnn on both. Each line is a probe's high-minus-low contrast (dB), measured against its "
    "untuned control; 'recovered' means it points at the planted band by at least 6 dB.")


def _verdict(contrast_db: float, relies_on: str | None) -> dict[str, Any]:
    recovered = None
    if relies_on is not None:
        sign = 1 if relies_on == HIGH else -1
        recovered = bool(sign * contrast_db >= RECOVERY_DB)
    return {"high_minus_low_db": round(float(contrast_db), 2), "recovered": recovered}


def describe_planted(results: dict[str, Any]) -> list[str]:
    """One line per classifier and probe, then each probe's tally over the classifiers with a planted band."""
    lines, tally = [], {}
    for classifier, entry in results["classifiers"].items():
        planted = f"relies on the {entry['relies_on']} band" if entry["relies_on"] else "uses both bands"
        lines.append(f"{classifier} ({planted}):")
        for probe, verdict in entry["probes"].items():
            mark = {True: "recovered", False: "missed", None: "-"}[verdict["recovered"]]
            lines.append(f"    {probe:<38} high - low {verdict['high_minus_low_db']:+6.1f} dB   {mark}")
            if verdict["recovered"] is not None:
                hits, total = tally.get(probe, (0, 0))
                tally[probe] = (hits + verdict["recovered"], total + 1)
    lines += [f"{probe}: recovered {hits} of {total} planted bands" for probe, (hits, total) in tally.items()]
    return lines


# --- the study's grid on ESC-50 --------------------------------------------------------------------

STUDY_CLASSIFIERS = {"mn10": "mn10_esc50.pt", "dymn10": "dymn10_esc50.pt", "passt": "passt-s-f128-p16-s10-ap.476-swa-fold1.pt"}
STUDY_AE = "autoencoder1d-AT-v1.bin"


def _study(config: DemoConfig) -> Path:
    """The study's grid: AE pretrained on ESC-50 by MSE (from ArchiSound's weights) and random, behind each classifier."""
    from probe.train.finetune import FinetuneConfig, finetune
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    if not config.weights_dir:
        raise ConfigError(None, "--data esc50:DIR runs the study's grid and needs --weights-dir with the checkpoints")
    weights = Path(config.weights_dir)
    expected = {**STUDY_CLASSIFIERS, "archisound": STUDY_AE}
    missing = [name for name in expected.values() if not (weights / name).is_file()]
    if missing:
        raise ConfigError(weights, f"missing {', '.join(missing)} (probe download weights ...; the mn10/dymn10 ESC-50 "
                                   "checkpoints are your own, named as shown)")
    out = Path(config.out)
    step = Steps(4, config.progress)
    step("pretraining the ArchiSound AE on ESC-50 by MSE (the study's pretrained setting)")
    pretrained = pretrain_autoencoder(PretrainConfig(autoencoder="archisound", ae_weights=str(weights / STUDY_AE),
                                                     data=config.data, out=str(out / "runs" / "pretrain-ae"),
                                                     device=config.device, seed=config.seed, progress=config.progress))
    step("finetuning the grid: 3 classifiers x (pretrained, random)")
    runs = []
    for classifier, filename in STUDY_CLASSIFIERS.items():
        for setting, autoencoder in (("pretrained AE", str(pretrained.best)), ("random AE", "random")):
            run = finetune(FinetuneConfig(classifier=classifier, classifier_weights=str(weights / filename),
                                          autoencoder=autoencoder, data=config.data, setting_label=setting,
                                          out=str(out / "runs" / f"{classifier}--{safe_name(setting)}"), seed=config.seed,
                                          device=config.device, progress=config.progress), resume=True)
            runs.append(run.path)
    return _analyse_and_report(config, out, runs, step, planted=False)
