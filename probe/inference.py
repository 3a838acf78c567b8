"""`probe predict` and `probe reconstruct` as library functions over configs."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from probe.errors import AudioError, ProbeError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from probe.audio import Audio

@dataclass(frozen=True)
class PredictConfig:
    """Which classifier to run on which files."""

    classifier: str
    audio: tuple[str, ...]
    classifier_weights: str | None = None
    num_classes: int | None = None
    device: str = "cpu"
    strict: bool = False
    top_k: int = 1
    classifier_options: dict[str, Any] = field(default_factory=dict)
    """Build options for the classifier (`--classifier-option`), e.g. `revision` for `hf:`."""


@dataclass(frozen=True)
class ReconstructConfig:
    """Which autoencoder to run on which files, and where the reconstructions go."""

    autoencoder: str
    audio: tuple[str, ...]
    out: str
    ae_weights: str | None = None
    device: str = "cpu"
    strict: bool = False


@dataclass
class FileResult:
    """One input file: its output, or the reason it was skipped."""

    path: str
    error: str | None = None
    logits: list[float] = field(default_factory=list)
    output: str | None = None
    padded_from: int | None = None
    """The file's length in samples (at the model's rate) when it was shorter than the model takes and was padded."""


def expand_inputs(inputs: tuple[str, ...]) -> Iterator[Path]:
    """Each input file; folders expand to their audio files (other names in a folder are ignored)."""
    from probe.audio import is_audio_file

    for item in inputs:
        path = Path(item)
        if path.is_dir() and not is_audio_file(path):
            members = sorted(p for p in path.rglob("*") if is_audio_file(p))
            if not members:
                raise AudioError(path, "folder holds no audio files")
            yield from members
        else:
            yield path


def load_inputs(
    inputs: tuple[str, ...], strict: bool, results: list[FileResult], **load_options: object
) -> Iterator[tuple[Path, Audio]]:
    """Yield (path, audio) for every readable input. An unreadable one goes into `results` with its reason and the
    batch goes on, as cat and grep do; with `strict` the first one stops it (a ProbeError)."""
    from probe.audio import load_audio

    for path in expand_inputs(inputs):
        try:
            yield path, load_audio(path, **load_options)  # type: ignore[arg-type]
        except ProbeError as exc:
            if strict:
                raise
            results.append(FileResult(str(path), error=exc.reason))


def predict_files(config: PredictConfig) -> tuple[list[FileResult], list[str]]:
    """(results, class names): each file's logits, or the reason it could not be read. A file shorter than the
    classifier takes is zero-padded to its shortest input, and the result says from how many samples."""
    import torch

    from probe.download import resolve_weights
    from probe.models.classifiers import load_classifier

    weights = resolve_weights(config.classifier_weights) if config.classifier_weights else None
    classifier = load_classifier(config.classifier, weights, config.num_classes, device=config.device,
                                 **config.classifier_options)
    if classifier.untrained:  # finetune and analyse refuse such a classifier; a prediction only says what it is
        log.warning("warning: %s, so these logits are an untrained network's and say nothing of a trained one; give "
                    "its trained weights with --classifier-weights", classifier.untrained)
    results: list[FileResult] = []
    for path, audio in load_inputs(config.audio, config.strict, results, sample_rate=classifier.sample_rate, mono=True):
        waveform, padded_from = classifier.pad_short(audio.waveform)
        with torch.inference_mode():
            logits = classifier(waveform.to(config.device))[0]
        results.append(FileResult(str(path), logits=logits.cpu().tolist(), padded_from=padded_from))
    return results, classifier.class_names


def reconstruct_files(config: ReconstructConfig) -> list[FileResult]:
    """Write each file's reconstruction, at the autoencoder's rate and channel count, into the folder `out`."""
    import torch

    from probe.audio import fit_length, to_stereo, write_wav
    from probe.download import resolve_weights
    from probe.probes.loading import load_autoencoder

    from probe.outputs import check_output, claim_output

    inputs = (*config.audio, config.ae_weights)
    check_output(config.out, "reconstructions", inputs)
    weights = resolve_weights(config.ae_weights) if config.ae_weights else None
    autoencoder = load_autoencoder(config.autoencoder, weights, device=config.device)
    out_dir = claim_output(config.out, "reconstructions", inputs)
    results: list[FileResult] = []
    mono = autoencoder.channels == 1
    for path, audio in load_inputs(config.audio, config.strict, results, sample_rate=autoencoder.sample_rate, mono=mono):
        x = audio.waveform
        if autoencoder.channels == 2:
            x = to_stereo(x)
        with torch.inference_mode():
            y = autoencoder(x.unsqueeze(0).to(config.device))[0]
        target = out_dir / (path.stem + ".wav")
        write_wav(target, fit_length(y, x.shape[-1]), autoencoder.sample_rate)
        results.append(FileResult(str(path), output=str(target)))
    return results
