"""The one table from library settings to CLI flags.

Library errors name settings as a notebook user passes them (``window``, ``sample_nt``,
``force=True``; :class:`dnatlas.errors.InputError` lists them in ``settings``); the CLI
prints each as the flag that sets it (``--window``, ``--sample``, ``--force``). A setting
is ``--`` + its name with ``-`` for ``_`` unless :data:`FLAGS` or, for one command,
:data:`COMMAND_FLAGS` says otherwise.
"""

from __future__ import annotations

from dnatlas.errors import DnatlasError, InputError

#: settings whose flag is not ``--NAME-WITH-DASHES``
FLAGS: dict[str, str] = {
    "overrides": "--set",                        # train: --set KEY=VALUE
    "edits": "--edit",                           # steer
    "variants": "--variant",
    "regions": "--region",
    "all_layers": "--layers all",                # gram
    "min_terminator_confidence": "--transterm-min-conf",   # annotate
    "motif_files": "--motifs",                   # motifs scan
    "sample_nt": "--sample",                     # concepts eval
    "saes": "--sae",
    "inputs": "INPUT",                           # data build's positional genomes
    "fasta": "--genome",                         # a genome file or bundled name
    "genomes": "--genome",                       # audit: several
}

#: a command's own spellings, over :data:`FLAGS` (key: the CLI module, e.g. ``gram``)
COMMAND_FLAGS: dict[str, dict[str, str]] = {
    "audit": {"fasta": "--fasta"},               # audit search: the query sequences
}


def flag(setting: str, command: str | None = None) -> str:
    """The flag of ``setting`` (in ``command``, the CLI module's name, when given)."""
    own = COMMAND_FLAGS.get(command or "", {})
    return own.get(setting) or FLAGS.get(setting) or "--" + setting.replace("_", "-")


def error_line(exc: DnatlasError, command: str | None = None) -> str:
    """An error as the CLI prints it: the settings an :class:`InputError` names, as flags."""
    if isinstance(exc, InputError):
        return exc.spelled(lambda setting: flag(setting, command))
    return str(exc)
