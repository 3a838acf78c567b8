"""The one door that loads classifiers (registered, `package.module:factory` or an entry point), and saves them."""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from probe.errors import CheckpointError, ConfigError
from probe.models.base import WaveformClassifier, default_class_names
from probe.models.checkpoint import CLASSIFIER_FORMAT, extract_state_dict, load_state_dict_strict, read_checkpoint
from probe.models.registry import CLASSIFIERS
from probe.registries import Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "probe.classifiers"


def _hugging_face(source: str, num_classes: int | None, class_names: list[str] | None,
                  options: dict[str, Any]) -> WaveformClassifier:
    """`hf:SOURCE`: a transformers audio-classification checkpoint, by hub id or `save_pretrained` folder."""
    from probe.models.huggingface import load_hf_classifier

    return load_hf_classifier(source, num_classes, class_names, options)


def _saved_module(source: str, num_classes: int | None, class_names: list[str] | None,
                  options: dict[str, Any]) -> WaveformClassifier:
    """`module:FILE`: a classifier object saved whole by `probe.finetune` (torch's pickle; its class must be
    importable where it loads), read only from $PROBE_HOME/classifiers, where probe keeps them."""
    from probe.download import probe_home

    path = Path(source)
    kept = (probe_home() / "classifiers").resolve()
    if kept not in path.resolve().parents:  # a pickle runs code when it loads: only what probe.finetune kept itself
        raise ConfigError(path, f"a saved classifier object loads only from {kept}, where probe.finetune keeps them "
                                "(unpickling a file from elsewhere could run any code)")
    if not path.is_file():
        raise ConfigError(path, "no such saved classifier")
    try:
        classifier = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        raise ConfigError(path, f"cannot load the saved classifier ({exc}): its class must be importable here; define "
                                "it in a module rather than in a notebook cell to analyse from another process") from None
    if not isinstance(classifier, WaveformClassifier):
        raise ConfigError(path, f"holds a {type(classifier).__name__}, not a probe classifier")
    _settle_head(classifier, f"module:{path}", classifier.num_classes, num_classes, class_names)
    return classifier


SCHEMES: Registry[Callable[..., WaveformClassifier]] = Registry("classifier scheme")
"""`SCHEME:SOURCE` classifier names: each scheme's loader builds the classifier from SOURCE (hf: a transformers
checkpoint folder or hub id; module: a classifier object `probe.finetune` saved). Any other `a:b` is a user's `package.module:factory`."""
SCHEMES.register("hf", _hugging_face)
SCHEMES.register("module", _saved_module)


def canonical_classifier_name(name: str) -> str:
    """The name a run records: a scheme's local folder as an absolute path (the analyses load it from anywhere), any
    other name as it is."""
    scheme, _, source = name.partition(":")
    path = Path(source).expanduser()
    return f"{scheme}:{path.resolve()}" if scheme in SCHEMES and path.is_dir() else name


def save_classifier(classifier: WaveformClassifier, path: str | Path, folds: dict[str, Any] | None = None) -> Path:
    """Write `classifier` in probe's checkpoint format, atomically, with the record of the folds it learned from
    (`probe.folds.FoldRecord.to_json`) where one is given. A classifier built without trained weights is saved as
    untrained (`WaveformClassifier.untrained`) until the code that trains it sets that to None."""
    from probe.fileio import atomic_write

    path = Path(path)
    with atomic_write(path) as handle:
        torch.save({**classifier.checkpoint(), **({"folds": folds} if folds else {})}, handle)
    return path


