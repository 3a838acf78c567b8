"""What every table of an analysis folder holds: its columns, their types, units and allowed values.

Each analysis declares the schemas of the tables it writes (`register_analysis(tables=(TableSchema(...),))`); the
documentation's tables page is generated from them, and `write_table` checks every table against its schema as it
writes it: a table that drifts from its declaration is logged, and fails outright under `PROBE_STRICT_SCHEMA=1`
(the test suite sets it). Conventions, which every built-in table keeps:

- a table is long: one row per measured thing (a band, a clip, a measure), never one column per condition;
- an interval is `ci_low` and `ci_high` around the row's value (95 % unless the table says otherwise), in its unit;
- a value's unit is in its column name where it has one (`_db`, `_hz`, `points`), and in the schema.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pandas as pd

from probe.rundir import SCHEMA_VERSION

log = logging.getLogger(__name__)


DTYPES = {"float": "f", "int": "iu", "str": "OSU", "bool": "b"}
"""A declared type and the numpy kinds a column of it may have."""


__all__ = ["IDENTITY_COLUMNS", "SCHEMA_VERSION", "Column", "SchemaError", "TableSchema", "check_table", "col",
           "interval", "problems", "with_identity"]


class SchemaError(RuntimeError):
    """A table does not hold what its schema declares."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    """One of `DTYPES`: float, int, str, bool."""
    description: str
    unit: str = ""
    values: tuple[str, ...] = ()
    """The values it may take, where they are a closed set."""
    optional: bool = False
    """Present only in some runs' tables (the description says which)."""


@dataclass(frozen=True)
class TableSchema:
    name: str
    description: str
    """What one row is, and what the table is for."""
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def col(name: str, dtype: str, description: str, unit: str = "", values: tuple[str, ...] = (),
        optional: bool = False) -> Column:
    """A column declaration (shorthand)."""
    if dtype not in DTYPES:
        raise ValueError(f"column {name!r}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return Column(name, dtype, description, unit, tuple(values), optional)


def interval(unit: str = "", of: str = "the value") -> tuple[Column, Column]:
    """The `ci_low` and `ci_high` columns of a row's interval; NaN where there are too few units for one."""
    return (col("ci_low", "float", f"lower end of the 95 % interval of {of} (NaN below 8 units)", unit),
            col("ci_high", "float", f"upper end of the 95 % interval of {of} (NaN below 8 units)", unit))


IDENTITY_COLUMNS = (col("run", "str", "the run's label in the analysis folder"),
                    col("classifier", "str", "the run's classifier"),
                    col("setting", "str", "the run's probe setting"),
                    col("fold", "int", "the run's scored fold (the fold its analyses read)"),
                    col("seed", "int", "the run's training seed"))
"""The columns in front of every per-run table, naming the run a row comes from."""


def with_identity(schema: TableSchema) -> TableSchema:
    """A per-run table's schema with `IDENTITY_COLUMNS` in front."""
    return TableSchema(schema.name, schema.description, (*IDENTITY_COLUMNS, *schema.columns))


def problems(schema: TableSchema, frame: pd.DataFrame) -> list[str]:
    """What in `frame` differs from `schema`: missing or undeclared columns, types, values outside the allowed set."""
    if frame.columns.empty:  # nothing to write (no rows, and no columns either): nothing to check
        return []
    found = []
    missing = [c.name for c in schema.columns if c.name not in frame.columns and not c.optional]
    extra = [name for name in frame.columns if name not in schema.column_names]
    if missing:
        found.append(f"missing columns {', '.join(missing)}")
    if extra:
        found.append(f"undeclared columns {', '.join(map(str, extra))}")
    if frame.empty:
        return found
    for column in schema.columns:
        if column.name not in frame.columns:
            continue
        series = frame[column.name]
        present = series.dropna()
        if present.empty:
            continue
        kind = series.dtype.kind
        if kind == "O" and column.dtype != "str":  # e.g. a bool column with a gap: check the values themselves
            kind = pd.Series(list(present)).infer_objects().dtype.kind
        integral_floats = column.dtype == "int" and kind == "f" and bool((present % 1 == 0).all())  # ints with gaps
        if kind not in DTYPES[column.dtype] and not (column.dtype == "float" and kind in "iu") and not integral_floats:
            found.append(f"column {column.name} is {series.dtype}, declared {column.dtype}")
        if column.values:
            outside = sorted(set(map(str, present.unique())) - set(column.values))
            if outside:
                found.append(f"column {column.name} holds {', '.join(outside[:5])}, outside {', '.join(column.values)}")
    return found


def check_table(schema: TableSchema | None, frame: pd.DataFrame) -> None:
    """Log what in `frame` differs from its schema; raise SchemaError instead under PROBE_STRICT_SCHEMA=1."""
    if schema is None:
        return
    found = problems(schema, frame)
    if not found:
        return
    message = f"table {schema.name}: {'; '.join(found)}"
    if os.environ.get("PROBE_STRICT_SCHEMA") == "1":
        raise SchemaError(message)
    log.warning("%s (its declaration in probe.analyses is out of date: please report it)", message)
