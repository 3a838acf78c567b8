"""`probe demo`: the whole study end to end, offline, with a planted answer it must find.

Synthetic mode (the default, minutes on a CPU): an ESC-like dataset whose classes are coded in
a low band (< 2 kHz) and a high band (> 4 kHz); three small CNNs taught to rely on the low band,
the high band, or both (for the first two, the other band of every training clip carries a random
class, so it holds no information); behind each, the study's AE finetuning from a reconstruction-
pretrained and from a random start, the energy-penalised AE, the spectral-gain probe and the
identity control; then the analyses (with the planted-answer analysis), the HTML report, and
`planted.json`: whether each probe recovered each planted band.

Study mode (`--data esc50:DIR --weights-dir DIR`): the study's grid, mn10, dymn10 and PaSST behind
the ESC-50-pretrained and the random AE, with the same analyses and report.

The demo composes the parts and has none of its own: the planted classifiers train through the
shared training loop, the probes are `finetune`'s grid cells, all scheduled by `probe.train.cells.run_tasks`, and the
scoring is `analyses/planted.py`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from probe.errors import ConfigError
from probe.fileio import write_json
from probe.outputs import check_output, claim_output
from probe.progress import Progress
from probe.rundir import AnalysisDir, RunDir

PLANTED = {"low_band_cnn": "low", "high_band_cnn": "high", "full_band_cnn": None}
"""The planted classifiers and the band each relies on (`probe.synthetic`'s LOW, HIGH; None: both)."""
PRETRAIN_FOLDS = {"fold": 2, "hold_out_folds": (1,)}
"""The AE pretrains on folds 3-5 and is selected (best.pt) on fold 2: fold 1, where the probes are analysed, plays
no part in it."""
THREADS = 1
"""Each of the demo's 31 training runs (3 CNNs, the AE pretraining, 27 probes) runs on one torch thread, as many at
once as there are cores, each starting once the runs it needs are done (`probe.train.cells.run_tasks`): the tiny
models keep two threads busy only part of the time, so two runs side by side beat one run on two threads, and no
core idles while the AE pretrains. Their numbers do not depend on the machine's core count (a thread count can
reorder a reduction)."""
RELATIVE_EPOCH_COST = {"classifier": 0.15, "pretrain": 0.65}
"""An epoch's rough cost against one AE finetuning epoch (`finetune.expected_cost`), measured on one thread: only the
order in which the runs start depends on it (the pretraining first: six probes wait on it)."""
CONTROL = "identity (control)"
"""The no-autoencoder control: shown beside the probes; it points at no band by construction."""
GAIN_REPLICATES = 5
"""The spectral gain, the answer's probe, is trained this many times behind each CNN, with seeds seed..seed+4: the
answer's words need at least 4 of 5 replicates to agree."""
EXTRA_VALIDATION_CLIPS = 4
"""Clips per class added to the validation fold (80 clips there instead of 40): at 40, a removal that changes no
decision is bounded only below 6.3 points, above the answer's 5-point margin, so no "can do without" could be shown;
at 80 the bound is about 3.3 points (VALIDATION.md)."""
TINY_AE_WIDTH = 16
"""Twice the tiny AE's default width: after 24 epochs at a constant rate it reconstructs both bands about
20 dB above its error (width 8: 19 dB low, 13 dB high; a cosine decay: 16 dB high), and a probe can only
show that a band is kept when the AE reconstructs it in the first place."""


def planted_intro(truth, objective: str) -> str:
    """The report's first note: what was planted, and what "recovered" means."""
    from probe.train.objectives import OBJECTIVES

    (low_lo, low_hi), (high_lo, high_hi) = truth.low_band_hz, truth.high_band_hz
    entry = OBJECTIVES.lookup(objective)
    withheld = ("" if entry.needs_labels else
                f"The probes here were trained without labels (--objective {objective}): on the {entry.describes}. ")
    return withheld + (f"The planted answer: low_band_cnn was trained to rely on the low band ({low_lo:g}-{low_hi:g} Hz), "
            f"high_band_cnn on the high band ({high_lo:g}-{high_hi:g} Hz), full_band_cnn on both. Each line is a probe's "
            "high-minus-low contrast (dB) with its 95 % interval over the clips, measured against its untuned control (for "
            "the random AE: the identity); 'recovered' means a one-sided test (alpha 0.05) shows it pointing at the "
            f"planted band by more than {truth.recovery_db:g} dB. One seed is an anecdote: VALIDATION.md holds the "
            "recoveries over seeds.")


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
    """Clips per run the attributions explain; 0: no attributions."""
    progress: bool = True
    report: bool = True
    """False: stop after the analyses (the multi-seed validation needs no report)."""
    probes: tuple[str, ...] = ()
    """Only these probe settings (by their report labels, e.g. "spectral gain"); empty: every one. For quick checks."""
    planted_classifiers: tuple[str, ...] = ()
    """Only the probes behind these planted CNNs (e.g. low_band_cnn); empty: all three."""
    objective: str = "labels"
    """What the probes' classifier loss compares against (`probe.train.objectives`). `fidelity` probes the same
    planted classifiers with the labels withheld, into runs-fidelity/, analysis-fidelity/, report-fidelity/ and
    planted-fidelity.json beside the labelled ones; the data, the CNNs and the AE pretraining are shared."""

    @property
    def suffix(self) -> str:
        """What names this objective's folders: nothing for the study's (labels), `-NAME` for one that marks its runs."""
        from probe.train.objectives import OBJECTIVES

        return f"-{self.objective}" if OBJECTIVES.lookup(self.objective).marks_runs else ""


def run_demo(config: DemoConfig) -> Path:
    """Run the synthetic demo with its planted answer; returns the report's index.html (without a report: the analysis
    folder). The study's grid on real data (`config.data`) is `probe.app.study.run_study`."""
    if config.data:
        raise ConfigError(None, "the synthetic demo takes no data: the study's grid is probe.app.study.run_study")
    check_output(config.out, "demo", demo_inputs(config))
    seed_torch(config.seed)
    return _synthetic(config)


def seed_torch(seed: int) -> None:
    """The demo's global generators: seeded, and threads as torch chose them."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))


def demo_inputs(config: DemoConfig) -> tuple[str, ...]:
    """What the demo reads (study mode: the data and the weights), for the output guard."""
    return tuple(path for path in ((config.data or "").partition(":")[2], config.weights_dir) if path)


# --- the synthetic demo with a planted answer --------------------------------------------------


def _synthetic(config: DemoConfig) -> Path:
    from probe.data import load_esc50
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset
    from probe.train.cells import Task, cell_names, run_tasks
    from probe.train.finetune import FinetuneConfig, GridEntry, expected_cost, grid_cells, with_replicates
    from probe.train.pretrain import PretrainConfig

    out = claim_output(config.out, "demo")
    step = Progress(config.progress, total=4)
    synthetic = SyntheticConfig(seed=config.seed, extra_validation_clips_per_class=EXTRA_VALIDATION_CLIPS)
    step(f"synthetic dataset: {synthetic.num_classes} classes in 5 categories, {synthetic.sample_rate} Hz, "
         f"low band {synthetic.low_band_hz[0]:g}-{synthetic.low_band_hz[1]:g} Hz, high band "
         f"{synthetic.high_band_hz[0]:g}-{synthetic.high_band_hz[1]:g} Hz -> {out / 'data'}")
    root = write_synthetic_dataset(out / "data", synthetic)
    dataset = load_esc50(root)
    data = f"esc50:{root}"

    folder = out / "classifiers"
    classifiers = [GridEntry("small_cnn", str(folder / f"{name}.pt"), label=name) for name in PLANTED]
    ae_options = {"sample_rate": synthetic.sample_rate, "channels": 1, "seed": config.seed, "width": TINY_AE_WIDTH}
    pretraining = PretrainConfig(
        autoencoder="tiny", ae_options=ae_options, data=data, out=str(out / "runs" / "pretrain-ae"),
        epochs=config.pretrain_epochs, learning_rate=3e-3, batch_size=8, micro_batch_size=None, scheduler="none",
        seed=config.seed, device=config.device, progress=False, **PRETRAIN_FOLDS)
    pretrained = str(Path(pretraining.out) / "best.pt")
    gain = GridEntry("spectral_gain", label="spectral gain",  # the probe type's own learning rate and penalty
                     overrides={"probe": "spectral-gain", "learning_rate": None, "epochs": config.gain_epochs})
    settings = [
        GridEntry(pretrained, label="pretrained AE"),
        GridEntry("tiny", label="random AE", overrides={"ae_options": ae_options}),
        GridEntry(pretrained, label=f"pretrained AE + energy {config.energy_penalty:g}",
                  overrides={"penalty": config.energy_penalty}),
        gain,
        GridEntry("identity", label=CONTROL, overrides={"epochs": 0}),
    ]
    base = FinetuneConfig(data=data, epochs=config.finetune_epochs, learning_rate=3e-3, batch_size=8, seed=config.seed,
                          device=config.device, classifier="small_cnn", out=str(out / f"runs{config.suffix}"),
                          objective=config.objective, progress=False)
    chosen = [c for c in classifiers if not config.planted_classifiers or c.label in config.planted_classifiers]
    chosen_settings = [s for s in settings if not config.probes or s.label in config.probes]
    if not chosen or not chosen_settings:
        raise ConfigError(None, f"no probe to run: the planted classifiers are {', '.join(PLANTED)}; the probe settings "
                                f"{', '.join(s.label for s in settings)}")
    classifiers, settings = chosen, chosen_settings
    cells = [replicate for cell in grid_cells(base, {"classifier": classifiers, "autoencoder": settings})
             for replicate in with_replicates([cell], GAIN_REPLICATES if cell.setting_label == gain.label else 1)]
    names = cell_names(cells)
    tasks = [Task(name, _planted_classifier, (name, index, dataset, synthetic, folder, config),
                  cost=config.classifier_epochs * RELATIVE_EPOCH_COST["classifier"])
             for index, name in enumerate(PLANTED)]
    tasks.append(Task("pretrain-ae", _pretrain, (pretraining,),
                      cost=config.pretrain_epochs * RELATIVE_EPOCH_COST["pretrain"]))
    tasks += [Task(name, _finetune_path, (cell,), cost=expected_cost(cell),
                   needs=(cell.classifier_label,) + (("pretrain-ae",) if cell.autoencoder == pretrained else ()))
              for name, cell in zip(names, cells)]
    jobs = min(len(tasks), os.cpu_count() or 1)
    step(f"training three small CNNs (one relies on the low band, one on the high band, one on both), pretraining the "
         f"tiny AE by reconstruction ({config.pretrain_epochs} epochs; folds 3-5, selected on fold 2), and finetuning "
         f"{len(settings)} probes behind each CNN ({len(cells)} runs, the spectral gain {GAIN_REPLICATES} times): {jobs} "
         "at a time, each starting once what it needs is done")
    finished = run_tasks(tasks, jobs, THREADS, Progress(config.progress, prefix="    "))
    runs = [Path(finished[name]) for name in names]
    for name, run in zip(names, runs):
        done = json.loads(RunDir(run).done.read_text())
        key, best = next(((k, v) for k, v in done.items() if k.startswith("best_val_")), ("", None))
        bare = done.get("bare_classifier_accuracy")
        step.note(f"{name}: " + (f"{key.replace('_', ' ')} {best:.3f}" if best is not None
                                     else "nothing trained" + (f"; val accuracy {bare:.3f}" if bare is not None else "")))

    from probe.analyses.planted import PlantedTruth

    truth = PlantedTruth(synthetic.low_band_hz, synthetic.high_band_hz, dict(PLANTED), attribution_setting="pretrained AE")
    return analyse_and_report(config, out, runs, step, truth)


def _pretrain(config) -> str:
    from probe.train.pretrain import pretrain_autoencoder

    return str(pretrain_autoencoder(config).best)


def _finetune_path(config) -> str:
    from probe.train.finetune import finetune

    return str(finetune(config, resume=True).path)


def _planted_classifier(name: str, index: int, dataset, synthetic, folder: Path, config: DemoConfig) -> Path:
    """Train (or reuse) a small CNN whose reliance on a band is planted through its training clips
    (`probe.synthetic.render_planted_clips`), under additive noise 20-55 dB below the clip drawn afresh for every
    batch (`NoisyClassification`) and no level augmentation."""
    import numpy as np
    import torch

    from probe.cache import decode_split
    from probe.folds import training_record
    from probe.models.classifiers import load_classifier, save_classifier
    from probe.synthetic import render_planted_clips
    from probe.train.classifier import NoisyClassification, fit_classifier
    from probe.train.config import ClassifierTrainConfig
    from probe.train.loop import autocast_for

    path = folder / f"{name}.pt"
    if path.is_file():
        return path
    claim_output(folder / name, "run")  # its decode cache goes there before the run starts
    train_set, val_set = dataset.split()
    targets = np.array([clip.target for clip in train_set.clips])
    clips = render_planted_clips(targets, PLANTED[name], np.random.default_rng([config.seed, index]), synthetic)
    val = decode_split(val_set, synthetic.sample_rate, cache_dir=folder / name / "cache", progress=False)
    val_x, val_y = val.tensors("cpu")
    generator = torch.Generator().manual_seed(config.seed)  # one stream for the order and the noise

    def build():
        classifier = load_classifier("small_cnn", num_classes=dataset.num_classes, class_names=list(dataset.class_names),
                                     frozen=False, sample_rate=synthetic.sample_rate, pooling="time")
        classifier.frontend_augmentation = False  # a deterministic mel; only the CNN trains
        return classifier

    # No mixup, gain or roll: the run's config records what NoisyClassification does, and it does none of them.
    training = ClassifierTrainConfig(classifier="small_cnn", init="none", data=f"esc50:{dataset.root}",
                                     out=str(folder / name), epochs=config.classifier_epochs, learning_rate=3e-3,
                                     weight_decay=0.01, batch_size=16, scheduler="none", mixup_alpha=0.0, gain_db=0.0,
                                     roll=False, seed=config.seed, device="cpu", progress=False)
    classifier = fit_classifier(training, build,
                                lambda model: NoisyClassification(model, val_x, val_y, 16, autocast_for(torch.device("cpu")),
                                                                  generator),
                                torch.from_numpy(clips), torch.from_numpy(targets), shuffle=generator, resume=True)
    # what it learned from: its training clips are folds 2-5 (fold 1 validates), so the finetunes behind it can tell
    # it keeps its last epoch, chosen by no fold's score (fit_classifier returns the last epoch, not best.pt)
    record = replace(training_record(training, dataset.folds), selected_on=None)
    return save_classifier(classifier, path, folds=record.to_json())


DEMO_IG_STEPS = 16
"""Integrated gradients' steps, fixed at those the demo's validation over seeds ran with (the page still shows their
completeness error)."""


def analyse_and_report(config: DemoConfig, out: Path, runs: list[Path], step: Progress, truth=None) -> Path:
    from probe.analyses.analyse import AnalyseConfig, analyse
    from probe.analyses.bands import fine_band_set
    from probe.analyses.config import AttributionSettings, ShiftSettings
    from probe.analyses.planted import describe_planted
    from probe.reports.build import ReportConfig, build_report

    analysis = out / f"analysis{config.suffix}"
    step(f"analysing {len(runs)} runs -> {analysis}")
    if not _complete(analysis, runs):
        analyse(AnalyseConfig(
            runs=tuple(str(r) for r in runs), out=str(analysis), shifts=ShiftSettings(n_boot=1000),
            attributions=AttributionSettings(
                methods=("integrated_gradients", "saliency") if config.attribution_clips else (),
                conditions=("original",), max_clips=config.attribution_clips or None,
                ig_steps=DEMO_IG_STEPS),
            seed=config.seed, device=config.device, progress=False, planted=truth,
            attribution_store=str(out / "attribution-store")))  # the demo writes nothing outside its folder
    notes: tuple[str, ...] = ()
    if truth is not None:
        answer = json.loads(AnalysisDir(analysis).summary.read_text())["comparison"]["planted"]
        write_json(out / f"planted{config.suffix}.json", answer)
        notes = (planted_intro(truth, config.objective),)  # the report draws the planted table itself, from the analysis
        for line in describe_planted(answer):
            step.note(line)
    if not config.report:
        return analysis
    step(f"writing the report -> {out / f'report{config.suffix}'}")
    return build_report(ReportConfig((str(analysis),), str(out / f"report{config.suffix}"), band_set=fine_band_set(), notes=notes,
                                     progress=False))


def _complete(analysis: Path, runs: list[Path]) -> bool:
    """An analysis is reused when it covers exactly these runs and is newer than every one of them."""
    summary = AnalysisDir(analysis).summary
    if not summary.is_file():
        return False
    covered = {entry["path"] for entry in json.loads(summary.read_text())["runs"]}
    newest_run = max(RunDir(run).done.stat().st_mtime for run in runs)
    return covered == {str(run) for run in runs} and summary.stat().st_mtime > newest_run
