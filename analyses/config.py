"""The analysis configs: frozen dataclasses whose defaults are the only ones (the CLI builds its flags from them).

Nothing here imports torch or pandas, so `probe --help` can read the defaults at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.errors import ConfigError
from probe.sizing import DEFAULT_ALPHA, DEFAULT_MARGIN_POINTS


@dataclass(frozen=True)
class PlantedTruth:
    low_band_hz: tuple[float, float]
    high_band_hz: tuple[float, float]
    relies_on: dict[str, str | None]
    """Classifier label -> LOW, HIGH, or None (uses both bands)."""
    recovery_db: float = 3.0
    """A probe recovers the planted band when its contrast is shown to exceed this in the planted direction: the
    analyses' verdict threshold (a factor of two in power)."""
    attribution_method: str = "integrated_gradients"
    attribution_setting: str | None = None
    """The run whose attribution tables are read (attributions belong to the classifier); default: the first."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShiftSettings:
    n_boot: int = 2000
    level: float = 0.95
    alpha: float = 0.05
    correction: str = "holm"
    threshold_db: float = 3.0
    """A band counts as suppressed/boosted beyond this mean shift, preserved when its CI stays inside it."""
    noise_floor_db: float = 60.0
    """Bands whose mean original energy lies this far below the loudest band's are marked "noise floor":
    their dB shifts are large and meaningless, so they get no verdict of their own."""
    clip_floor_db: float | None = 30.0
    """Per clip, a band whose original energy lies this far below that clip's loudest band is left out of
    the means (its shift is NaN in `band_shift_per_clip`): it held next to nothing, so its dB ratio
    measures the reconstruction's error floor, not what was kept. None keeps every clip."""


@dataclass(frozen=True)
class AttributionSettings:
    methods: tuple[str, ...] = ("integrated_gradients", "saliency", "gradient_shap", "occlusion")
    max_clips: int | None = None
    """Attribute at most this many validation clips, spread over the classes; default 64 on a GPU, 16 on a CPU."""
    batch_size: int = 8
    ig_steps: int | None = None
    """Integrated gradients' interpolation steps; None: chosen by a walk from 16 steps so that the median relative
    completeness error on the first originals stays within `ig_max_error` (`probe.analyses.completeness`)."""
    ig_max_error: float = 0.05
    completeness_clips: int = 2
    """Clips the completeness error is measured on (the first attributed originals)."""
    shap_samples: int = 8
    occlusion_patch: tuple[int, int] = (16, 50)
    """Occluded (mel bins, frames) per patch; the stride equals the patch."""
    conditions: tuple[str, ...] = ("original", "after")
    """Attribute the originals (always) and, by default, the finetuned reconstructions too."""
    sanity_clips: int = 8
    """Clips of the randomisation check, the first attributed ones. Its verdict needs an interval, so at least
    `MIN_INTERVAL_UNITS` (8) clips: with fewer it is not run, and the page says why."""
    randomisation_stages: int = 4
    """Cumulative steps, from the output, of the randomisation check; each costs one attribution pass."""
    max_frames: int = 100
    max_memory_gb: float | None = None
    """What the attributions may hold at once, in GB: each pass through the classifier carries as many clip
    variants (integrated-gradient steps, GradientSHAP samples, occluded copies) as fit. None: half the GPU's
    memory on CUDA; on a CPU a quarter of the RAM, at most 4 GB. Fixed per machine, so reruns chunk alike."""


@dataclass(frozen=True)
class RemovalSettings:
    """The removal check behind the answer's words (`probe.analyses.removal`, `probe.analyses.answer`)."""

    margin_points: float = DEFAULT_MARGIN_POINTS
    """A removal that costs less than this many points (of accuracy, or of agreement without labels) is one the
    classifier can do without; more, one it needs. One margin serves both words."""
    alpha: float = DEFAULT_ALPHA
    """One-sided level of each decision."""
    attenuation_db: float = 80.0
    """The band-stop's designed stop-band attenuation."""
    transition_octaves: float = 1 / 6
    """Each transition's width, outside the removed range, as a fraction of an octave at its edge..."""
    min_transition_hz: float = 25.0
    """...but at least this (a narrower one needs a filter longer than a short clip)."""
    quieter_db: float = 20.0
    """The level check: the originals this much quieter."""
    max_sets: int = 24
    """At most this many removals per classifier (one classifier pass over the clips each)."""


