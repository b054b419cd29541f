"""TransTermHP and pilercr: external binaries run on a temporary FASTA copy of the genome.

Each is used only when found on PATH; otherwise :class:`ToolUnavailable` says so.
Sequences are written as ``seq1, seq2...`` (safe for both tools' ID handling)
and mapped back to their IDs when the output is parsed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from dnatlas.annotation.features import Interval
from dnatlas.errors import DnatlasError, InputError

#: A genome to annotate: (sequence ID, nucleotide string over ACGTN) per record.
Genome = Sequence[tuple[str, str]]
#: Sequences shorter than this are not searched for terminators.
MIN_TERMINATOR_SEQUENCE = 60
#: TransTermHP's own default ``--min-conf``: terminators below this confidence are not reported.
DEFAULT_MIN_CONFIDENCE = 76
#: Where ``expterm.dat`` is looked for, relative to the directory of ``transterm``.
EXPTERM_CANDIDATES = ("expterm.dat", "../share/transtermhp/expterm.dat",
                      "../share/transterm/expterm.dat", "../data/expterm.dat")


class ToolUnavailable(Exception):
    """A tool is not installed; the message says why (``not found on PATH``)."""


class ToolError(DnatlasError):
    """An installed tool failed while running."""


def tool_feature(seqid: str, begin: int, end: int, strand: int, ftype: str,
                 attributes: dict[str, str]) -> Interval:
    """An unnamed Interval from 1-based inclusive tool coordinates (in either order)."""
    low, high = min(begin, end), max(begin, end)
    return Interval(seqid, low - 1, high, strand, ftype, "", attributes)


def _require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolUnavailable("not found on PATH")
    return path


def _execute(command: list[str], cwd: Path) -> str:
    """Run a tool; return its stdout, or raise ToolError with the end of its stderr."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ToolError(f"{Path(command[0]).name} failed (exit {done.returncode}): {last}")
    return done.stdout


def _write_fasta(path: Path, genome: Genome) -> dict[str, str]:
    """Write ``genome`` with IDs ``seq1, seq2...`` (safe for every tool); return ID -> seqid."""
    names = {}
    with open(path, "w") as handle:
        for i, (seqid, seq) in enumerate(genome, 1):
            names[f"seq{i}"] = seqid
            handle.write(f">seq{i}\n")
            handle.writelines(seq[j:j + 80] + "\n" for j in range(0, len(seq), 80))
    return names


def _version(text: str, tool: str) -> str:
    match = re.search(r"\bv(\d+(?:\.\d+)+)", text)
    return f"{tool}:{match.group(1)}" if match else tool


def find_expterm(transterm: str | Path, expterm: str | Path | None = None) -> Path:
    """TransTermHP's ``expterm.dat``: ``expterm`` if given, else next to the binary.

    Raises ToolUnavailable when none of :data:`EXPTERM_CANDIDATES` exists.
    """
    if expterm is not None:
        if not Path(expterm).is_file():
            raise InputError("no such file", path=expterm)
        return Path(expterm)
    binary_dir = Path(os.path.realpath(transterm)).parent
    for candidate in EXPTERM_CANDIDATES:
        path = (binary_dir / candidate).resolve()
        if path.is_file():
            return path
    raise ToolUnavailable("found, but not its expterm.dat (give its path with --expterm)")


_SEQUENCE_LINE = re.compile(r"^SEQUENCE\s+(\S+)")
_TERM_LINE = re.compile(r"^\s+TERM\s+\d+\s+(\d+)\s+-\s+(\d+)\s+([+-])\s+(\S+)\s+(\d+)"
                        r"\s+(\S+)\s+(\S+)")


def check_min_confidence(min_confidence: int) -> None:
    """Raise InputError unless ``min_confidence`` is an integer from 0 to 100."""
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, int) \
            or not 0 <= min_confidence <= 100:
        raise InputError("the minimum TransTermHP confidence must be an integer from 0 to "
                         f"100, got {min_confidence!r}")


