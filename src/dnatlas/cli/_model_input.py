"""Options shared by every command that runs a model: one ``--model`` spec, the genome,
chunking and device. Parsing only; the work is in :mod:`dnatlas.pipelines`."""

from __future__ import annotations

import argparse
from pathlib import Path

MODEL_HELP = ("model: default (the bundled DNAtlas), a folder, dnatlas:|hyenadna:|nt:|"
              "transformer:|kmer: PATH, or hf:REPO_ID; add :random-init for fresh weights "
              "(default: default)")


def int_at_least(minimum: int):
    """An argparse type: an integer (commas allowed) of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def float_in(low: float | None = None, high: float | None = None, low_open: bool = False,
             high_open: bool = False):
    """An argparse type: a finite number within ``low``..``high`` (None: unbounded; the
    ``*_open`` ends excluded), e.g. ``float_in(0, 1, True, True)`` for a p-value."""
    import math

    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        inside = math.isfinite(value)
        if low is not None:
            inside &= value > low if low_open else value >= low
        if high is not None:
            inside &= value < high if high_open else value <= high
        if not inside:
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    parse.__name__ = f"number in {span}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_in(0, low_open=True)
non_negative_float = float_in(0)
probability = float_in(0, 1, low_open=True, high_open=True)


def add_model_arg(parser, help_text: str = MODEL_HELP) -> None:
    parser.add_argument("--model", "-m", default=None, metavar="SPEC", help=help_text)


def add_device_arg(parser) -> None:
    parser.add_argument("--device", default=None, metavar="DEV",
                        help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")


#: the bundled genome every command defaults to where the model and annotation do too
BUNDLED_GENOME = "ecoli_k12_mg1655"
GENOME_HELP = ("genome: a FASTA or GenBank file (optionally gzipped) or a bundled genome's "
               f"name (e.g. {BUNDLED_GENOME})")


class DeprecatedSpelling(argparse.Action):
    """An old spelling of a flag, kept hidden for one release: it works, with a note."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        if values == []:  # an absent positional (nargs="*") is still "called" by argparse
            return
        print(f"dnatlas: warning: {option_string or 'a positional genome'} is deprecated and "
              f"will be removed in the next release; use {self.new}", file=sys.stderr)
        if isinstance(getattr(namespace, self.dest, None), list) and isinstance(values, list):
            values = getattr(namespace, self.dest) + values
        setattr(namespace, self.dest, values)


def add_genome_arg(parser, required: bool = False, default: str | None = None,
                   multiple: bool = False, old: tuple[str, ...] = ("--fasta", "-f"),
                   positional: bool = False, help_text: str | None = None) -> None:
    """``--genome`` (``-g``): the one flag for "a genome file or a bundled genome name" in
    every command (``--data`` stays the flag of genome stores). ``old`` spellings (and, with
    ``positional``, a bare GENOME argument) still work, hidden, with a deprecation note.

    ``multiple``: several genomes (``--genome a.fa b.fa``, or repeated), a list in
    ``args.genome``."""
    text = help_text or GENOME_HELP
    if default is not None:
        text += f" (default: {default})"
    if multiple:
        parser.add_argument("--genome", "-g", action="extend", nargs="+", default=None,
                            metavar="GENOME", help=text + "; several, or repeated")
    else:
        parser.add_argument("--genome", "-g", required=required and not positional and not old,
                            default=default, metavar="GENOME", help=text)
    for flag in old:
        parser.add_argument(flag, dest="genome", action=DeprecatedSpelling, new="--genome",
                            help=argparse.SUPPRESS,
                            **({"nargs": "+"} if multiple else {}))
    if positional:
        parser.add_argument("old_genome", nargs="*", action=DeprecatedSpelling,
                            new="--genome", help=argparse.SUPPRESS)
    parser.set_defaults(genome_required=required, genome_multiple=multiple)


def genome_of(args) -> str | list[str] | None:
    """``args.genome`` with the deprecated positional folded in; a one-line error when a
    required genome is missing (the CLI calls it after parsing)."""
    from dnatlas.errors import InputError

    value = args.genome
    extra = getattr(args, "old_genome", None) or []
    if getattr(args, "genome_multiple", False):
        value = [*(value or []), *extra] or None
    elif extra:
        if value is not None or len(extra) > 1:
            raise InputError("give one genome (--genome)")
        value = extra[0]
    if value is None and getattr(args, "genome_required", False):
        raise InputError(f"give the genome: --genome FILE or a bundled genome's name (e.g. "
                         f"{BUNDLED_GENOME})")
    return value


def default_annotations(genome, annotations, flag: str = "--annotations"):
    """The annotation to use: ``annotations`` as given (None/empty: the bundled annotation
    when the genome is the bundled genome; otherwise an error naming ``flag``)."""
    from dnatlas.errors import InputError

    if annotations:
        return annotations
    if str(genome) == BUNDLED_GENOME:
        return [BUNDLED_GENOME]
    raise InputError(f"give {flag}: only the bundled genome ({BUNDLED_GENOME}) has a bundled "
                     "annotation")


def add_model_input(parser, required: bool, default_genome: str | None = None) -> None:
    add_model_arg(parser)
    add_genome_arg(parser, required=required, default=default_genome)
    parser.add_argument("--chunk-size", type=positive_int, default=1 << 15, metavar="NT",
                        help="positions per forward pass (default 32768)")
    parser.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                        help="chunks per forward pass (default 1; more helps on a GPU)")
    add_device_arg(parser)


def add_site_arg(parser) -> None:
    parser.add_argument("--site", default=None,
                        help="activation site of integer layers (DNAtlas: neurons (default), "
                             "pre_act, post_act, residual; HyenaDNA: residual, mixer, mlp; "
                             "NT and the Transformer: residual)")


def module_doc(name: str) -> str | None:
    """The docstring of module ``name`` without importing it (``--help`` stays fast: the
    pipelines import torch)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))


def needs(parser, *extras: str, when=None, modules: tuple[str, ...] | None = None) -> None:
    """Declare the extras a subcommand needs (:mod:`dnatlas.extras`): the CLI checks them
    before the command runs, one line naming the extra when one is missing. ``when``: a
    function of the parsed arguments giving the extras for this call instead (e.g. only
    those a flag asks for); ``modules``: only these modules of the extra are needed."""
    parser.set_defaults(needs=when or (lambda args: extras), needs_what=parser.prog,
                        needs_modules=modules)