@dataclass(frozen=True)
class AnalyseConfig:
    runs: tuple[str, ...]
    out: str = "analysis"
    band_sets: tuple[str, ...] = ("octave", "third_octave", "mel")
    shifts: ShiftSettings = field(default_factory=ShiftSettings)
    attributions: AttributionSettings = field(default_factory=AttributionSettings)
    examples: tuple[int, ...] | None = None
    """Validation positions to keep as audio; default: the study's on ESC-50 fold 1, else one clip per class."""
    residuals: str = "examples"
    """Residual audio (original - finetuned reconstruction) for the `examples` only, or for `all` clips."""
    transfer: bool = True
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    planted: PlantedTruth | None = None
    """A planted truth to score the probes against (the demo's); None: no planted analysis."""
    allow_untrained: bool = False
    """Analyse runs (and compare with a classifier) whose classifier has no trained weights; refused otherwise."""
    removal: RemovalSettings | None = field(default_factory=RemovalSettings)
    """The answer's removal checks; None: no answer (`probe analyse --no-answer`)."""
    budget_minutes: float | None = 30.0
    """Say so, with the cheaper choices, when the attributions' plan exceeds this many minutes; None: never."""
    attribution_store: str | None = "auto"
    """Where the originals' maps and the randomisation checks are kept for later analyses (`probe.analyses.store`):
    a folder; `auto`, $PROBE_HOME/attributions; None, nowhere (this process only)."""

    def store_folder(self) -> Path | None:
        """The attribution store's folder, or None."""
        if self.attribution_store is None:
            return None
        if self.attribution_store == "auto":
            from probe.download import probe_home

            return probe_home() / "attributions"
        return Path(self.attribution_store)

    def validate(self) -> None:
        """The checks that need no registry; `probe.analyses.analyse.check_names` checks the names against theirs."""
        if not self.runs:
            raise ConfigError(None, "give at least one finetune run directory")
        if "original" not in self.attributions.conditions:
            raise ConfigError(None, "attributions always include the originals")
        if self.residuals not in ("examples", "all"):
            raise ConfigError(None, f"--residuals is examples or all, got {self.residuals!r}")
        if not 0 < self.shifts.level < 1:
            raise ConfigError(None, f"the confidence level must lie in (0, 1), got {self.shifts.level}")
        attributions = self.attributions
        if not 0 < attributions.ig_max_error < 1:
            raise ConfigError(None, f"--ig-max-error must lie in (0, 1), got {attributions.ig_max_error}")
        if attributions.sanity_clips < 0:
            raise ConfigError(None, f"--sanity-clips must be at least 0, got {attributions.sanity_clips}")
        for flag, value in (("--ig-steps", 1 if attributions.ig_steps is None else attributions.ig_steps), ("--shap-samples", attributions.shap_samples),
                            ("--completeness-clips", attributions.completeness_clips),
                            ("--randomisation-stages", attributions.randomisation_stages),
                            ("--occlusion-patch", min(attributions.occlusion_patch)),
                            ("--attribution-clips", 1 if attributions.max_clips is None else attributions.max_clips)):
            if value < 1:
                raise ConfigError(None, f"{flag} must be at least 1, got {value}")


@dataclass(frozen=True)
class CompareConfig:
    originals: str
    processed: str
    out: str = "compare"
    classifier: str | None = None
    classifier_weights: str | None = None
    categories_csv: str | None = None
    sample_rate: int | None = None
    """Analysis rate; default: the classifier's, else the first original's."""
    max_lag_seconds: float = 0.5
    """Search the processed side's delay within plus or minus this."""
    max_seconds: float = 30.0
    device: str = "auto"
    classifier_options: dict[str, Any] = field(default_factory=dict)
    """Build options for the classifier (`--classifier-option`), e.g. `revision` for `hf:`."""
