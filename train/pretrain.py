"""`probe pretrain-ae`: reconstruction pretraining of the autoencoder on a dataset.

This is the study's "pretrained on ESC-50" setting: MSE between the stereo input and its
reconstruction at the AE's rate, 70 epochs, effective batch 64 from micro-batches of 4
(accumulation 16). An optional multi-resolution STFT term sharpens the high frequencies.
`RUNDIR/best.pt` (lowest validation loss) is the checkpoint `probe finetune` starts from.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from probe.audio import to_stereo
from probe.folds import with_fold
from probe.probes.autoencoder import WaveformAutoencoder
from probe.probes.loading import load_autoencoder
from probe.rundir import RunDir
from probe.train.config import PretrainConfig
from probe.train.loop import Objective, autocast_for, is_resuming, open_run, releasing_run, start_fresh, train_loop
from probe.train.losses import multi_resolution_stft_loss


class ReconstructionObjective(Objective):
    """MSE (+ weighted multi-resolution STFT) between the AE's input and output; best.pt by val loss."""

    def __init__(self, autoencoder: WaveformAutoencoder, val_x: torch.Tensor, stft_weight: float, micro: int,
                 autocast: dict[str, Any]) -> None:
        self.module, self.val_x, self.stft_weight, self.micro, self.autocast = autoencoder, val_x, stft_weight, micro, autocast
        self.channels = autoencoder.channels

    def _as_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        return to_stereo(x) if self.channels == 2 else x

    def _losses(self, module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, MSE) of one micro-batch of mono waveforms."""
        x = self._as_input(x)
        output = module(x)
        mse = torch.nn.functional.mse_loss(output.float(), x.float())
        if not self.stft_weight:
            return mse, mse
        return mse + self.stft_weight * multi_resolution_stft_loss(output, x), mse

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._losses(module, x)[0]

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float]:
        self.module.eval()
        total, mse = 0.0, 0.0
        for chunk in self.val_x.split(self.micro):
            with torch.autocast(**self.autocast):
                chunk_loss, chunk_mse = self._losses(self.module, chunk)
            total, mse = total + float(chunk_loss) * len(chunk), mse + float(chunk_mse) * len(chunk)
        val_loss = total / len(self.val_x)
        return {"val_loss": val_loss, "val_mse": mse / len(self.val_x)}, -val_loss


@releasing_run
def pretrain_autoencoder(config: PretrainConfig, resume: bool = False) -> RunDir:
    """Run (or resume) reconstruction pretraining; `RUNDIR/best.pt` is the pretrained AE, and RUNDIR/folds.json says
    which folds it learned from."""
    config = with_fold(config)
    opened = open_run(config, resume)
    run, dist, device = opened.run, opened.dist, opened.device
    if run.is_complete():
        return run
    _, train_set, val_set = opened.splits(config)
    ae_weights = config.resolved_ae_weights()
    autoencoder = load_autoencoder(config.autoencoder, ae_weights, device=device, **config.ae_options)
    # Decoded straight at the AE's rate; the cache resamples once, not every epoch.
    train, val = opened.decode(config, (train_set, val_set), autoencoder.sample_rate)
    train_x, val_x = train.as_tensor().to(device), val.as_tensor().to(device)
    objective = ReconstructionObjective(autoencoder, val_x, config.stft_weight, config.micro, autocast_for(device))

    if not is_resuming(run, resume) and dist.is_main:
        start_fresh(run, config, {"ae_weights": ae_weights})
    dist.barrier()
    result = train_loop(config, run, autoencoder, objective, train_x, train_x, device, resume, dist,
                        clip_names=train.clip_ids)
    if result.finished(config) and dist.is_main:
        run.mark_done({"epochs": config.epochs, "steps": result.step, "best_val_loss": -result.best_score,
                       "autoencoder_checkpoint": str(run.best), "skipped_files": train.skipped + val.skipped})
    return run
