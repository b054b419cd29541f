"""``dnatlas audit``: where a feature's windows come from in the training data, and k-mer
leakage between a store's splits (:mod:`dnatlas.audit`).

* :func:`audit_index`: build (once) and save the k-mer index of a store or FASTA set, and
  optionally its BLAST database;
* :func:`audit_search`: search windows (neuron catalog, SAE top examples) or FASTA queries
  and write ``hits.tsv``, ``features.tsv`` and ``features.json``;
* :func:`audit_leakage`: the share of held-out k-mers found in training, as TSV.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dnatlas.audit.blast import blast_search, make_blast_db
from dnatlas.audit.index import (
    DEFAULT_K,
    DEFAULT_STRIDE,
    INDEX_FILES,
    META_FILE,
    StaleIndexError,
    build_index,
    load_index,
    open_or_build,
    read_meta,
    save_index,
)
from dnatlas.audit.leakage import LEAKAGE_COLUMNS, leakage
from dnatlas.audit.queries import Query, fill_sequences, read_fasta_queries, read_windows
from dnatlas.audit.search import Hit, search
from dnatlas.audit.summary import FEATURE_COLUMNS, is_self_hit, summarise
from dnatlas.audit.target import Target, target_from_fasta, target_from_store
from dnatlas.errors import InputError
from dnatlas.files import atomic_write, check_output_dir, check_writable_file, write_json

SEARCH_OUTPUTS = ("hits.tsv", "features.tsv", "features.json")
#: hits.tsv's columns; its coordinates are 1-based and closed, as the names say
HIT_COLUMNS = ("query", "feature", "query_region", "query_strand", "query_length", "genome",
               "record", "start_1based", "end_1based", "strand", "identity", "matches",
               "aligned", "qstart_1based", "qend_1based", "split", "self")


@dataclass(frozen=True)
class IndexResult:
    """What :func:`audit_index` did: ``action`` (``built`` or ``up to date``), in how many
    ``seconds``, the index's k-mer length ``k``, ``stride``, ``n_entries`` k-mers of
    ``n_bases`` nucleotides, and its whole ``meta.json``."""

    action: str
    seconds: float
    k: int
    stride: int
    n_entries: int
    n_bases: int
    meta: dict

    @classmethod
    def of(cls, action: str, seconds: float, meta: dict) -> IndexResult:
        return cls(action, seconds, meta["k"], meta["stride"], meta["n_entries"],
                   meta["n_bases"], meta)


@dataclass(frozen=True)
class SearchResult:
    """What :func:`audit_search` found and wrote: the number of ``queries``, ``hits`` and
    ``features``, how the ``index`` was had (``loaded``, ``built``...), the seconds of
    indexing and searching, the files written, and all ``counts`` (also ``seeds``,
    ``candidates``, ``skipped_kmers``, ``short_queries``, as in ``features.json``)."""

    queries: int
    hits: int
    features: int
    index: str
    index_seconds: float
    search_seconds: float
    outputs: list[str]
    counts: dict


@dataclass(frozen=True)
class GenomeLeakage:
    """A held-out genome's total row of :func:`audit_leakage`: the share of its distinct
    k-mers found in training (None when it has none) and their number."""

    genome: str
    shared_fraction: float | None
    distinct_kmers: int


def genome_totals(rows: list[dict]) -> list[GenomeLeakage]:
    """The per-genome totals (``record`` = ``*``) of :func:`audit_leakage`'s rows."""
    return [GenomeLeakage(r["genome"], r["shared_fraction"], r["distinct_kmers"])
            for r in rows if r["record"] == "*"]


def _target(store: str | Path | None, genomes) -> Target | None:
    if store is not None and genomes:
        raise InputError("give store or genomes, not both", setting=("store", "genomes"))
    if store is not None:
        return target_from_store(store)
    return target_from_fasta(list(genomes)) if genomes else None


def _note(text: str) -> None:
    print(f"dnatlas audit: {text}", file=sys.stderr)


