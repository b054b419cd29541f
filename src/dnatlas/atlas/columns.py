"""Small helpers for finalizers: tables as column dicts, features updated by key.

Finalizers get ``{table: pyarrow.Table}`` (or column dicts, in tests) and return the
same; these helpers read rows and write ``features`` columns joined on
``(dictionary, feature)`` without pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dnatlas.atlas import schema


def as_columns(table, names: Iterable[str] | None = None) -> dict[str, list]:
    """A pyarrow table, a column dict or None as ``{column: list}`` (only ``names``, those
    present, when given: the wide list columns are slow to read into Python)."""
    if table is None:
        return {}
    have = table.column_names if hasattr(table, "column_names") else list(table)
    keep = have if names is None else [n for n in names if n in have]
    if hasattr(table, "to_pydict"):
        return table.select(keep).to_pydict()
    return {k: list(table[k]) for k in keep}


def rows(table, names: Iterable[str] | None = None) -> list[dict]:
    """The rows of ``table`` as dicts (only the columns ``names`` when given)."""
    cols = as_columns(table, names)
    if not cols:
        return []
    names = list(cols)
    return [dict(zip(names, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def like(original, table_name: str, columns: Mapping[str, list]):
    """``columns`` as the kind of table ``original`` is: a pyarrow table (schema types)
    unless ``original`` is a plain column dict."""
    if isinstance(original, Mapping):
        return dict(columns)
    import pyarrow as pa

    types = {c: t for c, t, _ in schema.TABLES[table_name]}
    return pa.table({c: pa.array(v, type=arrow_type(types[c]) if c in types else None)
                     for c, v in columns.items()})


def update_features(features, values: Mapping[tuple[str, int], Mapping[str, object]],
                    names: Iterable[str]):
    """``features`` with columns ``names`` set from ``values`` ({(dictionary, feature):
    {column: value}}); rows absent from ``values`` keep their value (NULL if new). Other
    columns are left untouched."""
    names = list(names)
    cols = as_columns(features, ["dictionary", "feature", *names])
    keys = list(zip(cols["dictionary"], cols["feature"], strict=True))
    new = {}
    for name in names:
        old = cols.get(name, [None] * len(keys))
        new[name] = [values[k][name] if k in values and name in values[k] else v
                     for k, v in zip(keys, old, strict=True)]
    if isinstance(features, Mapping):
        return {**features, **new}
    import pyarrow as pa

    types = {c: t for c, t, _ in schema.TABLES["features"]}
    table = features
    for name, column in new.items():
        array = pa.array(column, type=arrow_type(types[name]) if name in types else None)
        i = table.column_names.index(name) if name in table.column_names else -1
        table = table.set_column(i, name, array) if i >= 0 else table.append_column(name, array)
    return table


def append_rows(table_name: str, table, new: Mapping[str, list]):
    """``table`` (possibly None) with the rows ``new`` (a column dict) appended."""
    cols = as_columns(table) or {c: [] for c in schema.columns(table_name)}
    n = len(next(iter(new.values()), []))
    for name in schema.columns(table_name):
        cols.setdefault(name, [])
        cols[name] = list(cols[name]) + list(new.get(name, [None] * n))
    return like(table, table_name, {c: cols[c] for c in schema.columns(table_name)})


_ARROW: dict = {}


def arrow_type(duck: str):
    """The Arrow type a schema column of DuckDB type ``duck`` is built with."""
    import pyarrow as pa

    if not _ARROW:
        base = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
                "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "BOOLEAN": pa.bool_(),
                "BLOB": pa.binary()}
        _ARROW.update(base)
        _ARROW.update({f"{k}[]": pa.list_(v) for k, v in base.items()})
    return _ARROW[duck]
