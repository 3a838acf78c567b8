"""Example clips as audio: the original, each reconstruction and the residual (original - finetuned), per run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from probe import esc50
from probe.analyses.registry import RunContext, register_analysis
from probe.audio import write_wav
from probe.errors import ConfigError
from probe.esc50 import STUDY_EXAMPLES
from probe.rundir import AFTER, AnalysisDir


def default_examples(run) -> list[int]:
    """The study's examples on ESC-50's fold 1, else the first clip of each class (at most 12)."""

    if tuple(run.class_names) == esc50.CLASS_NAMES and len(run.targets) == 400:
        return list(STUDY_EXAMPLES)
    first_of_class = [int(np.flatnonzero(run.targets == c)[0]) for c in np.unique(run.targets)]
    return first_of_class[:12]


def residual(run, position: int) -> np.ndarray:
    """What the finetuned probe removed from one clip (original - finetuned output)."""
    return np.asarray(run.originals[position]) - np.asarray(run.reconstructions[AFTER][position])


def write_examples(run, examples: list[int], folder: Path) -> list[dict[str, Any]]:
    """WAV files for the chosen clips: original, every reconstruction, and the residual."""

    rows = []
    for position in examples:
        stem = f"{position:04d}"
        files = {condition: write_wav(folder / f"{stem}_{condition}.wav", run.waveforms(condition)[position],
                                      run.sample_rate).name for condition in run.conditions}
        files["residual"] = write_wav(folder / f"{stem}_residual.wav", residual(run, position), run.sample_rate).name
        target = int(run.targets[position])
        class_name = lambda index: run.class_names[index] if index < len(run.class_names) else str(index)  # noqa: E731
        rows.append({"position": position, "clip_id": run.clip_ids[position], "class": run.class_names[target],
                     "category": run.category_names[run.class_categories[target]], "files": files,
                     "predicted": {c: class_name(int(np.argmax(logits[position]))) for c, logits in run.logits.items()}})
    return rows


@register_analysis("examples", tables=())
def examples_analysis(context: RunContext) -> None:
    """Audio of the example clips (and with --residuals all, every clip's residual) beside the tables."""
    run, config = context.run, context.config
    examples = list(config.examples) if config.examples is not None else default_examples(run)
    bad = [i for i in examples if not 0 <= i < len(run.targets)]
    if bad:
        raise ConfigError(None, f"example position {bad[0]} is outside the {len(run.targets)} validation clips of {run.path}")
    audio = context.folder / AnalysisDir.AUDIO
    context.summary["examples"] = write_examples(run, examples, audio)
    if config.residuals == "all":
    
        context.say(f"{run.label}: residual audio for all {len(run.targets)} clips")
        for position, clip_id in enumerate(run.clip_ids):
            write_wav(audio / "residuals" / f"{Path(clip_id).stem}.wav", residual(run, position), run.sample_rate)
