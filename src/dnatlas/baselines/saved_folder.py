"""Reading the ``config.json`` of a saved baseline folder, with one-line errors.

Shared by :meth:`KmerContextModel.load <dnatlas.baselines.kmer.KmerContextModel.load>` and
:meth:`TransformerMLM.from_pretrained <dnatlas.baselines.transformer.TransformerMLM.from_pretrained>`;
both write their folders with :mod:`dnatlas.files` (atomic, fsynced).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dnatlas.errors import InputError


def read_folder_config(config_path: Path, *files: Path, what: str) -> dict[str, Any]:
    """The JSON at ``config_path``, after checking that it and ``files`` exist.

    Raises:
        InputError: ``not a saved {what} (missing file)`` naming the first missing file, or
            ``cannot read config`` when the JSON cannot be read.
    """
    for p in (config_path, *files):
        if not p.is_file():
            raise InputError(f"not a saved {what} (missing file)", path=p)
    try:
        return json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read config: {e}", path=config_path) from None
