"""Probes: what sits between the audio and the frozen classifier while only it trains.

Each probe type declares, in one place (its own module here, or a plugin):

- the model it builds (a registered autoencoder; None lets `--autoencoder` choose), and its
  training defaults (learning rate, epochs);
- its extra loss term, if any (`Penalty`), weighted by `--<name>-penalty`;
- whether it can train one curve per class (`--per-class`);
- whether it is a control (nothing trains);
- the curves it saves beside the run's outputs, which the analyses and the report show.

`probe finetune --probe NAME`, the training objective, the analyses and the report all read this
registry. A new probe is one new module that calls `register_probe(ProbeSpec(...))`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from probe.plugins import loader
from probe.registries import Registry

BUILTIN_MODULES = ("autoencoder", "spectral_gain", "identity")


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
    model: str | None
    """The registered autoencoder it builds; None: the one `--autoencoder` names."""
    learning_rate: float
    epochs: int
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


PROBES: Registry[ProbeSpec] = Registry("probe", load=loader("probe.probes", BUILTIN_MODULES))


def register_probe(spec: ProbeSpec) -> ProbeSpec:
    """Add a probe type to `probe finetune --probe`, the objective, the analyses and the report."""
    PROBES.register(spec.name)(spec)
    return spec


def get_probe(name: str) -> ProbeSpec:
    """The registered probe type, or a ConfigError listing the known ones."""
    return PROBES.lookup(name)


def probe_for(autoencoder: str) -> ProbeSpec:
    """The probe type that builds this autoencoder, else the study's (`autoencoder`)."""
    PROBES.ensure_loaded()
    return next((spec for spec in PROBES.values() if spec.model == autoencoder), PROBES["autoencoder"])


def probe_of_run(config: dict[str, Any]) -> ProbeSpec:
    """The probe type a stored run config used (configs written before the registry name none)."""
    return get_probe(config["probe"]) if config.get("probe") else probe_for(str(config.get("autoencoder", "")))


def penalty_of_run(config: dict[str, Any]) -> float | None:
    """A stored run config's penalty weight (older configs hold energy_penalty / gain_penalty)."""
    if "penalty" in config:
        return config["penalty"]
    spec = probe_of_run(config)
    if spec.penalty is not None:
        return config.get(f"{spec.penalty.name}_penalty")
    return None
