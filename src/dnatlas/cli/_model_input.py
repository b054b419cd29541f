"""Inputs shared by the activation commands (``extract``, ``gram``, ``neurons``): the
model, the genome records, and the site argument.

Layers are 0-based (the report's "layer 8" is ``--layer 7``) or full site names such as
``blocks.7.neurons``.
"""

from __future__ import annotations

from pathlib import Path

from dnatlas.errors import InputError


def load_model(spec: str | None, device: str | None = None):
    """The model of ``--model``: a ``save_pretrained`` folder, or the bundled default.

    ``device`` (e.g. ``cuda``) moves it there; extraction then runs on that device.
    """
    from dnatlas.model.pretrained import load_model as load

    model = load(spec)
    return model if device is None else model.to(device)


def records_of(fasta: Path, region: str | None):
    """``[(record, start, end)]``: one region, or every record of the file."""
    from dnatlas.analysis.extract import parse_region
    from dnatlas.genome.readers import read_records

    if region is None:
        return [(r, 0, len(r)) for r in read_records(fasta)]
    seqid, start, end = parse_region(region)
    for record in read_records(fasta):
        if record.id == seqid:
            start, end = (0, len(record)) if start is None else (start, end)
            if end > len(record):
                raise InputError(f"region end {end} is past the record's length {len(record)}",
                                 path=fasta, record=seqid)
            return [(record, start, end)]
    raise InputError(f"no record {seqid!r}", path=fasta)


def add_model_input(parser, required: bool) -> None:
    parser.add_argument("--model", "-m", default=None, metavar="DIR",
                        help="model folder (config.json + model.safetensors); default: the "
                             "bundled model")
    parser.add_argument("--fasta", "-f", type=Path, required=required, metavar="FILE",
                        help="genome (FASTA or GenBank, optionally gzipped)")
    parser.add_argument("--chunk-size", type=int, default=1 << 15, metavar="NT",
                        help="positions per forward pass (default 32768)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="chunks per forward pass (default 1; more helps on a GPU)")
    parser.add_argument("--device", default=None, metavar="DEV",
                        help="torch device, e.g. cuda (default: the model's, cpu)")


def add_site_arg(parser) -> None:
    from dnatlas.analysis.extract import SITES

    parser.add_argument("--site", choices=SITES, default="neurons",
                        help="activation site (default neurons: after thresholding, before SoLU)")
