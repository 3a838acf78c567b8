"""`probe demo --data esc50:DIR --weights-dir W`: the study's grid on ESC-50 instead of the synthetic demo.

The ArchiSound AE pretrained on ESC-50 by MSE (from its published weights) and a random one, behind each of
the study's classifiers (its checkpoints in W), then the same analyses and report as the demo.
"""
from __future__ import annotations

from pathlib import Path

from probe.app.demo import PRETRAIN_FOLDS, DemoConfig, analyse_and_report, demo_inputs, seed_torch
from probe.errors import ConfigError
from probe.outputs import check_output, claim_output
from probe.progress import Progress

STUDY_CLASSIFIERS = {"mn10": "mn10_esc50.pt", "dymn10": "dymn10_esc50.pt", "passt": "passt-s-f128-p16-s10-ap.476-swa-fold1.pt"}
STUDY_AE = "autoencoder1d-AT-v1.bin"


def run_study(config: DemoConfig) -> Path:
    """The study's grid: AE pretrained on ESC-50 by MSE (from ArchiSound's weights) and random, behind each classifier."""
    from probe.train.finetune import FinetuneConfig, GridEntry, finetune_grid
    from probe.train.pretrain import PretrainConfig, pretrain_autoencoder

    check_output(config.out, "demo", demo_inputs(config))
    seed_torch(config.seed)
    if not config.weights_dir:
        raise ConfigError(None, "--data esc50:DIR runs the study's grid and needs --weights-dir with the checkpoints")
    weights = Path(config.weights_dir)
    expected = {**STUDY_CLASSIFIERS, "archisound": STUDY_AE}
    missing = [name for name in expected.values() if not (weights / name).is_file()]
    if missing:
        raise ConfigError(weights, f"missing {', '.join(missing)} (probe download weights ...; the mn10/dymn10 ESC-50 "
                                   "checkpoints are your own, named as shown)")
    out = claim_output(config.out, "demo", demo_inputs(config))
    for runs_folder in {out / "runs", out / f"runs{config.suffix}"}:  # the grid's folder holds the pretraining too
        claim_output(runs_folder, "runs")
    step = Progress(config.progress, total=4)
    step("pretraining the ArchiSound AE on ESC-50 by MSE (the study's pretrained setting)")
    pretrained = pretrain_autoencoder(PretrainConfig(autoencoder="archisound", ae_weights=str(weights / STUDY_AE),
                                                     data=config.data, out=str(out / "runs" / "pretrain-ae"),
                                                     device=config.device, seed=config.seed, progress=config.progress,
                                                     **PRETRAIN_FOLDS))
    step("finetuning the grid: 3 classifiers x (pretrained, random)")
    grid = {"classifier": [GridEntry(name, str(weights / filename)) for name, filename in STUDY_CLASSIFIERS.items()],
            "autoencoder": [GridEntry(str(pretrained.best), label="pretrained AE"), GridEntry("random", label="random AE")]}
    base = FinetuneConfig(data=config.data, out=str(out / f"runs{config.suffix}"), seed=config.seed, device=config.device,
                          objective=config.objective,
                          progress=config.progress)
    runs = [run.path for run in finetune_grid(base, grid, resume=True)]
    return analyse_and_report(config, out, runs, step)
