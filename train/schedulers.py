"""Learning-rate schedules by name: a registry; each is stepped once per optimizer step, or once per epoch with the
validation loss where its entry says so."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from probe.registries import Registry

SchedulerFactory = Callable[[torch.optim.Optimizer, int, float], torch.optim.lr_scheduler.LRScheduler | None]


@dataclass(frozen=True)
class Scheduler:
    """A registered schedule: `build(optimizer, total steps, peak rate)`, and when it steps."""

    build: SchedulerFactory
    per_epoch: bool = False
    """Stepped once per epoch with the validation loss (a plateau rule), not once per optimizer step."""


SCHEDULERS: Registry[Scheduler] = Registry("scheduler")


def register_scheduler(name: str, per_epoch: bool = False) -> Callable[[SchedulerFactory], SchedulerFactory]:
    """Decorator: register `build(optimizer, total_steps, lr)` as the schedule `name`."""

    def decorate(build: SchedulerFactory) -> SchedulerFactory:
        SCHEDULERS.register(name, Scheduler(build, per_epoch))
        return build

    return decorate


@register_scheduler("cosine")
def cosine(optimizer, total_steps, lr):
    """The study's schedule: cosine decay to zero over the whole run."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


@register_scheduler("onecycle")
def onecycle(optimizer, total_steps, lr):
    """One cycle: a warm-up to the rate, then an annealing to near zero (Smith and Topin 2019)."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(2, total_steps))


@register_scheduler("step")
def step(optimizer, total_steps, lr):
    """Divide the rate by 10 at a third and at two thirds of the run."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[total_steps // 3, 2 * total_steps // 3], gamma=0.1)


@register_scheduler("plateau", per_epoch=True)
def plateau(optimizer, total_steps, lr):
    """Halve the rate when the validation loss stops falling (stepped per epoch with that loss)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)


@register_scheduler("none")
def constant(optimizer, total_steps, lr):
    """A constant rate."""
    return None


@register_scheduler("warmup_rampdown")
def warmup_rampdown(optimizer, total_steps, lr):
    """EfficientAT's shape (its ESC-50 recipe: 10 warm-up epochs of 80, then a linear ramp over 65 to 1 %),
    as fractions of the run, so it stretches to any length."""
    warm_up, ramp_start, ramp_length, floor = 10 / 80, 10 / 80, 65 / 80, 0.01

    def factor(step: int) -> float:
        progress = step / max(1, total_steps)
        if progress < warm_up:
            return max(floor, progress / warm_up)
        return max(floor, 1 - (1 - floor) * min(1.0, (progress - ramp_start) / ramp_length))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
