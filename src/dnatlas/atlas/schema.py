"""The atlas's tables: names, columns, types and units (schema version 1).

An atlas is one folder:

- ``atlas.duckdb``: every table below, one DuckDB file, written under a temporary name and
  renamed into place when complete;
- ``manifest.json``: what made it (``key``: model fingerprint, SAE hashes, genome record
  hashes, annotation hashes, settings), the schema version and the dictionaries. It is
  written last, so a folder without it is an unfinished build.

Coordinates: every position in a table is **1-based and closed** on the forward strand of
``record`` (``start``/``end``/``peak`` as IGV and samtools write them); ``strand`` is
``'+'`` or ``'-'``, the strand the model read. A feature is addressed by
``(dictionary, feature)``: ``dictionary`` is a name such as ``sae:topk16`` or
``neurons:blocks.2.residual`` (``random-init`` prefixed for the control model), and
``feature`` its 0-based index. Activations are in the dictionary's own units (an SAE
latent's value, a neuron's activation); ``frac_*`` are fractions of positions in [0, 1].

This module imports neither torch nor duckdb: it is the written contract that the
builder (:mod:`dnatlas.pipelines.atlas`), the reader (:mod:`dnatlas.atlas.reader`) and
the explorer share, rendered into ``docs/atlas.md``.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
ATLAS_FILE = "atlas.duckdb"
MANIFEST_FILE = "manifest.json"

# log-binned activation histograms: fixed edges shared by every feature, so that
# histograms of shards add up exactly. Bin 0 holds (0, 10**HIST_LOG10_MIN]; bin i > 0
# holds (10**(HIST_LOG10_MIN + (i-1)/HIST_PER_DECADE), 10**(HIST_LOG10_MIN + i/HIST_PER_DECADE)];
# the last bin is open above.
HIST_LOG10_MIN = -4
HIST_LOG10_MAX = 4
HIST_PER_DECADE = 10
HIST_BINS = (HIST_LOG10_MAX - HIST_LOG10_MIN) * HIST_PER_DECADE + 1

LANDMARKS = ("cds_start", "cds_end", "trna_end", "rrna_end", "tss")
ORIENTATIONS = ("sense", "antisense")
RELATIONS = ("rc_partner", "decoder_neighbour", "meta_parent", "meta_sibling",
             "neuron_to_sae", "sae_to_neuron")
EXAMPLE_KINDS = ("top", "quantile")

# table -> [(column, DuckDB type, meaning and unit)]
TABLES: dict[str, list[tuple[str, str, str]]] = {
    "dictionaries": [
        ("dictionary", "VARCHAR", "name, e.g. 'sae:topk16', 'neurons:blocks.2.residual'"),
        ("kind", "VARCHAR", "'sae' or 'neurons'"),
        ("site", "VARCHAR", "the model site read, e.g. 'blocks.2.residual'"),
        ("n_features", "INTEGER", "number of features F"),
        ("control", "BOOLEAN", "read on the random-init control model"),
        ("model", "VARCHAR", "the model spec it was read on"),
        ("source", "VARCHAR", "the SAE folder (NULL for neurons)"),
        ("rc_equivariant", "BOOLEAN", "the site has a reverse-complement channel permutation"),
    ],
    "records": [
        ("record", "VARCHAR", "record (contig) id"),
        ("length", "BIGINT", "length in nt"),
        ("offset", "BIGINT", "0-based start of the record in the concatenated genome "
                             "(the Manhattan x axis)"),
        ("gc", "DOUBLE", "GC fraction of the record's A/C/G/T"),
        ("sha256", "VARCHAR", "sha256 of the record's uint8 codes"),
    ],
    "features": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "0-based feature index"),
        ("max", "DOUBLE", "maximum activation, both strands"),
        ("mean", "DOUBLE", "mean activation over all positions, both strands"),
        ("frac_active", "DOUBLE", "fraction of positions with activation > 0, both strands"),
        ("max_plus", "DOUBLE", "maximum on the + strand"),
        ("max_minus", "DOUBLE", "maximum on the - strand"),
        ("mean_plus", "DOUBLE", "mean on the + strand"),
        ("mean_minus", "DOUBLE", "mean on the - strand"),
        ("frac_plus", "DOUBLE", "firing fraction on the + strand"),
        ("frac_minus", "DOUBLE", "firing fraction on the - strand"),
        ("q50", "DOUBLE", "median of the positive activations (to within a histogram bin)"),
        ("q90", "DOUBLE", "90th percentile of the positive activations"),
        ("q99", "DOUBLE", "99th percentile of the positive activations"),
        ("hist", "BIGINT[]", "log-binned counts of positive activations (HIST_BINS bins, "
                             "edges in schema.HIST_*), both strands"),
        ("manhattan", "FLOAT[]", "maximum per genome bin (manifest 'bin_size' nt), both "
                                 "strands, records concatenated in 'records' order"),
        ("gc_top", "DOUBLE", "GC fraction of the top windows (genome: records.gc)"),
        ("phase", "DOUBLE[]", "share of in-CDS firing by codon position 1, 2, 3 (sense)"),
        ("phase_strength", "DOUBLE", "max(phase) - 1/3"),
        ("coding_strand", "DOUBLE", "share of in-gene firing on the gene's own strand"),
        ("periodicity3", "DOUBLE", "power at period 3 of the activation autocorrelation "
                                   "(in CDS), 0..1"),
        ("top_motif", "VARCHAR", "consensus of the motif from the top windows (NULL: none)"),
        ("motif_enrichment", "DOUBLE", "enrichment of its seed k-mer over the genome"),
        ("best_landmark", "VARCHAR", "landmark/orientation with the strongest profile peak"),
        ("landmark_offset", "INTEGER", "offset of that peak, nt (negative: upstream)"),
        ("landmark_ratio", "DOUBLE", "peak mean activation / the feature's mean"),
        ("best_concept", "VARCHAR", "concept with the highest test F1 (NULL: none)"),
        ("best_f1", "DOUBLE", "its F1 on the test split at the threshold chosen on valid"),
        ("best_f1_shuffled", "DOUBLE", "the shuffled-labels control's F1 for that concept"),
        ("explained", "BOOLEAN", "a concept beyond its control, a landmark or a motif"),
        ("description", "VARCHAR", "the written description, generated by rules from the "
                                   "columns above"),
        ("score_concept", "DOUBLE", "ranking: best_f1 - best_f1_shuffled"),
        ("score_sparsity", "DOUBLE", "ranking: 1 - frac_active"),
        ("score_unexplained", "DOUBLE", "ranking 'strong but unexplained': high max, "
                                        "not explained (0 when explained)"),
    ],
    "examples": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "feature index"),
        ("kind", "VARCHAR", "'top' or 'quantile'"),
        ("bin", "INTEGER", "quantile group (0 = strongest; 0 for 'top')"),
        ("rank", "INTEGER", "0-based rank within (kind, bin)"),
        ("record", "VARCHAR", "record id"),
        ("start", "BIGINT", "1-based first position of the window (forward strand)"),
        ("end", "BIGINT", "1-based last position of the window (closed)"),
        ("peak", "BIGINT", "1-based position of the peak activation"),
        ("strand", "VARCHAR", "'+' or '-': the strand the model read"),
        ("activation", "DOUBLE", "activation at the peak"),
        ("sequence", "VARCHAR", "the window as read on 'strand', 5'->3'"),
        ("activations", "FLOAT[]", "per-nucleotide activations, aligned with 'sequence'"),
        ("copies", "INTEGER", "identical windows collapsed into this one"),
    ],
    "concept_counts": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("labels", "VARCHAR", "'real' or 'shuffled' (circularly shifted labels)"),
        ("split", "VARCHAR", "'valid' or 'test'"),
        ("strand", "VARCHAR", "'+' or '-'"),
        ("concept", "VARCHAR", "concept name"),
        ("feature", "INTEGER", "feature index"),
        ("threshold", "DOUBLE", "threshold on the max-normalised activation"),
        ("tp", "BIGINT", "firing positions inside the concept"),
        ("fp", "BIGINT", "firing positions outside it"),
        ("elements_hit", "BIGINT", "distinct elements with a firing position"),
        ("n_positive", "BIGINT", "positions inside the concept"),
        ("n_elements", "BIGINT", "distinct elements seen"),
    ],
    "concept_scores": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "feature index"),
        ("concept", "VARCHAR", "concept name"),
        ("threshold", "DOUBLE", "threshold chosen on the valid split (both strands)"),
        ("precision", "DOUBLE", "test precision (per position), both strands"),
        ("recall", "DOUBLE", "test recall (per element), both strands"),
        ("f1", "DOUBLE", "test F1"),
        ("f1_shuffled", "DOUBLE", "the same for the shuffled labels (the control)"),
        ("f1_random_init", "DOUBLE", "best F1 of the random-init model's same-kind "
                                     "dictionary for this concept (NULL: not run)"),
        ("f1_neurons", "DOUBLE", "best F1 of the neurons of the same site (SAE rows; NULL "
                                 "otherwise)"),
    ],
    "landmarks": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "feature index"),
        ("landmark", "VARCHAR", "one of schema.LANDMARKS"),
        ("orientation", "VARCHAR", "'sense' (the landmark's strand) or 'antisense'"),
        ("offset_min", "INTEGER", "offset of profile[0], nt relative to the landmark, in "
                                  "its own 5'->3' direction (negative: upstream)"),
        ("profile", "FLOAT[]", "mean activation at each offset"),
        ("n", "BIGINT", "landmarks averaged"),
    ],
    "motifs": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "feature index"),
        ("kmer", "VARCHAR", "seed k-mer, most enriched in the top windows"),
        ("enrichment", "DOUBLE", "its frequency in the top windows / in the genome"),
        ("consensus", "VARCHAR", "consensus of the aligned PWM"),
        ("pwm", "DOUBLE[]", "position frequency matrix, row-major (width x 4: A, C, G, T)"),
        ("width", "INTEGER", "PWM width"),
        ("n_sites", "INTEGER", "windows aligned into the PWM"),
    ],
    "relations": [
        ("dictionary", "VARCHAR", "dictionary name"),
        ("feature", "INTEGER", "feature index"),
        ("relation", "VARCHAR", "one of schema.RELATIONS"),
        ("other_dictionary", "VARCHAR", "the related feature's dictionary"),
        ("other_feature", "INTEGER", "the related feature's index"),
        ("score", "DOUBLE", "cosine (decoder, RC partner), loading, or meta-SAE weight"),
    ],
}

# the order rows are stored in (DuckDB zone maps make (dictionary, feature) lookups fast)
SORT_KEYS = {name: [c for c in ("dictionary", "feature") if c in {col for col, _, _ in cols}]
             for name, cols in TABLES.items()}


def columns(table: str) -> list[str]:
    """The column names of ``table``, in order."""
    return [name for name, _, _ in TABLES[table]]


def hist_edges() -> list[float]:
    """The HIST_BINS + 1 edges of the activation histogram (0, then log-spaced; the last
    edge is +inf)."""
    edges = [0.0] + [10.0 ** (HIST_LOG10_MIN + i / HIST_PER_DECADE) for i in range(HIST_BINS)]
    edges[-1] = float("inf")
    return edges


def markdown() -> str:
    """The schema as Markdown tables (rendered into docs/atlas.md)."""
    lines = []
    for name, cols in TABLES.items():
        lines += [f"### `{name}`", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c}` | {t} | {m} |" for c, t, m in cols]
        lines.append("")
    return "\n".join(lines)
