"""Motif scanning: position frequency matrices (JASPAR, MEME, TRANSFAC) scanned over genomes.

* :mod:`dnatlas.motifs.matrices`: readers -> :class:`Motif` (counts, shape (4, w), A C G T)
  and :func:`log_odds`.
* :mod:`dnatlas.motifs.scan`: lightmotif scanning of one record, both strands, in chunks.
* :mod:`dnatlas.motifs.bed_out`: :func:`scan_genomes` -> sorted BED6 + per-motif TSV summary.

lightmotif and pyjaspar are the ``motifs`` extra: ``pip install 'dnatlas[motifs]'``.
"""

from dnatlas.motifs.bed_out import ScanResult, scan_genomes
from dnatlas.motifs.matrices import (
           Motif,
           jaspar_motifs,
           log_odds,
           make_motif,
           read_motif_file,
           read_motif_files,
)
from dnatlas.motifs.scan import prepare_motifs, scan_sequence

__all__ = ["Motif", "ScanResult", "jaspar_motifs", "log_odds", "make_motif", "prepare_motifs",
           "read_motif_file", "read_motif_files", "scan_genomes", "scan_sequence"]