def load_classifier(
    name: str,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    *,
    class_names: list[str] | None = None,
    frozen: bool = True,
    device: str | torch.device = "cpu",
    **options: Any,
) -> WaveformClassifier:
    """Build a registered classifier (or `hf:PATH_OR_REPO`, or `package.module:factory`), load `weights` strictly,
    freeze it.

    `weights` may be a published checkpoint (the network's plain state_dict) or one written
    by probe. `num_classes` defaults to the checkpoint's head, else 50 (ESC-50); giving a
    different count keeps the body's weights and replaces the head. The option `multi_label`
    (True: independent sigmoid outputs) overrides what the classifier says of itself.
    """
    options = dict(options)
    multi_label = options.pop("multi_label", None)
    checkpoint = read_checkpoint(weights) if weights is not None else None
    saved_multi_label = untrained = None
    if isinstance(checkpoint, dict) and checkpoint.get("format") == CLASSIFIER_FORMAT:
        options = {**checkpoint.get("options", {}), **options}
        class_names = class_names or checkpoint.get("class_names")
        saved_multi_label = checkpoint.get("multi_label")
        if checkpoint.get("untrained"):
            untrained = (f"{weights} was saved untrained ({checkpoint['untrained']}; code that trains a classifier "
                         "itself sets `classifier.untrained = None` before `save_classifier`)")
    scheme, _, source = name.partition(":")
    if scheme in SCHEMES.ensure_loaded() or ":" in name or _entry_point(name) is not None:
        if scheme in SCHEMES:
            classifier = SCHEMES[scheme](source, num_classes, class_names, options)
        else:
            requested = num_classes or (len(class_names) if class_names else None)
            classifier = _build_user_classifier(name, requested or 50, class_names, options)
            _settle_head(classifier, name, requested or 50, num_classes, class_names)
        if checkpoint is not None:
            load_state_dict_strict(classifier.net, extract_state_dict(checkpoint, weights), weights)
    else:
        spec = CLASSIFIERS.lookup(name)
        state = extract_state_dict(checkpoint, weights) if checkpoint is not None else None
        file_classes = _head_size(state, spec.head_keys)
        built_classes = num_classes or (len(class_names) if class_names else None) or file_classes or 50
        classifier = spec.builder(num_classes=built_classes, trained=weights is not None, **options)
        built_classes = _settle_head(classifier, name, built_classes, num_classes, class_names)
        if spec.tagger_classes:
            classifier.multi_label = built_classes in spec.tagger_classes
        if state is None and "untrained" not in vars(classifier):  # a builder that loads its own weights says so
            untrained = f"{name} has no trained weights (none were given)"
        elif state is not None:
            if file_classes is not None and file_classes != built_classes:
                log.info("%s: replacing the %d-class head with a %d-class one", weights, file_classes, built_classes)
                untrained = (f"{weights}: its {file_classes}-class head was replaced by an untrained "
                             f"{built_classes}-class one")
                state = {k: v for k, v in state.items() if not _is_head_key(k, spec.head_keys)}
                _load_body(classifier.net, state, weights, spec.head_keys)
            else:
                load_state_dict_strict(classifier.net, state, weights)
    for said in (saved_multi_label, multi_label):  # the caller's word over the checkpoint's over the model's own
        if said is not None:
            classifier.multi_label = bool(said)
    if untrained:
        classifier.untrained = untrained
    if len(classifier.class_names) != classifier.num_classes:
        raise ConfigError(None, f"{len(classifier.class_names)} class names for {classifier.num_classes} classes")
    classifier = classifier.to(device)
    return classifier.freeze() if frozen else classifier.train(False)


def _outputs(model: nn.Module, rate: int, asked: int) -> int:
    """How many outputs a plain waveform module gives (one second of silence at `rate`); `asked` where that pass
    fails."""
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, rate))  # eval: a pass in train mode would move batch-norm statistics
        out = out[0] if isinstance(out, (tuple, list)) else out
        return int(out.shape[-1])
    except Exception:  # a module that needs another input length: trust the count it was asked for
        return asked
    finally:
        model.train(was_training)


def _settle_head(classifier: WaveformClassifier, name: str, built: int, asked: int | None,
                 class_names: list[str] | None) -> int:
    """The classifier's class names and count after its builder ran with `built` classes; returns the count.

    A builder that re-heads returns `built` outputs: the caller's names, else its own where they are not the
    placeholder ones, else the default names for that count. A builder with a fixed head returns its own count and
    names whatever it was asked: it keeps them, and a count asked of it explicitly (`asked`, or the caller's
    names) that differs is refused."""
    own = list(classifier.class_names)
    if len(own) != built:
        wanted = asked or (len(class_names) if class_names else None)
        if wanted is not None and wanted != len(own):
            raise ConfigError(None, f"{name} has a fixed {len(own)}-class head and cannot be re-headed to {wanted} "
                                    "classes: use it with its own classes (e.g. --objective fidelity on unlabeled "
                                    "audio), or register a builder that re-heads")
        return len(own)
    placeholder = not own or own == [f"class_{i}" for i in range(len(own))] or own == default_class_names(built)
    if class_names and list(class_names) != own:
        if not placeholder:
            log.warning("%s: its own class names differ from the data's (first: %r vs %r); output i is taken as the "
                        "data's class i", name, *next((o, c) for o, c in zip(own, class_names) if o != c))
        classifier.class_names = list(class_names)
    elif not class_names and placeholder:
        classifier.class_names = default_class_names(built)
    return built


