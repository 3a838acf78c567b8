"""The tables' declared schemas: every built-in table has one, the check finds what differs, strict mode fails, and
an analysis folder says which layout it holds."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.analyses import registry
from probe.analyses.schema import SCHEMA_VERSION, SchemaError, TableSchema, check_table, col, interval, problems
from probe.rundir import Tables

SCHEMA = TableSchema("toy", "a toy table", (col("name", "str", "a name"), col("count", "int", "a count"),
                                            col("level_db", "float", "a level", "dB"), *interval("dB"),
                                            col("kind", "str", "a kind", values=("a", "b")),
                                            col("extra", "bool", "sometimes there", optional=True)))


def _frame(**changes) -> pd.DataFrame:
    frame = pd.DataFrame({"name": ["x", "y"], "count": [1, 2], "level_db": [0.5, 1.5], "ci_low": [0.0, 1.0],
                          "ci_high": [1.0, 2.0], "kind": ["a", "b"]})
    return frame.assign(**changes)


def test_a_table_that_matches_has_no_problems() -> None:
    assert problems(SCHEMA, _frame()) == []
    assert problems(SCHEMA, _frame(extra=[True, False])) == []  # an optional column, present
    assert problems(SCHEMA, _frame(count=[1.0, np.nan])) == []  # integers with a gap become floats
    assert problems(SCHEMA, _frame().iloc[:0]) == []  # no rows: the columns alone are checked


@pytest.mark.parametrize(("frame", "found"), [
    (_frame().drop(columns="ci_high"), "missing columns ci_high"),
    (_frame(surprise=1), "undeclared columns surprise"),
    (_frame(count=["1", "2"]), "declared int"),
    (_frame(level_db=["high", "low"]), "declared float"),
    (_frame(kind=["a", "c"]), "column kind holds c, outside a, b"),
])
def test_what_differs_is_named(frame: pd.DataFrame, found: str) -> None:
    assert found in "; ".join(problems(SCHEMA, frame))


def test_strict_mode_fails_and_the_default_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PROBE_STRICT_SCHEMA", "1")
    with pytest.raises(SchemaError, match="table toy: undeclared columns surprise"):
        check_table(SCHEMA, _frame(surprise=1))
    monkeypatch.delenv("PROBE_STRICT_SCHEMA")
    check_table(SCHEMA, _frame(surprise=1))
    assert "table toy: undeclared columns surprise" in caplog.text


def test_every_built_in_table_is_declared_once_and_per_run_tables_name_their_run() -> None:
    names = {value for key, value in vars(Tables).items() if key.isupper()}
    schemas = registry.table_schemas()
    assert names <= set(schemas), sorted(names - set(schemas))
    declared = [schema.name for analysis in registry.ANALYSES.entries() for schema in analysis.schemas]
    assert len(declared) == len(set(declared))
    for analysis in registry.ANALYSES.entries():
        assert {schema.name for schema in analysis.schemas} == set(analysis.tables)
        for schema in analysis.schemas:
            columns = schema.column_names
            assert len(columns) == len(set(columns)), schema.name
            assert all(c.description for c in schema.columns), schema.name
            if analysis.scope == "run":
                assert columns[:5] == ("run", "classifier", "setting", "fold", "seed")
            # one spelling for intervals: ci_low and ci_high, never a per-measure or per-unit variant
            assert not [c for c in columns if re.search(r"(?<!minus)_(low|high)(_db)?$", c)
                        and c not in ("ci_low", "ci_high")], columns


def test_an_analysis_folder_says_its_layout_and_an_older_one_is_refused(tmp_path: Path) -> None:
    from probe.errors import ConfigError
    from probe.rundir import AnalysisDir

    (tmp_path / "run").mkdir()
    summary = {"schema_version": SCHEMA_VERSION, "tables": {}, "setting": "s", "label": "a"}
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    assert AnalysisDir(tmp_path).run_summary("run")["schema_version"] == SCHEMA_VERSION
    (tmp_path / "run" / "summary.json").write_text(json.dumps({**summary, "schema_version": SCHEMA_VERSION - 1}))
    with pytest.raises(ConfigError, match="older probe.*probe analyse"):
        AnalysisDir(tmp_path).run_summary("run")
