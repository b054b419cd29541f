"""Writing an atlas folder: the tables into one DuckDB file, then ``manifest.json`` last.

    write_atlas("runs/atlas", {"features": table, ...}, manifest)

Tables are pyarrow tables (or anything ``pyarrow.table`` takes: a dict of columns) with
exactly the columns of :data:`dnatlas.atlas.schema.TABLES`; missing tables are created
empty. The database is written to a temporary file next to the target and renamed into
place, and the manifest (the completion marker) is written after it, atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dnatlas.atlas import schema
from dnatlas.errors import InputError


def _arrow_table(name: str, data):
    import pyarrow as pa

    table = data if isinstance(data, pa.Table) else pa.table(data)
    want = schema.columns(name)
    missing = [c for c in want if c not in table.column_names]
    extra = [c for c in table.column_names if c not in want]
    if missing or extra:
        raise ValueError(f"atlas table {name!r}: missing columns {missing}, unknown {extra}")
    return table.select(want)


def write_atlas(folder: str | Path, tables: dict, manifest: dict) -> Path:
    """Write ``tables`` ({name: table}) and ``manifest`` into ``folder``; return it.

    The manifest gets ``schema_version`` and ``complete: true`` added. Any earlier atlas in
    ``folder`` is replaced only once the new one is complete (the caller owns --force).
    """
    import duckdb

    unknown = set(tables) - set(schema.TABLES)
    if unknown:
        raise ValueError(f"unknown atlas tables: {sorted(unknown)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / schema.ATLAS_FILE
    tmp = folder / f".{schema.ATLAS_FILE}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    (folder / schema.MANIFEST_FILE).unlink(missing_ok=True)   # unfinished from here on
    con = duckdb.connect(str(tmp))
    try:
        for name, cols in schema.TABLES.items():
            ddl = ", ".join(f'"{c}" {t}' for c, t, _ in cols)
            con.execute(f'CREATE TABLE "{name}" ({ddl})')
            if name not in tables:
                continue
            arrow = _arrow_table(name, tables[name])  # noqa: F841 (read by DuckDB by name)
            order = ", ".join(f'"{c}"' for c in schema.SORT_KEYS[name]) or "1"
            con.execute(f'INSERT INTO "{name}" SELECT * FROM arrow ORDER BY {order}')
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    _write_json(folder / schema.MANIFEST_FILE,
                {**manifest, "schema_version": schema.SCHEMA_VERSION, "complete": True})
    return folder


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(folder: str | Path) -> dict:
    """The manifest of the atlas in ``folder``; an :class:`InputError` if the folder holds
    no finished atlas of this schema version."""
    folder = Path(folder)
    path = folder / schema.MANIFEST_FILE
    if not (folder / schema.ATLAS_FILE).is_file():
        raise InputError("not an atlas folder (no atlas.duckdb)", path=folder)
    if not path.is_file():
        raise InputError("unfinished atlas (no manifest.json): rebuild it, or resume the "
                         "build", path=folder)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable manifest: {exc}", path=path) from None
    if not isinstance(manifest, dict) or not manifest.get("complete"):
        raise InputError("unfinished atlas: rebuild it", path=folder)
    version = manifest.get("schema_version")
    if version != schema.SCHEMA_VERSION:
        raise InputError(f"atlas schema version {version}, this dnatlas reads "
                         f"{schema.SCHEMA_VERSION}: rebuild it", path=folder)
    return manifest