def require_trained(classifier: WaveformClassifier, allow_untrained: bool, where: str | None = None) -> None:
    """Refuse (a `ConfigError`) a classifier whose weights are not trained, unless `allow_untrained`: probing an
    untrained network answers nothing about a trained one. `where` names the run or file it belongs to."""
    if classifier.untrained and not allow_untrained:
        raise ConfigError(where, f"{classifier.untrained}: give its trained weights (--classifier-weights PATH, or a "
                                 "name from `probe download weights --list`), or pass --allow-untrained to probe an "
                                 "untrained network on purpose")


def _head_size(state: dict[str, torch.Tensor] | None, head_keys: tuple[str, ...]) -> int | None:
    if state is None:
        return None
    for key in head_keys:
        if key.endswith(".bias") and key in state:
            return int(state[key].shape[0])
    return None


def _is_head_key(key: str, head_keys: tuple[str, ...]) -> bool:
    return any(key.startswith(head.rsplit(".", 1)[0] + ".") for head in head_keys)


def _load_body(net: nn.Module, state: dict[str, torch.Tensor], path: Any, head_keys: tuple[str, ...]) -> None:
    """Load everything but the head strictly; the new head keeps its fresh initialisation."""
    body = {k: v for k, v in net.state_dict().items() if not _is_head_key(k, head_keys)}
    missing = [k for k in body if k not in state]
    unexpected = [k for k in state if k not in body]
    wrong = [k for k in body if k in state and state[k].shape != body[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            path, f"body does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    net.load_state_dict(state, strict=False)


def _entry_point(name: str) -> Callable[..., Any] | None:
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name:
            return point.load()
    return None


def _build_user_classifier(
    name: str, num_classes: int, class_names: list[str] | None, options: dict[str, Any]
) -> WaveformClassifier:
    """A user's classifier from `package.module:factory` or a `probe.classifiers` entry point.

    The factory takes `num_classes` and returns either a `WaveformClassifier` or any module
    mapping a waveform (B, L) to logits (`wrap_module`), which must say its `sample_rate`.
    """
    factory = _entry_point(name)
    if factory is None:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(None, f"cannot import classifier factory {name!r}: {exc}") from exc
    model = factory(num_classes=num_classes, **options)
    if isinstance(model, WaveformClassifier):
        return model
    if not isinstance(model, nn.Module):
        raise ConfigError(None, f"classifier factory {name!r} returned {type(model).__name__}, not a torch module")
    rate = getattr(model, "sample_rate", None)
    if not rate:
        raise ConfigError(None, f"{name}: the module it returns has no `sample_rate` attribute: set "
                                "`model.sample_rate = RATE` (the rate it was trained at) in the factory")
    return wrap_module(model, int(rate), class_names=class_names, name=name, options=options, asked=num_classes)


def wrap_module(model: nn.Module, sample_rate: int, class_names: list[str] | None = None, *, name: str | None = None,
                options: dict[str, Any] | None = None, multi_label: bool | None = None,
                asked: int | None = None) -> WaveformClassifier:
    """Any module mapping a waveform (B, L) at `sample_rate` to logits (B, classes), as a `WaveformClassifier` with a
    pass-through front-end. Its head is kept as it is: the class names are the module's own `class_names`, else
    `class_names` where their count matches its outputs, else `class_0`, `class_1`, ... (counted on one short
    pass). `multi_label`: its outputs are independent sigmoids (default: the module's own `multi_label`, else False).
    A user's module is taken as trained."""
    if not isinstance(model, nn.Module):
        raise ConfigError(None, f"expected a torch module mapping waveforms to logits, got {type(model).__name__}")
    if not isinstance(sample_rate, (int, float)) or sample_rate <= 0:
        raise ConfigError(None, f"sample_rate must be the rate the classifier was trained at, in Hz; got {sample_rate!r}")
    own = getattr(model, "class_names", None)
    count = len(own) if own else _outputs(model, int(sample_rate), asked or (len(class_names) if class_names else 50))
    names = own or (class_names if class_names and len(class_names) == count else default_class_names(count))
    classifier = WaveformClassifier(name or type(model).__name__, nn.Identity(), model, sample_rate=int(sample_rate),
                                    class_names=list(names), options=options or {})
    classifier.multi_label = bool(getattr(model, "multi_label", False) if multi_label is None else multi_label)
    return classifier
