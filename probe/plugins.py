"""Plugins: modules outside probe that register classifiers, autoencoders, probes or analyses.

A plugin is one Python file (or module) whose import registers what it defines, with the same
calls the built-in entries use. Every registry lookup imports the plugins not imported yet
(`probe.registries.Registry`), so the Python API sees what the CLI sees:

- the modules named in the environment variable `PROBE_PLUGINS` (comma-separated module names,
  importable from `sys.path`; a `.py` path also works), and
- the entry points of the group `probe.plugins` of installed packages.

A plugin that fails to import is a one-line error naming it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from probe.errors import ConfigError

ENVIRONMENT_VARIABLE = "PROBE_PLUGINS"
ENTRY_POINT_GROUP = "probe.plugins"
_imported: set[str] = set()
_entry_points_loaded = False


def plugin_names() -> list[str]:
    """The plugins named in the environment, in order."""
    return [name.strip() for name in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",") if name.strip()]


def load_plugins() -> None:
    """Import every plugin not imported yet (environment first, then entry points)."""
    global _entry_points_loaded
    for name in plugin_names():
        if name not in _imported:
            _imported.add(name)
            _import(name)
    if not _entry_points_loaded:  # installed packages do not change while probe runs; reading them costs ~10 ms
        _entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.value not in _imported:
                _imported.add(point.value)
                point.load()


def _import(name: str) -> None:
    try:
        if name.endswith(".py"):
            path = Path(name)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ImportError(f"no such file {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(None, f"cannot import the plugin {name!r} named in ${ENVIRONMENT_VARIABLE}: {exc}") from exc
