"""The audit search through BLAST+ (``blastn``, Debian package ``ncbi-blast+``).

:func:`make_blast_db` writes the target's records once into ``FOLDER/blast`` with
``makeblastdb`` (records named ``r0``, ``r1``... in target order) and a ``blast.json``
keyed by the target's sha256, written last; a database of other sequences is rebuilt.
:func:`blast_search` runs ``blastn -task megablast -outfmt 6`` (DUST off, both strands) and
returns the same :class:`~dnatlas.audit.search.Hit` records as the k-mer search, with
``identity = nident / alignment length`` (BLAST's pident; gaps allowed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from dnatlas.audit.search import Hit, SearchResult
from dnatlas.audit.target import Target
from dnatlas.errors import InputError
from dnatlas.files import write_json
from dnatlas.genome.alphabet import DECODE_TABLE
from dnatlas.progress import progress as progress_bar

DB_FOLDER, DB_NAME, DB_META = "blast", "db", "blast.json"
OUTFMT = "6 qseqid sseqid nident length qstart qend sstart send bitscore"


def blast_available() -> bool:
    """Whether ``blastn`` and ``makeblastdb`` are on the PATH."""
    return shutil.which("blastn") is not None and shutil.which("makeblastdb") is not None


def _require_blast() -> None:
    if not blast_available():
        raise InputError("backend blast needs BLAST+ (blastn, makeblastdb) on the PATH; "
                         "install it (Debian/Ubuntu: apt-get install ncbi-blast+) or use "
                         "backend kmer", setting="backend")


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InputError(f"cannot run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        raise InputError(f"{Path(argv[0]).name} failed: {first}")
    return done.stdout


def _write_fasta(path: Path, names: list[str], seqs) -> None:
    with open(path, "wb") as fh:
        for name, seq in zip(names, seqs):
            fh.write(b">" + name.encode() + b"\n")
            fh.write(DECODE_TABLE[np.asarray(seq, dtype=np.intp)].tobytes() + b"\n")


def make_blast_db(target: Target, folder: str | Path) -> Path:
    """The BLAST database of ``target`` in ``folder/blast``, made unless one of the same
    sequences (by sha256) is there; returns the database prefix."""
    _require_blast()
    where = Path(folder) / DB_FOLDER
    meta_path = where / DB_META
    if meta_path.is_file():
        try:
            if json.loads(meta_path.read_text())["sha256"] == target.sha256 and target.sha256:
                return where / DB_NAME
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    records = target.records()
    fasta = where / "db.fa"
    _write_fasta(fasta, [f"r{i}" for i in range(len(records))],
                 (target.tokens[lo:hi] for _, _, lo, hi in records))
    _run(["makeblastdb", "-in", str(fasta), "-dbtype", "nucl", "-out", str(where / DB_NAME),
          "-title", "dnatlas audit"])
    fasta.unlink()
    write_json(meta_path, {"sha256": target.sha256, "n_records": len(records)})
    return where / DB_NAME


def blast_search(target: Target, queries: list[np.ndarray], folder: str | Path | None = None,
                 min_identity: float = 0.9, min_length: int = 50, word_size: int = 16,
                 threads: int = 1, progress: bool = True, batch: int = 500) -> SearchResult:
    """Search the queries (uint8 codes) with blastn against ``target``'s database in
    ``folder`` (made there when missing or stale; a temporary one without ``folder``).

    Hits pass the same filters as :func:`dnatlas.audit.search.search`; per query they are
    ordered by bit score, best first.
    """
    _require_blast()
    with tempfile.TemporaryDirectory(prefix="dnatlas-blast-") as tmp:
        db = make_blast_db(target, folder if folder is not None else tmp)
        records = target.records()
        result = SearchResult()
        with progress_bar(total=len(queries), desc="audit search (blastn)", unit="query",
                          disable=not progress) as bar:
            for first in range(0, len(queries), batch):
                part = queries[first:first + batch]
                fasta = Path(tmp) / "queries.fa"
                _write_fasta(fasta, [f"q{first + i}" for i in range(len(part))], part)
                out = _run(["blastn", "-task", "megablast", "-query", str(fasta), "-db",
                            str(db), "-outfmt", OUTFMT, "-dust", "no", "-strand", "both",
                            "-word_size", str(word_size), "-evalue", "10",
                            "-perc_identity", f"{100 * min_identity:.4f}",
                            "-max_target_seqs", "100000", "-num_threads", str(threads)])
                result.hits.extend(_parse(out, target, records, queries, min_identity,
                                          min_length))
                bar.update(len(part))
    return result


def _parse(out: str, target: Target, records, queries, min_identity, min_length) -> list[Hit]:
    rows = []
    for line in out.splitlines():
        q, s, nident, length, qs, qe, ss, se, bits = line.split("\t")
        qi, nident, length = int(q[1:]), int(nident), int(length)
        genome, record, lo, _ = records[int(s[1:])]
        if nident < min_identity * length or length < min(min_length, len(queries[qi])):
            continue
        ss, se = int(ss), int(se)
        strand = 1 if ss <= se else -1
        start, end = min(ss, se) - 1, max(ss, se)
        hit = Hit(qi, genome, record, start, end, strand, int(qs) - 1, int(qe), nident, length,
                  target.splits_over(lo + start, lo + end))
        rows.append((qi, -float(bits), genome, record, start, hit))
    rows.sort(key=lambda r: r[:5])
    return [r[-1] for r in rows]
