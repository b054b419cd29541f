"""The static export's data shards: one rule from a GET request to a file name.

Every GET the static site makes is written as a classic script ``DATA/<key>.js`` holding
``dnatlasData("<key>", <json>);`` (classic scripts load from ``file://``, where ``fetch``
and module scripts are blocked). The front end computes the same key in JavaScript:

1. ``path``: the URL path without its leading ``/api/`` (``/api/feature/sae:topk16/3``
   -> ``feature/sae:topk16/3``), not URL-decoded beyond what the route does.
2. ``params``: drop those whose value is ``None`` or ``""``; write booleans as ``true`` /
   ``false``, integers in decimal, strings as they are; sort by name (code-point order);
   ``canonical = path`` if none is left, else ``path + "?" + "&".join(name=value)``
   (values are NOT percent-encoded).
3. ``safe``: ``canonical`` with every character outside ``[A-Za-z0-9._-]`` replaced by
   ``_``, cut to its first 80 characters.
4. ``key = safe + "-" + fnv1a32(canonical)`` where ``fnv1a32`` is 32-bit FNV-1a over the
   UTF-8 bytes of ``canonical`` (offset basis 0x811c9dc5, prime 0x01000193), written as
   8 lower-case hex digits.

So ``shard_key("/api/meta") == "meta-" + fnv1a32("meta")``. ``DATA/index.js`` holds the
meta shard (the same ``dnatlasData(shard_key("/api/meta"), meta)`` call) and is loaded
first. In JavaScript::

    function fnv1a32(s) { let h = 0x811c9dc5;
      for (const b of new TextEncoder().encode(s)) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
      return h.toString(16).padStart(8, "0"); }
"""

from __future__ import annotations

import json
import re

PREFIX = "/api/"
SAFE_LENGTH = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def fnv1a32(text: str) -> str:
    """32-bit FNV-1a of ``text``'s UTF-8 bytes, 8 lower-case hex digits."""
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def canonical(path: str, params: dict | None = None) -> str:
    """The canonical request string (rules 1-2 of the module docstring)."""
    if path.startswith(PREFIX):
        path = path[len(PREFIX):]
    elif path.startswith("/"):
        path = path[1:]
    items = sorted((k, _value(v)) for k, v in (params or {}).items()
                   if v is not None and _value(v) != "")
    if not items:
        return path
    return path + "?" + "&".join(f"{k}={v}" for k, v in items)


def shard_key(path: str, params: dict | None = None) -> str:
    """The shard file's name (without ``.js``) of ``GET path?params``."""
    text = canonical(path, params)
    return _UNSAFE.sub("_", text)[:SAFE_LENGTH] + "-" + fnv1a32(text)


def _rounded(obj, digits: int):
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    return obj


def shard_script(key: str, data, digits: int | None = 6) -> str:
    """The text of ``DATA/<key>.js``: ``dnatlasData("<key>", <json>);`` (floats to
    ``digits`` significant digits: shards are what a static site downloads)."""
    if digits is not None:
        data = _rounded(data, digits)
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # "</script" can't end an inline script anyway, but keep shards safe to inline
    body = body.replace("</", "<\\/")
    return f"dnatlasData({json.dumps(key)}, {body});\n"
