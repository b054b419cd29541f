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


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def add_model_arg(parser, help_text: str = MODEL_HELP) -> None:
    parser.add_argument("--model", "-m", default=None, metavar="SPEC", help=help_text)


def add_device_arg(parser) -> None:
    parser.add_argument("--device", default=None, metavar="DEV",
                        help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")


def add_model_input(parser, required: bool) -> None:
    add_model_arg(parser)
    parser.add_argument("--fasta", "-f", type=Path, required=required, metavar="FILE",
                        help="genome (FASTA or GenBank, optionally gzipped)")
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
