"""Registry entry for PaSST (`passt_s_swa_p16_128_ap476`), built with the hear21passt package.

The ESC-50 fold checkpoints are the state_dict of the wrapper's `.net` (159 keys). The
mel front-end is hear21passt's own AugmentMelSTFT, kept in eval mode.
Koutini, Schlüter, Eghbal-zadeh, Widmer. Efficient Training of Audio Transformers with Patchout. Interspeech 2022.
"""
from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from probe.audioset import NUM_CLASSES as AUDIOSET_CLASSES
from probe.esc50 import SAMPLE_RATE_32K
from probe.models.base import WaveformClassifier, default_class_names
from probe.models.frontend import MelConfig
from probe.models.registry import WeightSource, register_classifier
from probe.progress import without_known_warnings

ARCH = "passt_s_swa_p16_128_ap476"
RELEASE = "https://github.com/kkoutini/PaSST/releases/download/"
HEAD_KEYS = ("head.1.weight", "head.1.bias", "head_dist.weight", "head_dist.bias")
CITATION = "Koutini, Schlüter, Eghbal-zadeh, Widmer. Efficient Training of Audio Transformers with Patchout. Interspeech 2022."

# Release v.0.0.6: one ESC-50 checkpoint per fold, named by its validation accuracy.
# SHA-256 values as recorded by a third-party reproduction; each is 341,731,206 bytes.
ESC50_FOLDS = {
    1: ("967", "392e65d4460943ea4a1ff22674e0d655afc9010e67bbf397f820126230eba81c"),
    2: ("977", "a924e1d55062669829e60577c11aa51775a5fe9db238e20cce7cec02d5937ffd"),
    3: ("959", "8718714100b9e0e78510e542483a135d094cb9a68998684737b6ff73ae610f9d"),
    4: ("987", "69292b1a7b8156ce4393d512f399eb92fc5a403d165b211866f54ab9f811d16b"),
    5: ("962", "ebfc2c339808d108e4976f61e88e988ed9e0438be09c258e685a49212e53f9a4"),
}
WEIGHTS = (
    WeightSource(
        "passt_as", RELEASE + "v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt", "passt-s-f128-p16-s10-ap.476-swa.pt",
        sha256="302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c", size_bytes=344665734, num_classes=527, note="AudioSet (527 classes), mAP .476, SWA",
    ),
) + tuple(
    WeightSource(
        f"passt_esc50_fold{fold}",
        RELEASE + f"v.0.0.6/esc50-passt-s-n-f128-p16-s10-fold{fold}-acc.{acc}.pt",
        f"esc50-passt-s-n-f128-p16-s10-fold{fold}-acc.{acc}.pt",
        sha256=sha, size_bytes=341731206, num_classes=50,
        note=f"ESC-50, validated on fold {fold}, acc .{acc}",
        trained_on_folds=tuple(other for other in ESC50_FOLDS if other != fold),
    )
    for fold, (acc, sha) in ESC50_FOLDS.items()
)


class PasstMel(nn.Module):
    """hear21passt's AugmentMelSTFT, with the channel axis the network expects: (B, L) -> (B, 1, 128, T)."""

    def __init__(self) -> None:
        super().__init__()
        from hear21passt.models.preprocess import AugmentMelSTFT

        # The arguments of hear21passt.base.get_basic_model; in eval mode only fmax (15 kHz) matters.
        with contextlib.redirect_stdout(io.StringIO()):
            self.mel = AugmentMelSTFT(
                n_mels=128, sr=SAMPLE_RATE_32K, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000,
            )
        self.sample_rate = SAMPLE_RATE_32K
        self.config = MelConfig()  # the same eval-mode Kaldi banks as EfficientAT's: the analyses read its bands

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveform.device.type, enabled=False), \
                without_known_warnings("stft with return_complex=False is deprecated",  # hear21passt's own calls
                                       "`torch.cuda.amp.autocast(args...)` is deprecated"):
            return self.mel(waveform.float()).unsqueeze(1)


class PasstClassifier(WaveformClassifier):
    """PaSST behind its front-end. hear21passt prints tensor shapes on its first forward pass; they stay out of
    stdout (only around the network's own call: anything else prints as usual)."""

    min_frames = 16
    """The patch embedding is 16 x 16 with stride 10: fewer mel frames than one patch is an error."""

    def logits_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        # Clips shorter than 10 s crop the time position embedding, which PaSST warns about on every call.
        with contextlib.redirect_stdout(io.StringIO()), without_known_warnings("Input image size"):
            return super().logits_from_mel(mel)


@register_classifier(
    "passt", sample_rate=SAMPLE_RATE_32K, head_keys=HEAD_KEYS, citation=CITATION, weights=WEIGHTS,
    tagger_classes=(AUDIOSET_CLASSES,), audioset_weights="passt_as",
    description="PaSST-S (passt_s_swa_p16_128_ap476) via hear21passt; ESC-50 fold-1 val acc .967; clips up to 10 s",
)
def build_passt(num_classes: int = 50, trained: bool = False) -> WaveformClassifier:
    from hear21passt.base import get_model_passt

    # pretrained=False: hear21passt would otherwise download AudioSet weights while building.
    with contextlib.redirect_stdout(io.StringIO()):
        net = get_model_passt(arch=ARCH, pretrained=False, n_classes=num_classes)
    return PasstClassifier(
        "passt", PasstMel(), net, sample_rate=SAMPLE_RATE_32K, class_names=default_class_names(num_classes),
        head_keys=HEAD_KEYS,
    )
