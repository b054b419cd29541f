"""``dnatlas data select`` and ``dnatlas data fetch``: the report's dataset for real users.

``add_commands`` is called by :mod:`dnatlas.cli.data` with the ``data`` subparsers.
"""

from __future__ import annotations


def add_commands(subparsers) -> None:
    """Add ``select`` and ``fetch`` to the ``dnatlas data`` subcommand group."""
