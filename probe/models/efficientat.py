"""Registry entries for EfficientAT's mn10 and dymn10 (and the study's DyMN ablations)."""
from __future__ import annotations

from probe.audioset import NUM_CLASSES as AUDIOSET_CLASSES
from probe.esc50 import SAMPLE_RATE_32K
from probe.models.base import WaveformClassifier, default_class_names
from probe.models.dymn import SCRATCH_TEMPERATURE, TRAINED_TEMPERATURE, DyMN, DynamicParts
from probe.models.frontend import MelConfig, MelFrontEnd
from probe.models.mobilenet import MobileNetV3
from probe.models.registry import WeightSource, register_classifier

RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
# mn10_as's SHA-256 and size agree across several independent third-party pins of this release asset.
CITATION_MN = "Schmid, Koutini, Widmer. Efficient Large-Scale Audio Tagging via Transformer-to-CNN Knowledge Distillation. ICASSP 2023."
CITATION_DYMN = "Schmid, Koutini, Widmer. Dynamic Convolutional Neural Networks as Efficient Pre-trained Audio Models. TASLP 2024."
HEAD_KEYS = ("classifier.5.weight", "classifier.5.bias")

MN10_AUDIOSET = WeightSource(
    "mn10_as", RELEASE + "mn10_as_mAP_471.pt", "mn10_as_mAP_471.pt", num_classes=527,
    sha256="0bd7dc2443af498c289a2e739f02ebb515d6aa3fd3ab9db539c86123ae368a4e", size_bytes=19708753,
    note="AudioSet (527 classes), mAP .471; EfficientAT publishes no ESC-50 weights",
)
DYMN10_AUDIOSET = WeightSource(
    "dymn10_as", RELEASE + "dymn10_as.pt", "dymn10_as.pt", num_classes=527,
    note="AudioSet (527 classes); EfficientAT publishes no ESC-50 weights; no hash found: recorded at first download",
)


RECIPE_LEARNING_RATE = 6e-5
"""EfficientAT's ESC-50 learning rate (its recipe: 4e-5 for the full DyMN)."""
DYMN_LEARNING_RATE = 4e-5


def _frontend() -> MelFrontEnd:
    # EfficientAT's ESC-50 recipe: 32 kHz, 128 mels, window 800, hop 320, no masking.
    return MelFrontEnd(MelConfig(sample_rate=SAMPLE_RATE_32K))


@register_classifier(
    "mn10", sample_rate=SAMPLE_RATE_32K, head_keys=HEAD_KEYS, citation=CITATION_MN,
    description="EfficientAT MobileNetV3 (width 1.0, MLP head) on 128-band log-mel; ESC-50 fold-1 val acc .960 in the study",
    weights=(MN10_AUDIOSET,), tagger_classes=(AUDIOSET_CLASSES,), audioset_weights=MN10_AUDIOSET.name,
    learning_rate=RECIPE_LEARNING_RATE,
)
def build_mn10(num_classes: int = 50, trained: bool = False, width_mult: float = 1.0) -> WaveformClassifier:
    net = MobileNetV3(num_classes=num_classes, width_mult=width_mult)
    return WaveformClassifier(
        "mn10", _frontend(), net, sample_rate=SAMPLE_RATE_32K, class_names=default_class_names(num_classes),
        options={"width_mult": width_mult}, head_keys=HEAD_KEYS,
    )


def _dymn_builder(name: str, parts: DynamicParts):
    def build(num_classes: int = 50, trained: bool = False, temperature: float | None = None) -> WaveformClassifier:
        # A trained checkpoint runs at the end of its temperature schedule; a fresh model starts hot.
        temp = temperature if temperature is not None else (TRAINED_TEMPERATURE if trained else SCRATCH_TEMPERATURE)
        net = DyMN(num_classes=num_classes, parts=parts, temperature=temp)
        options = {} if temperature is None else {"temperature": temperature}
        return WaveformClassifier(
            name, _frontend(), net, sample_rate=SAMPLE_RATE_32K, class_names=default_class_names(num_classes),
            options=options, head_keys=HEAD_KEYS,
        )

    return build


# The full model and the study's ablations: each dynamic part removed, or kept alone.
DYMN_VARIANTS = {
    "dymn10": (DynamicParts(), "EfficientAT Dynamic MobileNet (width 1.0); ESC-50 fold-1 val acc .962 in the study", (DYMN10_AUDIOSET,)),
    "dymn10_no_dyconv": (DynamicParts(dynamic_conv=False), "dymn10 without dynamic convolution", ()),
    "dymn10_no_dyrelu": (DynamicParts(dynamic_relu=False), "dymn10 without dynamic ReLU", ()),
    "dymn10_no_ca": (DynamicParts(coordinate_attention=False), "dymn10 without coordinate attention", ()),
    "dymn10_only_dyconv": (DynamicParts(True, False, False), "dymn10 with dynamic convolution only", ()),
    "dymn10_only_dyrelu": (DynamicParts(False, True, False), "dymn10 with dynamic ReLU only", ()),
    "dymn10_only_ca": (DynamicParts(False, False, True), "dymn10 with coordinate attention only", ()),
}
for _name, (_parts, _description, _weights) in DYMN_VARIANTS.items():
    register_classifier(
        _name, sample_rate=SAMPLE_RATE_32K, head_keys=HEAD_KEYS, citation=CITATION_DYMN,
        description=_description, weights=_weights, tagger_classes=(AUDIOSET_CLASSES,),
        audioset_weights=_weights[0].name if _weights else None,
        learning_rate=DYMN_LEARNING_RATE if _weights else RECIPE_LEARNING_RATE,
    )(_dymn_builder(_name, _parts))
