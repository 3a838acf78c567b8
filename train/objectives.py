"""What the frozen classifier's loss compares a probe's output against (`probe finetune --objective`).

- `labels` (the study's): cross-entropy against the data's labels; best.pt by validation accuracy.
- `fidelity`: no labels. The KL divergence from the classifier's output on the original clip to its output on the
  probe's output: "what can be dropped while the classifier still decides as it did". For a multi-label classifier
  (`WaveformClassifier.multi_label`: independent sigmoids, AudioSet's 527 tags) the sum over classes of the binary
  KL divergences. best.pt by top-1 agreement with the original's decision (multi-label: mAP against the original's
  tags, its outputs above 0.5).

The loss's targets (`targets`) are what the training loop hands it with each batch: the labels, or the classifier's
logits on the originals, computed once. `decisions` are a class per clip for what needs one: a class-conditional
probe's curve, and the analyses' per-class sections (the classifier's own top class on the original, under fidelity).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from probe.metrics import mean_average_precision
from probe.registries import Registry

if TYPE_CHECKING:  # torch is imported where it runs: the configs (and `probe --help`) read this registry
    import torch


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of logits (batch, classes) against integer targets."""
    return float((logits.argmax(-1) == y).float().mean())


def classification_metrics(logits: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, float], float]:
    """Validation loss and accuracy, and the accuracy again as the score that picks best.pt."""
    from torch.nn.functional import cross_entropy

    val_accuracy = accuracy(logits, y)
    return {"val_loss": float(cross_entropy(logits, y)), "val_accuracy": val_accuracy}, val_accuracy


class TaskObjective:
    """One way to score the classifier's output on the probe's output."""

    name: str
    describes: str
    """How the report names the term (`ProbeSpec.objective_name` adds the probe's penalty)."""
    needs_labels: bool
    marks_runs: bool = True
    """Its name marks the runs it trains (their labels in an analysis, the demo's folders); the study's own objective
    marks nothing."""

    def score_key(self, multi_label: bool) -> str:
        """The validation metric that picks best.pt (`metrics`' score)."""
        raise NotImplementedError

    def targets(self, labels: torch.Tensor, bare_logits: Callable[[], torch.Tensor]) -> torch.Tensor:
        """What the loss compares against, per clip; `bare_logits()` gives the classifier's logits on the originals."""
        raise NotImplementedError

    def decisions(self, targets: torch.Tensor) -> torch.Tensor:
        """A class per clip (int64)."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> tuple[dict[str, float], float]:
        """Validation metrics, and the score (higher is better) that picks best.pt."""
        raise NotImplementedError


OBJECTIVES: Registry[TaskObjective] = Registry("objective")


def register_objective(cls: type[TaskObjective]) -> type[TaskObjective]:
    """Class decorator: register an instance under the class's `name`."""
    OBJECTIVES.register(cls.name)(cls())
    return cls


@register_objective
class LabelObjective(TaskObjective):
    name, describes, needs_labels = "labels", "cross-entropy", True
    marks_runs = False

    def score_key(self, multi_label: bool) -> str:
        return "val_accuracy"

    def targets(self, labels: torch.Tensor, bare_logits: Callable[[], torch.Tensor]) -> torch.Tensor:
        return labels

    def decisions(self, targets: torch.Tensor) -> torch.Tensor:
        return targets

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
        from torch.nn.functional import cross_entropy

        return cross_entropy(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> tuple[dict[str, float], float]:
        return classification_metrics(logits, targets)


@register_objective
class FidelityObjective(TaskObjective):
    name, needs_labels = "fidelity", False
    describes = "KL divergence from the classifier's output on the original (no labels)"

    def score_key(self, multi_label: bool) -> str:
        return "val_map" if multi_label else "val_agreement"

    def targets(self, labels: torch.Tensor, bare_logits: Callable[[], torch.Tensor]) -> torch.Tensor:
        return bare_logits().float()

    def decisions(self, targets: torch.Tensor) -> torch.Tensor:
        return targets.argmax(-1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
        return fidelity_kl(targets, logits, multi_label)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> tuple[dict[str, float], float]:
        agreement = accuracy(logits, targets.argmax(-1))
        metrics = {"val_loss": float(fidelity_kl(targets, logits.float(), multi_label)), "val_agreement": agreement}
        if not multi_label:
            return metrics, agreement
        metrics["val_map"] = mean_average_precision(logits.float().numpy(force=True), (targets > 0).numpy(force=True))
        # no original above 0.5 on any tag: no mAP to rank by, and a NaN score would never pick a best.pt
        return metrics, agreement if np.isnan(metrics["val_map"]) else metrics["val_map"]


def fidelity_kl(reference_logits: torch.Tensor, logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Mean over clips of KL(classifier on the original || classifier on the probe's output) (Kullback and Leibler,
    1951): over the softmax's classes, or summed over the classes' independent Bernoullis (sigmoid outputs). Zero
    exactly when the outputs agree."""
    from torch.nn import functional as F

    reference_logits, logits = reference_logits.float(), logits.float()  # logsigmoid of bf16 loses the small tags
    if multi_label:
        p_log, q_log = F.logsigmoid(reference_logits), F.logsigmoid(logits)
        p_not_log, q_not_log = F.logsigmoid(-reference_logits), F.logsigmoid(-logits)
        per_class = p_log.exp() * (p_log - q_log) + p_not_log.exp() * (p_not_log - q_not_log)
        return per_class.sum(-1).mean()
    return F.kl_div(F.log_softmax(logits, -1), F.log_softmax(reference_logits, -1), log_target=True,
                    reduction="batchmean")
