"""Annotations: intervals (GFF3/GenBank/BED), per-nucleotide label tracks, and annotating.

* :mod:`~dnatlas.annotation.intervals`: :class:`Interval` and the readers
  (``load_annotations``, ``load_gff3``, ``load_genbank_features``, ``load_bed``),
  ``write_gff3`` and the bundled MG1655 RefSeq annotation.
* :mod:`~dnatlas.annotation.tracks`: ``label_tracks`` turns intervals into strand-aware
  boolean tracks (CDS, start/stop codons, RNAs, REP, ...) and codon phase.
* :mod:`~dnatlas.annotation.annotate`: ``dnatlas annotate`` with pyrodigal, pyaragorn,
  pybarrnap, TransTermHP and pilercr.
"""

from dnatlas.annotation.intervals import (
    Interval,
    bundled_annotation_path,
    group_features,
    load_annotations,
    load_bed,
    load_genbank_features,
    load_gff3,
    parse_bed_spec,
    restrict_to_genome,
    write_gff3,
)
from dnatlas.annotation.tracks import STANDARD_TRACKS, LabelTracks, label_tracks

__all__ = [
    "STANDARD_TRACKS", "Interval", "LabelTracks", "bundled_annotation_path", "group_features",
    "label_tracks", "load_annotations", "load_bed", "load_genbank_features", "load_gff3",
    "parse_bed_spec", "restrict_to_genome", "write_gff3",
]
