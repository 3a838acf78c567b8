"""probe's analyses; `probe.analyses.load(DIR)` reads an analysis folder back as one DataFrame per table."""


def __getattr__(name: str):
    if name == "load":  # lazily: importing a submodule must not import pandas for nothing
        from probe.analyses.tables import load

        return load
    raise AttributeError(f"module 'probe.analyses' has no attribute {name!r}")
