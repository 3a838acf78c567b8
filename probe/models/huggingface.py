"""Hugging Face audio classifiers, probed as they are: `hf:PATH_OR_REPO`.

transformers' `AutoModelForAudioClassification` behind a torch copy of the checkpoint's own feature
extractor, built from its saved config. The extractors transformers ships run on numpy and cut the
gradient the autoencoder learns from; these front-ends keep it. One front-end per extractor class:

- `ASTFeatureExtractor` (AST): Kaldi fbank (torchaudio's, as the extractor calls it), padded or cut to
  `max_length` frames, then `(x - mean) / (2 std)`. The network's input, (frames, mel bins), is held as
  (1, mel bins, frames): the shape every analysis reads as a mel spectrogram.
- `Wav2Vec2FeatureExtractor` (wav2vec2, HuBERT, WavLM, ...): per-clip zero mean and unit variance when
  `do_normalize`, plus an all-ones attention mask where the extractor returns one. The input
  representation is the waveform itself, held as (1, 1, samples); attributions go through the STFT
  inspection layer (`probe.models.inspection`).
- `WhisperFeatureExtractor` (Whisper's audio classifiers): the clip padded with zeros or cut to the
  extractor's `chunk_length` (30 s), a centred Hann STFT of `n_fft` (400) every `hop_length` (160), the
  last frame dropped, the extractor's own Slaney mel filters (80 or 128), log10 floored at 1e-10, then
  floored at 8 below the clip's maximum and scaled as (x + 4) / 4. Held as (1, mel bins, frames).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from probe.errors import ConfigError, RuntimeFailure
from probe.registries import Registry
from probe.models.base import WaveformClassifier
from probe.models.frontend import MelConfig

log = logging.getLogger(__name__)

SCHEME = "hf"
FrontEndBuilder = Callable[[Any, Any], nn.Module]
FRONT_ENDS: Registry[FrontEndBuilder] = Registry("Hugging Face feature extractor")
"""Extractor class name -> builder of its differentiable front-end from (extractor, model config)."""
GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def front_end(extractor_class: str) -> Callable[[FrontEndBuilder], FrontEndBuilder]:
    """Decorator: build the front-end for checkpoints whose feature extractor is `extractor_class`."""

    def decorate(builder: FrontEndBuilder) -> FrontEndBuilder:
        return FRONT_ENDS.register(extractor_class, builder)

    return decorate


class KaldiFbank(nn.Module):
    """ASTFeatureExtractor in torch: waveform (B, L) -> normalised fbank (B, 1, mel bins, max_length frames)."""

    def __init__(self, sample_rate: int, num_mel_bins: int, max_length: int, do_normalize: bool, mean: float,
                 std: float) -> None:
        super().__init__()
        self.sample_rate, self.num_mel_bins, self.max_length = int(sample_rate), int(num_mel_bins), int(max_length)
        self.do_normalize, self.mean, self.std = bool(do_normalize), float(mean), float(std)
        # Kaldi's framing (25 ms windows every 10 ms, FFT rounded up to a power of two, 20 Hz to Nyquist): the analyses
        # read the network's mel bands from it.
        window = int(0.025 * sample_rate)
        self.config = MelConfig(sample_rate=self.sample_rate, n_fft=1 << (window - 1).bit_length(), win_length=window,
                                hop_length=int(0.010 * sample_rate), n_mels=self.num_mel_bins, fmin_hz=20.0,
                                fmax_hz=sample_rate / 2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        from torchaudio.compliance.kaldi import fbank

        with torch.autocast(device_type=waveform.device.type, enabled=False):
            frames = []
            for clip in waveform.float():  # Kaldi's fbank takes one clip at a time
                features = fbank(clip.unsqueeze(0), sample_frequency=self.sample_rate, window_type="hanning",
                                 num_mel_bins=self.num_mel_bins)
                missing = self.max_length - features.shape[0]
                features = nn.functional.pad(features, (0, 0, 0, missing)) if missing > 0 else features[: self.max_length]
                frames.append(features)
            features = torch.stack(frames)
            if self.do_normalize:
                features = (features - self.mean) / (2 * self.std)
        return features.transpose(1, 2).unsqueeze(1)

    def model_inputs(self, representation: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keyword arguments of the network's forward: `input_values` (B, frames, mel bins)."""
        return {"input_values": representation[:, 0].transpose(1, 2)}