def run_transterm(genome: Genome, cds: Iterable[Interval],
                  expterm: str | Path | None = None,
                  min_confidence: int = DEFAULT_MIN_CONFIDENCE) -> list[Interval]:
    """Intrinsic terminators from TransTermHP with confidence >= ``min_confidence`` (0-100).

    The GFF3 score (``attributes["score"]``) is TransTermHP's confidence; ``hairpin_score``
    and ``tail_score`` are its hairpin and U-tail energies (kcal/mol-like, lower is better).
    """
    check_min_confidence(min_confidence)
    binary = _require_binary("transterm")
    expterm = find_expterm(binary, expterm)
    searched = [(seqid, seq) for seqid, seq in genome if len(seq) >= MIN_TERMINATOR_SEQUENCE]
    if not searched:
        return []
    with tempfile.TemporaryDirectory(prefix="dnatlas-transterm-") as tmp:
        tmp = Path(tmp)
        names = _write_fasta(tmp / "genome.fa", searched)
        _write_coords(tmp / "genes.coords", names, searched, list(cds))
        output = _execute([binary, "-p", str(expterm), f"--min-conf={int(min_confidence)}",
                           "genome.fa", "genes.coords"], tmp)
    return _parse_transterm(output, names)


def _write_coords(path: Path, names: dict[str, str], genome: Genome,
                  cds: list[Interval]) -> None:
    """TransTermHP gene file: ``name 5'-end 3'-end seqN`` (1-based; 5' > 3' on the - strand).

    A sequence with fewer than two genes gets two 2-nt stand-in genes at its ends, as
    TransTermHP's manual prescribes for unannotated sequences; the right one is on the -
    strand, so that the sequence between them is a tail-to-tail region, searched on both
    strands (two + strand stand-ins, as in the manual, report + strand terminators only).
    """
    lines = []
    for (name, seqid), (_, seq) in zip(names.items(), genome, strict=True):
        genes = [iv for iv in cds if iv.seqid == seqid]
        for i, gene in enumerate(genes, 1):
            five, three = gene.start + 1, gene.end
            if gene.strand == -1:
                five, three = three, five
            lines.append(f"{name}_gene{i}\t{five}\t{three}\t{name}")
        if len(genes) < 2:
            lines += [f"{name}_left\t1\t2\t{name}",
                      f"{name}_right\t{len(seq)}\t{len(seq) - 1}\t{name}"]
    path.write_text("\n".join(lines) + "\n")


def _parse_transterm(output: str, names: dict[str, str]) -> list[Interval]:
    source = _version(output, "TransTermHP")
    intervals, seqid = [], None
    for line in output.splitlines():
        if match := _SEQUENCE_LINE.match(line):
            seqid = names[match.group(1)]
        elif match := _TERM_LINE.match(line):
            begin, end, strand, context, confidence, hairpin, tail = match.groups()
            attributes = {"source": source, "score": confidence, "context": context,
                          "hairpin_score": hairpin, "tail_score": tail}
            strand = 1 if strand == "+" else -1
            intervals.append(tool_feature(seqid, int(begin), int(end), strand, "terminator",
                                          attributes))
    return intervals


_CRISPR_ROW = re.compile(r"^\s*\d+\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+"
                         r"(?:\d+\s+)?(\S+)\s*$")


def run_pilercr(genome: Genome) -> list[Interval]:
    """CRISPR arrays from pilercr (its "summary by position"), unstranded."""
    binary = _require_binary("pilercr")
    with tempfile.TemporaryDirectory(prefix="dnatlas-pilercr-") as tmp:
        tmp = Path(tmp)
        names = _write_fasta(tmp / "genome.fa", genome)
        _execute([binary, "-in", "genome.fa", "-out", "report.txt", "-noinfo", "-quiet"], tmp)
        report = (tmp / "report.txt").read_text()
    return _parse_pilercr(report, names)


def _parse_pilercr(report: str, names: dict[str, str]) -> list[Interval]:
    source = _version(report, "pilercr")
    _, found, summary = report.partition("SUMMARY BY POSITION")
    intervals = []
    for line in summary.splitlines() if found else []:
        if match := _CRISPR_ROW.match(line):
            name, position, length, copies, repeat, spacer, consensus = match.groups()
            attributes = {"source": source, "rpt_family": "CRISPR", "rpt_type": "direct",
                          "rpt_unit_seq": consensus, "copies": copies,
                          "repeat_length": repeat, "spacer_length": spacer}
            begin = int(position)
            end = begin + int(length) - 1
            intervals.append(tool_feature(names[name], begin, end, 0, "CRISPR", attributes))
    return intervals
