"""``dnatlas explore``: the feature explorer, served or exported (parsing only; the work is
:func:`dnatlas.explorer.server.explore`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dnatlas.cli._model_input import add_device_arg, add_model_arg, needs, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explore", help="browse the feature atlas: genome tracks, feature pages, concepts",
        description="Serve the feature explorer on 127.0.0.1 (feature lists and pages, "
                    "concepts, search, an igv genome browser with live activation tracks "
                    "on both strands, Gram maps, pasted sequences, steering), or write it "
                    "as a static site with --export. With no arguments: the atlas of the "
                    "bundled model, SAE and genome in runs/atlas, built first if missing. "
                    "An atlas of other inputs than those given is refused.")
    p.add_argument("--atlas", type=Path, metavar="DIR",
                   help="an atlas folder (dnatlas atlas build); default: runs/atlas, built "
                        "from the inputs below when missing")
    add_model_arg(p)
    p.add_argument("--genome", "-g", default=None, metavar="FASTA",
                   help="the genome of the atlas (default: the bundled ecoli_k12_mg1655)")
    p.add_argument("--annotations", "-a", action="append", metavar="FILE",
                   help="annotation files or a bundled name (default: the bundled one for "
                        "the bundled genome; 'none': none)")
    p.add_argument("--sae", action="append", default=[], metavar="DIR",
                   help="SAE folder of the atlas (default: the folders the atlas names)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others are warned about)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="model worker threads (default 1)")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="write the static explorer (opens from disk) instead of serving")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier --export, or rebuild a stale default atlas")
    add_device_arg(p)
    p.set_defaults(func=run_explore)
    # the export needs no web server; serving does
    needs(p, when=lambda args: ("atlas",) if args.export else ("explorer",))


def run_explore(args: argparse.Namespace) -> int:
    from dnatlas.explorer.server import explore

    explore(atlas=args.atlas, model=args.model, genome=args.genome,
            annotations=args.annotations, saes=args.sae, host=args.host, port=args.port,
            export=args.export, force=args.force, device=args.device or "cpu",
            workers=args.workers)
    return 0


def export_static(atlas, saes, out, tracks_per_feature: int = 1):
    """The static explorer of ``atlas`` (bundled model and genome) in ``out``, replacing an
    earlier export; returns its index.html (``dnatlas demo``'s last step)."""
    from dnatlas.explorer.server import explore

    return explore(atlas=atlas, saes=saes, export=out, force=True,
                   tracks_per_feature=tracks_per_feature)