def audit_index(out: str | Path, *args, **kwargs) -> dict:
    """:func:`_audit_index` holding the index folder's lock (:mod:`dnatlas.outputs`): a
    second run into it fails at once. Arguments as :func:`_audit_index` takes them."""
    with _locked(out, "index folder"):
        return _audit_index(out, *args, **kwargs)


def audit_search(out: str | Path, *args, **kwargs) -> dict:
    """:func:`_audit_search` holding the output folder's lock (:mod:`dnatlas.outputs`).
    Arguments as :func:`_audit_search` takes them."""
    with _locked(out, "output folder"):
        return _audit_search(out, *args, **kwargs)


def _locked(out, what: str):
    from dnatlas.outputs import lock_folder

    check_output_dir(out, what)
    return lock_folder(out, what)


def _audit_index(out: str | Path, store: str | Path | None = None, genomes=(),
                k: int = DEFAULT_K, stride: int = DEFAULT_STRIDE, blast: bool = False,
                force: bool = False, progress: bool = True) -> IndexResult:
    """Index a store (``store``) or FASTA files (``genomes``) into the folder ``out``.

    An up-to-date index with the same k and stride is kept as it is; any other index there
    is replaced only with ``force``. ``blast``: also make the BLAST database.

    Returns:
        an :class:`IndexResult`.
    """
    target = _target(store, genomes)
    if target is None:
        raise InputError("give store (a genome store) or genomes (FASTA files)",
                         setting=("store", "genomes"))
    out = Path(out)
    t0 = time.perf_counter()
    action = "built"
    if (out / META_FILE).is_file():
        meta = read_meta(out)
        same = (meta.get("k"), meta.get("stride")) == (k, stride)
        if same and not force:
            try:
                load_index(out, target)
                action = "up to date"
            except StaleIndexError:
                raise InputError("holds an index of other sequences; give force=True to "
                                 "rebuild it", path=out, setting="force") from None
        elif not force:
            raise InputError(f"holds an index with k={meta.get('k')}, stride="
                             f"{meta.get('stride')}; give force=True to rebuild it", path=out,
                             setting="force")
    else:
        check_output_dir(out, "index folder", own=INDEX_FILES.__contains__, force=force)
    if action == "built":
        save_index(build_index(target, k, stride, progress), out, force=force)
    if blast:
        make_blast_db(target, out)
    return IndexResult.of(action, time.perf_counter() - t0, read_meta(out))


def _queries(windows, fasta, one_based: bool) -> tuple[list[Query], Path]:
    if (windows is None) == (fasta is None):
        raise InputError("give windows (a table) or fasta (one of them)",
                         setting=("windows", "fasta"))
    if windows is not None:
        return read_windows(windows, one_based), Path(windows)
    return read_fasta_queries(fasta), Path(fasta)


