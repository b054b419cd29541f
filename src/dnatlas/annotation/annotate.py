"""Annotate genomes with real gene, RNA, terminator and CRISPR finders.

Tools (:data:`TOOLS`), run in this order:

``prodigal``
    pyrodigal: CDS. Single mode trained on the whole genome when it has at least
    :data:`MIN_TRAINING_LENGTH` nt, metagenomic mode otherwise. Genes running off
    a sequence end get ``partial=true`` and ``start_range``/``end_range``.
``aragorn``
    pyaragorn: tRNA and tmRNA (translation table 11, linear topology).
``barrnap``
    pybarrnap: rRNA (bacterial models, nhmmer).
``transterm``
    TransTermHP (``transterm`` on PATH, with its ``expterm.dat``): terminators of
    confidence >= ``min_terminator_confidence`` (default 76, TransTermHP's own), using
    the CDS called by ``prodigal`` in the same run as gene coordinates (or, without
    them, two 2-nt stand-in genes at the ends, + strand left and - strand right, so
    that both strands of the whole sequence are searched).
``pilercr``
    pilercr (on PATH): CRISPR arrays, unstranded.

A tool that is not installed is reported (``skipped: transterm not found on
PATH``) and skipped; nothing is ever made up in its place. Each feature's
``source`` attribute is ``tool:version``.
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from time import perf_counter

from dnatlas.annotation.external import (
    DEFAULT_MIN_CONFIDENCE,
    Genome,
    ToolUnavailable,
    check_min_confidence,
    run_pilercr,
    run_transterm,
    tool_feature,
)
from dnatlas.annotation.features import Interval, feature_name
from dnatlas.annotation.gff3 import write_gff3
from dnatlas.errors import InputError
from dnatlas.files import check_writable_file
from dnatlas.genome.alphabet import decode
from dnatlas.genome.readers import read_records

TOOLS = ("prodigal", "aragorn", "barrnap", "transterm", "pilercr")
#: Below this many nucleotides in total, pyrodigal runs in metagenomic mode.
MIN_TRAINING_LENGTH = 20_000
_ID_PREFIXES = {"CDS": "cds", "tRNA": "trna", "tmRNA": "tmrna", "rRNA": "rrna",
                "terminator": "term", "CRISPR": "crispr"}


# ---------------------------------------------------------------------------- driver


def annotate_genome(genome_path: str | Path, out: str | Path | None, tools: Sequence[str] = TOOLS,
                    expterm: str | Path | None = None,
                    log: Callable[[str], None] | None = None,
                    force: bool | None = None,
                    min_terminator_confidence: int = DEFAULT_MIN_CONFIDENCE) -> list[Interval]:
    """Annotate the records of a FASTA/GenBank file and, when ``out`` is given, write the
    features as GFF3.

    ``out`` is checked before any tool runs, and the GFF3 is written atomically (a
    temporary file next to ``out``, renamed when complete, removed on failure). Returns
    the features. ``force=False`` refuses an existing ``out`` (the CLI without --force).
    ``min_terminator_confidence`` (0-100) is TransTermHP's ``--min-conf``.
    """
    if out is not None:
        out = check_writable_file(out, "output GFF3", force=force)
    records = list(read_records(genome_path))
    if not records:
        raise InputError("no sequence records", path=genome_path)
    genome = [(record.id, decode(record.seq)) for record in records]
    intervals = annotate_sequences(genome, tools, expterm=expterm, log=log,
                                   min_terminator_confidence=min_terminator_confidence)
    if out is not None:
        write_gff3(out, intervals, {seqid: len(seq) for seqid, seq in genome})
    return intervals


def annotate_sequences(genome: Genome, tools: Sequence[str] = TOOLS,
                       expterm: str | Path | None = None,
                       log: Callable[[str], None] | None = None,
                       min_terminator_confidence: int = DEFAULT_MIN_CONFIDENCE
                       ) -> list[Interval]:
    """Run ``tools`` on ``genome``; return their features sorted, with file-unique IDs.

    ``log`` (default: print to stderr) receives one line per tool with its count
    and time, or the reason it was skipped. ``min_terminator_confidence``: TransTermHP's
    ``--min-conf`` (0-100).
    """
    log = log or _print_stderr
    unknown = [tool for tool in tools if tool not in TOOLS]
    if unknown:
        raise InputError(f"unknown tool {unknown[0]!r} (choose from {', '.join(TOOLS)})")
    if "transterm" in tools:
        check_min_confidence(min_terminator_confidence)
    seqids = [seqid for seqid, _ in genome]
    if len(set(seqids)) != len(seqids):
        raise InputError("duplicate sequence IDs in the genome")
    found: list[Interval] = []
    for tool in sorted(tools, key=TOOLS.index):
        began = perf_counter()
        try:
            new = _run(tool, genome, found, expterm, min_terminator_confidence)
        except ToolUnavailable as why:
            log(f"skipped: {tool} {why}")
            continue
        seconds = perf_counter() - began
        counts = ", ".join(f"{n:,} {t}" for t, n in Counter(iv.type for iv in new).items())
        detail = f" ({prodigal_mode(genome)} mode)" if tool == "prodigal" else ""
        log(f"{tool}{detail}: {counts or 'nothing found'} in {seconds:.1f} s")
        found += new
    return _with_ids(found, seqids)


def _run(tool: str, genome: Genome, found: list[Interval],
         expterm: str | Path | None, min_confidence: int) -> list[Interval]:
    if tool == "prodigal":
        return run_prodigal(genome)
    if tool == "aragorn":
        return run_aragorn(genome)
    if tool == "barrnap":
        return run_barrnap(genome)
    if tool == "transterm":
        return run_transterm(genome, [iv for iv in found if iv.type == "CDS"], expterm,
                             min_confidence)
    return run_pilercr(genome)


def _with_ids(intervals: list[Interval], seqids: list[str]) -> list[Interval]:
    """Sort by sequence (genome order), start, longest first; number IDs per type."""
    order = {seqid: i for i, seqid in enumerate(seqids)}
    intervals = sorted(intervals, key=lambda iv: (order[iv.seqid], iv.start, -iv.end, iv.type))
    counters: Counter[str] = Counter()
    numbered = []
    for interval in intervals:
        prefix = _ID_PREFIXES.get(interval.type, interval.type.lower())
        counters[prefix] += 1
        attributes = {"ID": f"{prefix}_{counters[prefix]}", **interval.attributes}
        numbered.append(replace(interval, name=feature_name(attributes), attributes=attributes))
    return numbered


def _print_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- Python tools


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolUnavailable(f"needs {module}: pip install 'dnatlas[annotate]'") from None


def prodigal_mode(genome: Genome) -> str:
    """``"single"`` when the genome is long enough to train pyrodigal, else ``"meta"``."""
    total = sum(len(seq) for _, seq in genome)
    return "single" if total >= MIN_TRAINING_LENGTH else "meta"


def run_prodigal(genome: Genome) -> list[Interval]:
    """CDS from pyrodigal (stop codon included, phase 0)."""
    pyrodigal = _import("pyrodigal")
    meta = prodigal_mode(genome) == "meta"
    finder = pyrodigal.GeneFinder(meta=meta)
    if not meta:
        finder.train(*(seq for _, seq in genome))
    source = f"pyrodigal:{pyrodigal.__version__}"
    intervals = []
    for seqid, seq in genome:
        for gene in finder.find_genes(seq):
            attributes = {"source": source, "score": f"{gene.score:.1f}", "phase": "0",
                          "start_type": gene.start_type, "rbs_motif": str(gene.rbs_motif),
                          "confidence": f"{gene.confidence():.2f}"}
            if gene.partial_begin or gene.partial_end:
                attributes["partial"] = "true"
            if gene.partial_begin:
                attributes["start_range"] = f".,{gene.begin}"
            if gene.partial_end:
                attributes["end_range"] = f"{gene.end},."
            intervals.append(tool_feature(seqid, gene.begin, gene.end, gene.strand, "CDS",
                                          attributes))
    return intervals


def run_aragorn(genome: Genome) -> list[Interval]:
    """tRNA and tmRNA from pyaragorn."""
    pyaragorn = _import("pyaragorn")
    finder = pyaragorn.RNAFinder(translation_table=11, linear=True)
    source = f"pyaragorn:{pyaragorn.__version__}"
    intervals = []
    for seqid, seq in genome:
        for gene in finder.find_rna(seq):
            attributes = {"source": source, "score": f"{gene.energy:.1f}"}
            if gene.type == "tRNA":
                attributes |= {"product": f"tRNA-{gene.amino_acid}", "anticodon": gene.anticodon}
            else:
                attributes["product"] = "tmRNA"
            intervals.append(tool_feature(seqid, gene.begin, gene.end, gene.strand, gene.type,
                                          attributes))
    return intervals


def run_barrnap(genome: Genome) -> list[Interval]:
    """rRNA (16S, 23S, 5S) from pybarrnap with the bacterial models."""
    pybarrnap = _import("pybarrnap")
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    names = {f"seq{i}": seqid for i, (seqid, _) in enumerate(genome, 1)}
    records = [SeqRecord(Seq(seq), id=name, name=name, description="")
               for name, (_, seq) in zip(names, genome, strict=True)]
    result = pybarrnap.Barrnap(records, kingdom="bac", threads=1, quiet=True).run()
    source = f"pybarrnap:{pybarrnap.__version__}"
    intervals = []
    for hit in result.mdl_records:
        attributes = {"source": source, "score": f"{hit.evalue:.2g}", "gene": hit.query_name,
                      "product": hit.product}
        if hit.is_partial(result.lencutoff):
            attributes["partial"] = "true"
        strand = -1 if hit.strand == "-" else 1
        intervals.append(tool_feature(names[hit.target_name], hit.start, hit.end, strand,
                                      "rRNA", attributes))
    return intervals
