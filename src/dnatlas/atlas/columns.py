"""Small helpers for finalizers: tables as column dicts, features updated by key.

Finalizers get ``{table: pyarrow.Table}`` (or column dicts, in tests) and return the
same; these helpers read rows and write ``features`` columns joined on
``(dictionary, feature)`` without pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dnatlas.atlas import schema


def as_columns(table) -> dict[str, list]:
    """A pyarrow table, a column dict or None as ``{column: list}``."""
    if table is None:
        return {}
    if hasattr(table, "to_pydict"):
        return table.to_pydict()
    return {k: list(v) for k, v in table.items()}


def rows(table) -> list[dict]:
    """The rows of ``table`` as dicts."""
    cols = as_columns(table)
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
    return pa.table({c: pa.array(v, type=_arrow_type(types[c]) if c in types else None)
                     for c, v in columns.items()})


def update_features(features, values: Mapping[tuple[str, int], Mapping[str, object]],
                    names: Iterable[str]):
    """``features`` with columns ``names`` set from ``values`` ({(dictionary, feature):
    {column: value}}); rows absent from ``values`` keep their value (NULL if new)."""
    cols = as_columns(features)
    keys = list(zip(cols["dictionary"], cols["feature"], strict=True))
    for name in names:
        old = cols.get(name, [None] * len(keys))
        cols[name] = [values[k][name] if k in values and name in values[k] else v
                      for k, v in zip(keys, old, strict=True)]
    order = [c for c in schema.columns("features") if c in cols] + \
        [c for c in cols if c not in schema.columns("features")]
    return like(features, "features", {c: cols[c] for c in order})


def append_rows(table_name: str, table, new: Mapping[str, list]):
    """``table`` (possibly None) with the rows ``new`` (a column dict) appended."""
    cols = as_columns(table) or {c: [] for c in schema.columns(table_name)}
    n = len(next(iter(new.values()), []))
    for name in schema.columns(table_name):
        cols.setdefault(name, [])
        cols[name] = list(cols[name]) + list(new.get(name, [None] * n))
    return like(table, table_name, {c: cols[c] for c in schema.columns(table_name)})


def _arrow_type(duck: str):
    import pyarrow as pa

    base = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
            "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "BOOLEAN": pa.bool_()}
    if duck.endswith("[]"):
        return pa.list_(base[duck[:-2]])
    return base[duck]
