"""``dnatlas concepts``: concept labels, and the evaluation of SAE features and neurons
against them (InterPLM's precision / recall / F1, with controls)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import (
    BUNDLED_GENOME,
    add_device_arg,
    add_genome_arg,
    add_model_arg,
    needs,
    non_negative_int,
    positive_int,
)
from dnatlas.errors import InputError

ANNOTATION_HELP = ("annotation file(s) (GFF3, GenBank, BED) or a bundled annotation name; "
                   "comma-separated or repeated, read as one union (default: the bundled "
                   "annotation when the genome is the bundled default; 'none' for no annotation)")


def add_pass_args(p, neurons_none: bool = False) -> None:
    """The flags of one model pass over a genome shared by ``concepts eval`` and ``atlas
    build``: the dictionaries, the splits, the thresholds and maxima, the controls, the
    chunking. One definition, so both commands speak the same words."""
    p.add_argument("--sae", action="append", default=[], metavar="DIR",
                   help="SAE folder (SAELens) of the model; 'default' is the bundled SAE, "
                        "used when neither --sae nor --neurons is given (repeatable)")
    p.add_argument("--neurons", action="append", metavar="SITE",
                   help="a site whose neurons are a dictionary, e.g. blocks.2.residual "
                        "(repeatable; default: each SAE's site"
                        + ("; 'none' for no neurons)" if neurons_none else ")"))
    p.add_argument("--random-init", action="store_true",
                   help="control: the same architecture with random weights (its neurons)")
    p.add_argument("--random-init-sae", action="append", default=[], metavar="DIR",
                   help="an SAE trained on the random-init model (with --random-init)")
    p.add_argument("--valid", action="append", metavar="REGIONS",
                   help="validation regions, 1-based RECORD:START-END or RECORD, comma-"
                        "separated or repeated (default: each record's first half)")
    p.add_argument("--test", action="append", metavar="REGIONS",
                   help="test regions, disjoint from --valid (default: second halves)")
    p.add_argument("--thresholds", default="0,0.15,0.5,0.6,0.8", metavar="LIST",
                   help="thresholds on the max-normalised activation (default 0,0.15,0.5,0.6,0.8)")
    p.add_argument("--sample", type=positive_int, default=1_000_000, metavar="NT",
                   help="validation positions per strand for the feature maxima (default "
                        "1,000,000)")
    p.add_argument("--edge", type=non_negative_int, default=64, metavar="NT",
                   help="positions at record ends left out of the maxima (default 64)")
    p.add_argument("--no-shuffled", action="store_true", help="skip the shuffled-labels control")
    p.add_argument("--seed", type=int, default=0, help="seed of the controls (default 0)")
    p.add_argument("--chunk-size", type=positive_int, default=1 << 16, metavar="NT",
                   help="positions per model call (default 65536)")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N")


def _add_label_args(p) -> None:
    add_genome_arg(p, required=True, default=BUNDLED_GENOME)
    p.add_argument("--annotations", "-a", action="append", metavar="FILES", help=ANNOTATION_HELP)
    p.add_argument("--concepts", metavar="LIST",
                   help="comma-separated annotation concepts: tracks (CDS, tRNA, rRNA, ncRNA, "
                        "tmRNA, repeat_region, REP, mobile_element, terminator, CRISPR) or "
                        "feature types (default: all of those plus promoter)")
    p.add_argument("--no-codons", action="store_true",
                   help="leave out start/stop codon concepts (and their footnote-6 nucleotides)")
    p.add_argument("--split-by", action="append", default=[], metavar="CONCEPT:ATTRIBUTE",
                   help="sub-concepts by a GFF3 attribute, e.g. tRNA:product (repeatable)")
    p.add_argument("--bed", action="append", default=[], metavar="BED",
                   help="BED concepts, e.g. a `dnatlas motifs scan` output: one concept per "
                        "name column value (repeatable)")
    p.add_argument("--bed-whole", action="store_true",
                   help="make each BED file one concept instead of one per name")
    p.add_argument("--min-count", type=positive_int, default=10, metavar="N",
                   help="keep sub-concepts and BED names with at least N elements (default 10)")
    p.add_argument("--no-nucleotides", action="store_true",
                   help="leave out the nucleotide-identity concepts A, C, G, T")


def register(subparsers) -> None:
    p = subparsers.add_parser("concepts", help="concept labels and concept evaluation of "
                                               "SAE features and neurons")
    sub = p.add_subparsers(dest="concepts_command", metavar="COMMAND")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    ev = sub.add_parser(
        "eval", help="score SAE features and neurons against concepts (precision, recall, F1)",
        description="For every feature of every dictionary (SAE latents, neurons) and every "
                    "concept, count TP/FP/elements hit at each threshold on both strands; pick "
                    "each concept's best (feature, threshold) on the valid regions and report it "
                    "on the test regions, next to the neurons, a random-init model and shuffled "
                    "labels. Writes concepts.csv, best.csv, summary.json, table.txt and PNGs.")
    add_model_arg(ev)
    _add_label_args(ev)
    add_pass_args(ev)
    ev.add_argument("--strand", choices=["both", "+", "-"], default="both",
                    help="strands to evaluate (default both; tables give each and both)")
    ev.add_argument("--top", type=positive_int, default=5,
                    help="features per concept in concepts.csv (default 5)")
    add_device_arg(ev)
    ev.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    ev.add_argument("--force", action="store_true", help="replace an earlier evaluation in DIR")
    ev.set_defaults(func=run_eval)
    needs(ev, "analysis")

    lab = sub.add_parser("labels", help="write the concept labels as BED with element ids",
                         description="Build the concept labels (annotation concepts, codons, "
                                     "sub-concepts, BED/motif concepts) of a genome and write "
                                     "them as BED6 (name = CONCEPT|ELEMENT) with a per-concept "
                                     "summary TSV.")
    _add_label_args(lab)
    lab.add_argument("--out", "-o", type=Path, required=True, metavar="BED")
    lab.add_argument("--force", action="store_true", help="replace an existing BED")
    lab.set_defaults(func=run_labels)
    needs(lab, "analysis")


def _split_list(values) -> list[str]:
    return [item for value in values or [] for item in value.split(",") if item.strip()]


def _annotations(args):
    items = _split_list(args.annotations)
    if items == ["none"]:
        return None
    return items or "default"   # the library's default for the genome


def _label_spec(args):
    from dnatlas.pipelines.concepts import LabelSpec

    concepts = {"concepts": _split_list([args.concepts])} if args.concepts else {}
    return LabelSpec(**concepts, codons=not args.no_codons, split_by=args.split_by,
                     beds=args.bed, bed_by_name=not args.bed_whole, min_count=args.min_count,
                     nucleotides=not args.no_nucleotides)


def _thresholds(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--thresholds takes comma-separated numbers, got {text!r}") from None


def run_eval(args: argparse.Namespace) -> int:
    from dnatlas.genome.regions import split_region_list
    from dnatlas.pipelines.concepts import ConceptSettings, evaluate_concepts

    if args.random_init_sae and not args.random_init:
        raise InputError("--random-init-sae needs --random-init")
    settings = ConceptSettings(
        thresholds=_thresholds(args.thresholds),
        strands=("+", "-") if args.strand == "both" else (args.strand,),
        valid=split_region_list(args.valid) or None, test=split_region_list(args.test) or None,
        sample_nt=args.sample, edge=args.edge, chunk_size=args.chunk_size,
        batch_size=args.batch_size, shuffled=not args.no_shuffled, seed=args.seed,
        top=args.top, labels=_label_spec(args))
    result = evaluate_concepts(args.model, args.genome, _annotations(args), args.out,
                               saes=args.sae or None, neurons=args.neurons,
                               random_init=args.random_init,
                               random_init_saes=args.random_init_sae, settings=settings,
                               device=args.device, force=args.force)
    print(result.table, end="")
    for h in result.headlines:
        beyond = h.identified_beyond_shuffled
        beyond = "" if beyond is None else f" ({len(beyond)} beyond the shuffled control)"
        tied = h.features_tied_beyond_shuffled
        tied = "" if tied is None else f" ({tied} beyond the shuffled control)"
        print(f"{h.name}: {len(h.identified)} concepts identified{beyond}, "
              f"{h.features_tied} of {h.features} features tied to a concept{tied}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def run_labels(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.concepts import write_concept_labels

    rows = write_concept_labels(args.genome, _annotations(args), args.out, _label_spec(args),
                                force=args.force)
    print("concept\telements\tpositions_plus\tpositions_minus")
    for row in rows:
        print(f"{row.concept}\t{row.elements}\t{row.positions_plus}\t{row.positions_minus}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
