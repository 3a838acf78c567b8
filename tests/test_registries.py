"""The one registry type: built-ins found by their package, plugins seen through the Python API, duplicates refused,
and a smoke test over every registry and every entry of the probe and analysis registries."""
from __future__ import annotations

import gc
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from probe.errors import ConfigError
from probe.registries import Registry

KINDS = {"classifier", "probe", "autoencoder", "analysis", "attribution method", "band set", "objective", "scheduler",
         "data kind", "classifier scheme", "Hugging Face feature extractor", "--select-on rule", "correction", "command"}
"""Every kind of registered thing in probe."""


def test_a_name_registered_twice_is_refused_and_a_miss_names_the_alternatives() -> None:
    colours: Registry[int] = Registry("colour")
    colours.register("red", 1)
    assert colours.register("green")(2) == 2  # the decorator form returns what it registers
    with pytest.raises(ConfigError, match="colour 'red' is registered twice"):
        colours.register("red", 3)
    assert colours.lookup("red") == 1 and colours.names() == ["red", "green"]
    with pytest.raises(ConfigError, match=r"unknown colour 'gren' \(did you mean 'green'\?\); known: red, green"):
        colours.lookup("gren")
    with pytest.raises(ConfigError, match="unknown colour 'blue'; known: red, green"):
        colours.lookup("blue")


def test_built_ins_are_every_module_of_their_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "shapes_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from probe.registries import Registry\nSHAPES = Registry('shape', builtins='shapes_pkg')\n")
    for name in ("square", "circle"):  # no list names them: dropping a file in is the whole registration
        (package / f"{name}.py").write_text(f"from shapes_pkg import SHAPES\nSHAPES.register({name!r}, {len(name)})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import shapes_pkg

        assert set(shapes_pkg.SHAPES.names()) == {"square", "circle"} and shapes_pkg.SHAPES.lookup("circle") == 6
    finally:
        for module in [m for m in sys.modules if m.startswith("shapes_pkg")]:
            del sys.modules[module]


def test_a_plugin_is_seen_through_the_python_api_without_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's attribution method is found by the analyses' own name check: no parser had to load the plugins."""
    from probe.analyses.analyse import check_names
    from probe.analyses.attribution import ATTRIBUTION_METHODS
    from probe.analyses.config import AnalyseConfig, AttributionSettings

    plugin = tmp_path / "my_gradient_plugin.py"
    plugin.write_text(textwrap.dedent("""
        from probe.analyses.attribution import register_method

        @register_method("my_gradient")
        def my_gradient(forward, mel, baseline, targets, settings, max_batch):
            return mel
    """))
    monkeypatch.setenv("PROBE_PLUGINS", str(plugin))
    try:
        check_names(AnalyseConfig(runs=("x",), attributions=AttributionSettings(methods=("my_gradient",))))
        assert "my_gradient" in ATTRIBUTION_METHODS
    finally:
        ATTRIBUTION_METHODS.pop("my_gradient", None)
        sys.modules.pop("my_gradient_plugin", None)


def _every_registry() -> list[Registry]:
    import probe.analyses.analyse  # noqa: F401  (imports the analysis-side registries)
    import probe.app.cli
    import probe.data  # noqa: F401
    import probe.folds  # noqa: F401
    import probe.models.classifiers  # noqa: F401
    import probe.models.huggingface  # noqa: F401
    import probe.train.objectives  # noqa: F401
    import probe.train.schedulers  # noqa: F401
    import probe.zoo  # noqa: F401

    probe.app.cli.load_commands()
    return [thing for thing in gc.get_objects() if issubclass(type(thing), Registry)]  # type(): a dead weak proxy raises


def test_every_kind_of_thing_is_one_registry_and_every_entry_looks_up() -> None:
    registries = {registry.kind: registry for registry in _every_registry()}
    assert KINDS <= set(registries), KINDS - set(registries)
    for kind in KINDS:
        registry = registries[kind]
        names = registry.names()
        assert names, kind
        assert all(registry.lookup(name) is registry[name] for name in names)


def _probe_modules() -> list[tuple[str, str]]:
    from probe.probes import PROBES

    return [(spec.name, module.name) for spec in PROBES.entries() for module in spec.modules]


@pytest.mark.parametrize("probe_name, module", _probe_modules())
def test_every_probe_module_meets_the_protocol_and_round_trips(probe_name: str, module: str, tmp_path: Path) -> None:
    from probe.probes import AUTOENCODERS, Probe, get_probe, load_autoencoder, probe_for

    spec = AUTOENCODERS.lookup(module)
    assert probe_for(module) is get_probe(probe_name)
    built = load_autoencoder(module)
    assert isinstance(built, Probe) and built.name == module
    x = torch.randn(1, built.channels, 4096)
    with torch.no_grad():
        y = built(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert spec.sample_rate == (built.sample_rate or 0)  # 0: the classifier's rate (the module says None)
    path = tmp_path / "module.pt"
    torch.save(built.checkpoint(), path)
    with torch.no_grad():
        torch.testing.assert_close(load_autoencoder(str(path))(x), y)


@pytest.fixture(scope="module")
def everything_analysed(tmp_path_factory: pytest.TempPathFactory, two_runs: list[Path]) -> Path:
    """The two small runs analysed with every analysis on (a planted truth included, as the demo has one)."""
    from probe.analyses.analyse import analyse
    from probe.analyses.config import AnalyseConfig, AttributionSettings, PlantedTruth, ShiftSettings

    out = tmp_path_factory.mktemp("everything") / "analysis"
    truth = PlantedTruth(low_band_hz=(250.0, 1000.0), high_band_hz=(3000.0, 6000.0), relies_on={"small_cnn": "low"},
                         attribution_method="saliency")
    config = AnalyseConfig(runs=tuple(map(str, two_runs)), out=str(out), device="cpu", progress=False, planted=truth,
                           shifts=ShiftSettings(n_boot=200),
                           attributions=AttributionSettings(methods=("saliency",), max_clips=5))
    analyse(config)
    return out


def _analyses() -> list[str]:
    from probe.analyses.registry import ANALYSES

    return ANALYSES.names()


@pytest.mark.parametrize("name", _analyses())
def test_every_analysis_runs_on_real_runs(name: str, everything_analysed: Path) -> None:
    import json

    from probe.analyses.registry import ANALYSES

    analysis = ANALYSES.lookup(name)
    summary = json.loads((everything_analysed / "summary.json").read_text())
    if analysis.scope == "comparison":
        assert f"{name}_s" in summary["timings"]
        written = summary["comparison_tables"]
    else:
        folder = everything_analysed / summary["runs"][0]["folder"]
        run_summary = json.loads((folder / "summary.json").read_text())
        assert f"{name}_s" in run_summary["timings"]
        written = run_summary["tables"]
    assert set(written.values()) <= set(_analyses()) and all(written[t] == name for t in analysis.tables if t in written)