def _audit_search(out: str | Path, windows=None, fasta=None, index=None, store=None, genomes=(),
                 backend: str = "kmer", k: int = DEFAULT_K, stride: int = DEFAULT_STRIDE,
                 min_identity: float = 0.9, min_length: int = 50,
                 max_occurrences: int = 1000, one_based: bool = False, force: bool = False,
                 progress: bool = True) -> SearchResult:
    """Search a feature's windows (``windows`` table) or FASTA queries (``fasta``) and write
    ``hits.tsv``, ``features.tsv`` and ``features.json`` into the folder ``out``.

    The sequences searched: ``index`` (a folder from :func:`audit_index`; refused when
    stale), or ``store`` / ``genomes`` (indexed on the fly; with ``index`` too, that folder
    caches the index: built when missing, rebuilt when stale). ``k``/``stride`` apply
    only to indexes built here. ``backend="blast"`` searches with blastn instead.

    Returns:
        a :class:`SearchResult`.
    """
    if backend not in ("kmer", "blast"):
        raise InputError(f"unknown backend {backend!r} (kmer or blast)")
    if not 0 < min_identity <= 1:
        raise InputError(f"min_identity must be in (0, 1], got {min_identity}",
                         setting="min_identity")
    queries, query_path = _queries(windows, fasta, one_based)
    out = check_output_dir(out, "output folder", own=set(SEARCH_OUTPUTS).__contains__,
                           force=force)
    paths = [check_writable_file(out / name, "output", force=force) for name in SEARCH_OUTPUTS]
    target = _target(store, genomes)
    t0 = time.perf_counter()
    if target is None and index is None:
        raise InputError("give index (a folder), or store / genomes to search",
                         setting=("index", "store", "genomes"))
    kmer_index, what = None, "none (blastn)"
    if target is None:
        kmer_index, what = load_index(index), "loaded"
        target = kmer_index.target
    fill_sequences(queries, target, query_path)  # bad windows fail before any indexing
    if what != "loaded" and (backend == "kmer" or index is not None):
        kmer_index, what = open_or_build(index, target, k, stride, progress)
    if kmer_index is not None:
        for note in kmer_index.notes:
            _note(note)
        target, k, stride = kmer_index.target, kmer_index.k, kmer_index.stride
    if what.startswith("rebuilt"):
        _note(f"the index in {index} was stale and has been rebuilt")
    index_seconds = time.perf_counter() - t0
    seqs = [q.codes for q in queries]
    t0 = time.perf_counter()
    if backend == "blast":
        result = blast_search(target, seqs, index, min_identity, min_length,
                              word_size=max(12, k), progress=progress)
    else:
        result = search(kmer_index, seqs, min_identity, min_length, max_occurrences, progress)
    search_seconds = time.perf_counter() - t0
    features = summarise(queries, result.hits, k, min_identity, min_length)
    _write_hits(paths[0], queries, result.hits)
    _write_features_tsv(paths[1], features)
    params = {"backend": backend, "min_identity": min_identity, "min_length": min_length,
              "max_occurrences": max_occurrences, "queries": str(query_path)}
    index_info = {"k": k, "stride": stride, "source": target.source,
                  "folder": None if index is None else str(index), "action": what}
    counts = {"queries": len(queries), "hits": len(result.hits), "seeds": result.seeds,
              "candidates": result.candidates, "skipped_kmers": result.skipped_kmers,
              "short_queries": sum(len(s) < k for s in seqs)}
    write_json(paths[2], {"params": params, "index": index_info, "counts": counts,
                          "features": features})
    return SearchResult(counts["queries"], counts["hits"], len(features), what, index_seconds,
                        search_seconds, [str(p) for p in paths], counts)


def _write_hits(path: Path, queries: list[Query], hits: list[Hit]) -> None:
    with atomic_write(path) as fh:
        fh.write("\t".join(HIT_COLUMNS) + "\n")
        for h in hits:
            q = queries[h.query]
            row = (q.id, q.feature, q.region, "+" if q.strand > 0 else "-", len(q.codes),
                   h.genome, h.record, h.start + 1, h.end, "+" if h.strand > 0 else "-",
                   f"{h.identity:.4f}", h.matches, h.aligned, h.qstart + 1, h.qend,
                   h.split or ".", int(is_self_hit(q, h)))
            fh.write("\t".join(map(str, row)) + "\n")


def _cell(value) -> str:
    if value is None:
        return "NA"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _write_features_tsv(path: Path, features: list[dict]) -> None:
    with atomic_write(path) as fh:
        fh.write("\t".join(FEATURE_COLUMNS) + "\n")
        for row in features:
            fh.write("\t".join(_cell(row[c]) for c in FEATURE_COLUMNS) + "\n")


def audit_leakage(store: str | Path, out: str | Path, k: int = 32, force: bool = False,
                  progress: bool = True) -> list[dict]:
    """Write the k-mer leakage of a store's held-out split into training as TSV ``out``
    (:func:`dnatlas.audit.leakage.leakage`) and return its rows."""
    out = check_writable_file(out, "leakage output", force=force)
    rows = leakage(target_from_store(store), k=k, progress=progress)
    with atomic_write(out) as fh:
        fh.write("\t".join(LEAKAGE_COLUMNS) + "\n")
        for row in rows:
            fh.write("\t".join(_cell(row[c]) for c in LEAKAGE_COLUMNS) + "\n")
    return rows
