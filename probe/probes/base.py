"""What a probe is: the module it puts in front of the frozen classifier, and how it trains, in one registration.

A probe is one file (in this package, or a plugin) that defines its module and calls
`register_probe(ProbeSpec(...))`. The spec says, in one place:

- the module(s) it builds (`probe_module`: a builder, its rate, its published weights), which
  must meet the `Probe` protocol, and its training defaults (learning rate, epochs);
- its extra loss term, if any (`Penalty`), weighted by `--<name>-penalty`;
- whether it can train one curve per class (`--per-class`), and whether it is a control;
- the curves it saves beside the run's outputs, which the analyses and the report show.

`probe finetune --probe NAME`, the training objective, the analyses and the report read `PROBES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from probe.models.registry import ModelSpec, WeightSource
from probe.registries import Registry


@runtime_checkable
class Probe(Protocol):
    """What a probe's module must have: a waveform (batch, channels, samples) in, the same shape out."""

    name: str
    """The registered module name; its checkpoint records it, so that `load_autoencoder(path)` rebuilds it."""
    channels: int
    """1 (mono) or 2 (stereo): the pipeline converts the classifier's mono input to this."""
    sample_rate: int | None
    """The rate it runs at; None: the classifier's."""

    def checkpoint(self) -> dict[str, Any]:
        """probe's autoencoder checkpoint: format, module name, options and state_dict."""
        ...

    def __call__(self, waveform: Any) -> Any: ...


def probe_module(name: str, build: Callable[..., Any], *, sample_rate: int, description: str, citation: str = "",
                 weights: tuple[WeightSource, ...] = ()) -> ModelSpec:
    """A module a probe builds: `build(seed=..., **options)` returns a `Probe`; `sample_rate` 0 runs at the
    classifier's rate."""
    return ModelSpec(name, "autoencoder", build, sample_rate, description, citation, tuple(weights))


@dataclass(frozen=True)
class Penalty:
    """An extra loss term: loss = cross-entropy + weight * term(model, x, reconstruction, labels)."""

    name: str
    """The flag is `--<name>-penalty`; also the run label's suffix (`+<name><weight>`) when not the default."""
    default: float
    describes: str
    """What the term measures, as the objective names it ("relative energy")."""
    term: Callable[..., Any]
    """(probe model, input batch, its reconstruction or None, labels or None) -> scalar tensor."""
    needs_reconstruction: bool = False
    help: str = ""


@dataclass(frozen=True)
class Curve:
    """A curve the trained probe saves: `outputs/<name>.npy`, first row the frequencies in Hz, then the values
    (one row, or one per class for a per-class curve)."""

    name: str
    label: str
    """The y-axis label of its figures, e.g. "gain (dB)"."""
    per_class: bool = False
    floor_key: str | None = None
    """The key of outputs/objective.json that holds the curve's lower bound (dB): bands where the trained curve sits
    at its bound get the verdict "not needed" (the bound is where the probe stopped, not a measured level)."""


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    description: str
    learning_rate: float
    epochs: int
    modules: tuple[ModelSpec, ...]
    """What it puts in front of the classifier, by name (`probe_module`); with several, `--autoencoder` chooses."""
    penalty: Penalty | None = None
    per_class: bool = False
    """Whether `--per-class` (one curve per class, each trained on its class's clips) applies."""
    control: bool = False
    """Nothing trains: its outputs sit beside the probes as the no-probe reference."""
    curves: tuple[Curve, ...] = ()
    save_curves: Callable[[Any], dict[str, Any]] | None = None
    """The trained model -> {curve name: array} (see `Curve`)."""
    record: Callable[[Any], dict[str, Any]] | None = None
    """The trained model -> extra fields for outputs/objective.json (e.g. a gain's floor)."""
    caveat: str = ""
    """A bias of the probe a reader must know (the report prints it beside the probe's runs)."""
    kind: Callable[[dict[str, Any]], str] | None = None
    """How the answer and the report name a run of this probe, from its analysis summary (its `penalty`, its
    `bands.random_start`): "spectral gain", "energy-penalised AE"; None: the probe's own name."""

    def kind_of(self, summary: dict[str, Any]) -> str:
        """The kind of probe a run is, by its analysis summary (see `kind`)."""
        return self.kind(summary) if self.kind is not None else self.name

    @property
    def model(self) -> str | None:
        """The module it builds; None where `--autoencoder` chooses among several."""
        return self.modules[0].name if len(self.modules) == 1 else None

    def penalty_weight(self, given: float | None) -> float:
        """The weight of this probe's penalty: the given one, else its default (0 without a penalty)."""
        if self.penalty is None:
            return 0.0
        return self.penalty.default if given is None else float(given)

    def objective_name(self, epochs: int, penalty: float | None, per_class: bool, main_term: str = "cross-entropy") -> str:
        """How the report names what a run of this probe optimised (`main_term`: the classifier's loss)."""
        if not epochs:
            return "none: not trained (a control, or an AE evaluated as it is)"
        terms = [main_term]
        weight = self.penalty_weight(penalty)
        if self.penalty is not None and weight:
            terms.append(f"{weight:g} x {self.penalty.describes}")
        return " + ".join(terms) + (", one probe per class" if per_class else "")

    def label_suffix(self, penalty: float | None) -> str:
        """`+<penalty name><weight>` when the penalty differs from its default, else nothing."""
        if self.penalty is None or penalty is None or float(penalty) == self.penalty.default:
            return ""
        return f"+{self.penalty.name}{float(penalty):g}"


PROBES: Registry[ProbeSpec] = Registry("probe", builtins="probe.probes")
AUTOENCODERS: Registry[ModelSpec] = Registry("autoencoder", builtins="probe.probes")
"""Every probe's modules by name (`--autoencoder`, `probe models --kind autoencoder`), filled by `register_probe`."""


def register_probe(spec: ProbeSpec) -> ProbeSpec:
    """Add a probe type and its modules to `probe finetune --probe`, the objective, the analyses and the report."""
    PROBES.register(spec.name, spec)
    for module in spec.modules:
        AUTOENCODERS.register(module.name, module)
    return spec


def get_probe(name: str) -> ProbeSpec:
    """The registered probe type, or a ConfigError listing the known ones."""
    return PROBES.lookup(name)


def probe_for(module: str) -> ProbeSpec:
    """The probe type that builds this module (a checkpoint's path: the study's `autoencoder` probe)."""
    return next((spec for spec in PROBES.entries() if any(m.name == module for m in spec.modules)),
                PROBES["autoencoder"])


def run_kind(summary: dict[str, Any]) -> str | None:
    """The kind of probe an analysed run is (`ProbeSpec.kind`), from its summary; None for a probe not registered."""
    spec = PROBES.ensure_loaded().get(str(summary.get("probe") or ""))
    return spec.kind_of(summary) if spec is not None else None


def probe_of_run(config: dict[str, Any]) -> ProbeSpec:
    """The probe type a stored run config names (a `probe compare` folder names none: it reads as an autoencoder's)."""
    return get_probe(config.get("probe") or "autoencoder")


def penalty_of_run(config: dict[str, Any]) -> float | None:
    """A stored run config's penalty weight."""
    return config.get("penalty")
