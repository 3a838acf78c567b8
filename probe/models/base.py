"""The waveform-in, logits-out classifier that every built-in and user model is wrapped in.

Every classifier bundles its exact front-end, so the pipeline, captum, the transfer matrix
and the CLI all take the same kind of callable: float waveform (batch, samples) at
`sample_rate` -> logits (batch, classes).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from probe import esc50
from probe.models.checkpoint import CLASSIFIER_FORMAT


class WaveformClassifier(nn.Module):
    """A front-end and a network: waveform (B, L) -> logits (B, classes).

    The contract every classifier keeps, built-in or a user's:

    - `class_names` are its own, one per output, in output order. Everything downstream (predict, finetune,
      analyse, the report) reads the names and the count from here. A builder asked for `num_classes` either
      re-heads (returns that many outputs) or keeps its fixed head and its own names; a count asked of a fixed
      head that differs is refused.
    - Categories come from the class names: ESC-50's five where they are ESC-50's classes, a user's mapping
      (`meta/categories.csv`), else none.
    - `frontend` maps the waveform to the network's input. Whether that input is a waveform is decided by what the
      front-end returns on a probe clip (its shape: `reads_waveform`), or said by `frontend.waveform_input`; the
      analyses then attribute a waveform-in network through an STFT inspection layer (`probe.models.inspection`),
      so its maps are time-frequency maps like a mel network's.
    - `untrained` says why its weights are not trained, or is None. A built-in without weights is untrained; a
      builder that loads trained weights of its own sets `classifier.untrained = None` on what it returns.

    `frozen=True` (the default) makes the weights require no grad and pins the whole
    module in eval mode, even through `.train()`: in train mode the mel front-end
    randomises fmin/fmax and BatchNorm statistics would move.
    """

    def __init__(
        self,
        name: str,
        frontend: nn.Module,
        net: nn.Module,
        *,
        sample_rate: int,
        class_names: list[str],
        options: dict[str, Any] | None = None,
        head_keys: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.name = name
        self.frontend = frontend
        self.net = net
        self.sample_rate = int(sample_rate)
        self.class_names = list(class_names)
        self.options = dict(options or {})
        self.head_keys = tuple(head_keys)
        self.frozen = False
        self.frontend_augmentation = True
        """In train mode, whether the front-end randomises too (EfficientAT's recipe); False keeps it in eval mode."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    source_file = None
    """The file the network's weights were read from when not given as `weights` (a transformers checkpoint's), for
    the run's provenance."""

    untrained: str | None = None
    """Why the network's weights are not trained (built without weights, a replaced head), or None. finetune, analyse
    and compare refuse such a classifier unless told `allow_untrained`: what it "listens to" means nothing."""

    multi_label = False
    """Whether the outputs are independent sigmoids (AudioSet-style tagging) rather than one softmax."""

    min_frames = 1
    """The fewest front-end frames the network takes (PaSST: one 16-frame patch)."""

    @property
    def waveform_input(self) -> bool:
        """Whether the network reads the waveform itself (no time-frequency front-end): what the front-end says
        (`frontend.waveform_input`), else what it returns on a probe clip (`reads_waveform`), decided once."""
        said = getattr(self.frontend, "waveform_input", None)
        if said is not None:
            return bool(said)
        if isinstance(self.frontend, nn.Identity):
            return True
        decided = self.__dict__.get("_waveform_input")
        if decided is None:
            decided = self.__dict__["_waveform_input"] = reads_waveform(self.frontend, self.sample_rate, self.name)
        return decided

    @property
    def min_samples(self) -> int:
        """The shortest waveform the front-end and network take (one STFT window, and `min_frames` hops); shorter
        inputs must be padded (`pad_short`). A user's module without a mel front-end takes any length."""
        config = getattr(self.frontend, "config", None)
        if config is None:
            return 1
        return max(config.n_fft, self.min_frames * config.hop_length)

    def pad_short(self, waveform: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """(waveform zero-padded at the end to `min_samples`, the original length) or (waveform, None) if long enough."""
        length = waveform.shape[-1]
        if length >= self.min_samples:
            return waveform, None
        return torch.nn.functional.pad(waveform, (0, self.min_samples - length)), length

    def mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """The network's input representation (for mn10/dymn10/passt: log-mel (B, 1, F, T))."""
        return self.frontend(waveform)

    def logits_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Logits from the front-end's output; the entry point for attributions on the mel input."""
        out = self.net(mel)
        return out[0] if isinstance(out, (tuple, list)) else out

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 3 and waveform.shape[1] == 1:
            waveform = waveform[:, 0]
        if waveform.dim() != 2:
            raise ValueError(f"{self.name} takes a waveform (batch, samples), got shape {tuple(waveform.shape)}")
        return self.logits_from_mel(self.mel(waveform))

    def freeze(self) -> "WaveformClassifier":
        """Stop gradients into the weights and pin eval mode for good."""
        for param in self.parameters():
            param.requires_grad_(False)
        self.frozen = True
        return self.train(False)

    def train(self, mode: bool = True) -> "WaveformClassifier":
        super().train(False if self.frozen else mode)
        if not self.frontend_augmentation:
            self.frontend.train(False)
        return self

    def checkpoint(self) -> dict[str, Any]:
        """This project's checkpoint format: the network's state_dict plus what rebuilds it."""
        return {
            "format": CLASSIFIER_FORMAT,
            "classifier": self.name,
            "options": self.options,
            "class_names": self.class_names,
            "multi_label": self.multi_label,
            **({"untrained": self.untrained} if self.untrained else {}),
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
        }


def reads_waveform(frontend: nn.Module, sample_rate: int, name: str = "the classifier") -> bool:
    """Whether `frontend` hands the network a waveform: its output on a probe clip (half a second of seeded noise)
    has one axis beyond the batch, of the clip's samples ((B, L) or (B, 1, L)); a time-frequency input has two or
    more ((B, 1, mels, frames)). Any other shape cannot be told apart: a `ConfigError` asks for `waveform_input` on
    the front-end."""
    from probe.errors import ConfigError

    length = max(2, int(sample_rate) // 2)
    reference = next(iter(frontend.parameters()), None)
    reference = reference if reference is not None else next(iter(frontend.buffers()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    clip = torch.randn(1, length, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = frontend.training
    try:
        with torch.no_grad():
            out = frontend.eval()(clip)
    finally:
        frontend.train(was_training)
    out = out[0] if isinstance(out, (tuple, list)) else out
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    axes = [size for size in (shape or ())[1:] if size > 1]  # beyond the batch, the axes that hold more than one
    if axes == [length]:
        return True
    if len(axes) >= 2:
        return False
    raise ConfigError(None, f"{name}: cannot tell whether its front-end gives the network a waveform or a time-frequency "
                            f"input (on a (1, {length}) clip it returns {shape or type(out).__name__}): set "
                            "`waveform_input = True` (or False) on the front-end")


def default_class_names(num_classes: int) -> list[str]:
    """ESC-50's names for 50 classes, AudioSet's for 527, else `class_0`, `class_1`, ..."""
    from probe import audioset

    if num_classes == len(esc50.CLASS_NAMES):
        return list(esc50.CLASS_NAMES)
    if num_classes == audioset.NUM_CLASSES:
        return audioset.audioset_class_names()
    return [f"class_{i}" for i in range(num_classes)]