class NormalisedWaveform(nn.Module):
    """Wav2Vec2FeatureExtractor in torch: waveform (B, L) -> (B, 1, 1, L), zero mean and unit variance per clip."""

    waveform_input = True
    """The network reads the waveform: attributions go through the STFT inspection layer (`probe.models.inspection`)."""

    def __init__(self, sample_rate: int, do_normalize: bool, attention_mask: bool, min_samples: int) -> None:
        super().__init__()
        self.sample_rate, self.do_normalize, self.attention_mask = int(sample_rate), bool(do_normalize), bool(attention_mask)
        self.min_samples = int(min_samples)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.float()
        if self.do_normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-7)
        return x[:, None, None]

    def model_inputs(self, representation: torch.Tensor) -> dict[str, torch.Tensor]:
        """`input_values` (B, L), and the mask of a batch of equal-length clips where the extractor gives one."""
        x = representation[:, 0, 0]
        mask = {"attention_mask": torch.ones(x.shape, dtype=torch.long, device=x.device)} if self.attention_mask else {}
        return {"input_values": x, **mask}


class WhisperLogMel(nn.Module):
    """WhisperFeatureExtractor in torch: waveform (B, L) -> (B, 1, mel bins, frames), the extractor's log-mel."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_samples: int, mel_filters: Any) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.n_samples = int(n_samples)
        self.register_buffer("mel_filters", torch.as_tensor(mel_filters, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            x = waveform.float()
            missing = self.n_samples - x.shape[-1]
            x = nn.functional.pad(x, (0, missing)) if missing > 0 else x[..., : self.n_samples]
            spectrum = torch.stft(x, self.n_fft, self.hop_length, window=self.window, return_complex=True)
            power = spectrum[..., :-1].abs() ** 2
            log_mel = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()
            peak = log_mel.amax(dim=(1, 2), keepdim=True)
            log_mel = (torch.maximum(log_mel, peak - 8.0) + 4.0) / 4.0
        return log_mel.unsqueeze(1)

    def filter_bank(self) -> tuple[Any, Any]:
        """(the STFT's bin frequencies in Hz, the mel filters (mel bins, bins)): the analyses' mel bands."""
        import numpy as np

        return np.linspace(0, self.sample_rate / 2, self.n_fft // 2 + 1), self.mel_filters.T.cpu().numpy()

    def model_inputs(self, representation: torch.Tensor) -> dict[str, torch.Tensor]:
        """`input_features` (B, mel bins, frames)."""
        return {"input_features": representation[:, 0]}


@front_end("WhisperFeatureExtractor")
def whisper_front_end(extractor: Any, config: Any) -> WhisperLogMel:
    """Whisper's front-end from its `WhisperFeatureExtractor`: the mel filters, the STFT and the padded length."""
    return WhisperLogMel(extractor.sampling_rate, extractor.n_fft, extractor.hop_length, extractor.n_samples,
                         extractor.mel_filters)


@front_end("ASTFeatureExtractor")
def ast_front_end(extractor: Any, config: Any) -> KaldiFbank:
    """AST's front-end from its `ASTFeatureExtractor`: mel bins, frames, normalisation."""
    return KaldiFbank(extractor.sampling_rate, extractor.num_mel_bins, extractor.max_length, extractor.do_normalize,
                      extractor.mean, extractor.std)


@front_end("Wav2Vec2FeatureExtractor")
def wav2vec2_front_end(extractor: Any, config: Any) -> NormalisedWaveform:
    """The wav2vec2 family's front-end from its `Wav2Vec2FeatureExtractor`, with the shortest input its convolutions
    take (from the model's config)."""
    return NormalisedWaveform(extractor.sampling_rate, extractor.do_normalize, extractor.return_attention_mask,
                              conv_receptive_field(getattr(config, "conv_kernel", ()), getattr(config, "conv_stride", ())))


def conv_receptive_field(kernels: tuple[int, ...] | list[int], strides: tuple[int, ...] | list[int]) -> int:
    """The fewest samples a stack of strided convolutions turns into one frame (wav2vec2-base: 400)."""
    samples = 1
    for kernel, stride in zip(reversed(list(kernels)), reversed(list(strides))):
        samples = (samples - 1) * stride + kernel
    return samples


class HuggingFaceClassifier(WaveformClassifier):
    """A transformers audio classifier behind its front-end; `output_order` puts its outputs in the data's class order."""

    def __init__(self, *args: Any, output_order: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        order = torch.as_tensor(output_order if output_order is not None else [], dtype=torch.long)
        self.register_buffer("output_order", order, persistent=False)

    @property
    def min_samples(self) -> int:
        own = getattr(self.frontend, "min_samples", None)
        return int(own) if own is not None else super().min_samples

    def logits_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        logits = self.net(**self.frontend.model_inputs(mel)).logits
        return logits[:, self.output_order] if self.output_order.numel() else logits


def is_tagger(config: Any, labels: list[str]) -> bool:
    """Whether the model's outputs are independent sigmoids: its config says so (`problem_type`), or its classes are
    AudioSet's 527, an ontology of tags (the hub's AudioSet ASTs leave `problem_type` unset). `load_classifier`'s
    `multi_label` option overrides both."""
    from probe.audioset import audioset_class_names

    if getattr(config, "problem_type", None) == "multi_label_classification":
        return True
    return len(labels) == len(audioset_class_names()) and set(labels) == set(audioset_class_names())


def weights_file(folder: Path) -> Path | None:
    """The weights file of a local checkpoint folder (for the run's provenance hashes), else None."""
    return next((folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()), None)


def load_hf_classifier(source: str, num_classes: int | None, class_names: list[str] | None,
                       options: dict[str, Any]) -> HuggingFaceClassifier:
    """`source` (a local folder written by `save_pretrained`, or a hub id) as a waveform-in, logits-out classifier at its
    extractor's sample rate. `options` go to both `from_pretrained` calls (e.g. `revision`). Class names are the
    model's `id2label`, or `class_names` (the data's): a permutation of the model's names reorders the outputs."""
    try:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    except ImportError as exc:
        raise ConfigError(None, f"hf:{source} needs the transformers package ({exc})") from None

    name = f"{SCHEME}:{source}"
    folder = Path(source).expanduser()
    if source.startswith(("/", ".", "~")) and not folder.is_dir():
        raise ConfigError(folder, "no such folder (a transformers checkpoint written by save_pretrained)")
    local = folder if folder.is_dir() else None
    def announce() -> None:  # once the hub is known to answer for the id: it is asked for files not in the cache
        check_hub(source, options)
        print(f"probe: fetching {source} from the Hugging Face hub into its cache (set HF_HUB_OFFLINE=1 to use only the "
              "cache)", file=sys.stderr, flush=True)

    announce = functools.cache(announce)
    with quiet_transformers():
        try:
            extractor = _from_pretrained(AutoFeatureExtractor, local or source, options, announce)
            model = _from_pretrained(AutoModelForAudioClassification, local or source, options, announce)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(None, f"cannot load the Hugging Face classifier {source!r}: {_first_line(exc)}") from None
    builder = FRONT_ENDS.get(type(extractor).__name__)
    if builder is None:
        raise ConfigError(None, f"{name}: its feature extractor {type(extractor).__name__} has no differentiable "
                                f"front-end here; supported: {', '.join(sorted(FRONT_ENDS))}")
    labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    if num_classes is not None and num_classes != len(labels):
        raise ConfigError(None, f"{name} has {len(labels)} outputs but the data has {num_classes} classes; probe it "
                                "on data with its own classes")
    order = output_order(labels, class_names, name) if class_names else None
    classifier = HuggingFaceClassifier(
        name, builder(extractor, model.config), model, sample_rate=extractor.sampling_rate,
        class_names=list(class_names) if class_names else labels, options=options, output_order=order,
    )
    classifier.multi_label = is_tagger(model.config, labels)
    classifier.source_file = weights_file(local) if local else None
    return classifier


def check_hub(repo_id: str, options: dict[str, Any]) -> None:
    """Ask the Hugging Face hub, once and briefly (`HF_HUB_ETAG_TIMEOUT` seconds at most), whether it has the model
    `repo_id`, before transformers asks it (which, when the hub cannot be reached, retries for a minute and then blames
    a local directory). An id the hub cannot be asked about, offline or unreachable, is a `RuntimeFailure`; one it
    says it does not have (or not at the revision asked for) is a `ConfigError`."""
    from huggingface_hub import constants, errors, get_hf_file_metadata, hf_hub_url

    name = f"{SCHEME}:{repo_id}"
    unreachable = "the Hugging Face hub could not be reached or has no such model (offline or unknown id)"
    if constants.HF_HUB_OFFLINE:
        raise RuntimeFailure(name, f"{unreachable}: it is not in the Hugging Face cache, and HF_HUB_OFFLINE is set")
    revision = options.get("revision")
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json", revision=revision), token=options.get("token"),
                             timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except errors.GatedRepoError:
        raise ConfigError(name, "a gated model on the Hugging Face hub: accept its conditions on its page, then log "
                                "in (`hf auth login`)") from None
    except errors.RepositoryNotFoundError:
        raise ConfigError(name, "the Hugging Face hub has no such model (an unknown id, or a private one: log in "
                                "with `hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise ConfigError(name, f"the Hugging Face hub has no revision {revision!r} of this model") from None
    except errors.LocalEntryNotFoundError as exc:  # what huggingface_hub raises for a hub it could not ask
        raise RuntimeFailure(name, f"{unreachable}: {_first_line(exc)}") from None
    except errors.EntryNotFoundError:
        return  # the model is there, without a config.json: transformers says what it lacks
    except (OSError, errors.HTTPError) as exc:  # no network, no name resolution, a timeout, a hub that fails
        raise RuntimeFailure(name, f"{unreachable}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_pretrained(cls: Any, source: str | Path, options: dict[str, Any], announce: Callable[[], None]) -> Any:
    """From a local folder (a Path), or a hub id from the hub's local cache first, then from the hub itself, calling
    `announce` (which checks that the hub answers for the id) before it asks the hub."""
    if isinstance(source, Path):
        return cls.from_pretrained(str(source), **options)
    try:
        return cls.from_pretrained(source, local_files_only=True, **options)
    except OSError:
        announce()
        return cls.from_pretrained(source, **options)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' notes, its weight-loading bar and the hub's retry warnings are not the user's concern here: the
    outcome is (a loaded model, or one error line)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub = logging.getLogger("huggingface_hub")
    hub_level = hub.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hub.setLevel(hub_level)
        if bars:
            hf_logging.enable_progress_bar()


def output_order(labels: list[str], class_names: list[str], name: str) -> list[int] | None:
    """Where the model's names are the data's in another order, the model output for each of the data's classes;
    None where output i is taken as class i (warned about where the names differ and the model's are not generic)."""
    def key(text: str) -> str:
        return re.sub(r"[\s_-]+", " ", text).strip().lower()

    model_keys, data_keys = [key(label) for label in labels], [key(c) for c in class_names]
    if model_keys == data_keys or all(GENERIC_LABEL.match(label) for label in labels):
        return None
    if sorted(model_keys) == sorted(data_keys) and len(set(model_keys)) == len(model_keys):
        log.info("%s: its outputs are reordered to the data's class order", name)
        return [model_keys.index(k) for k in data_keys]
    differing = [(m, d) for m, d in zip(labels, class_names) if key(m) != key(d)]
    log.warning("%s: %d of its labels differ from the data's class names (first: %r vs %r); output i is taken as the "
                "data's class i", name, len(differing), *differing[0])
    return None
