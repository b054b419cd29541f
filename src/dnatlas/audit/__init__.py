"""Training-data audit: where a feature's windows (or any sequences) occur in a genome store
or FASTA set, how they spread over genomes, loci and splits, and k-mer leakage between the
training and held-out splits (Decode-gLM traced an SAE feature to contaminated training
sequences this way). Model-agnostic: it works on sequences only.

* :mod:`.kmers`: canonical k-mers packed 2 bits/nt (numpy);
* :mod:`.target`: the sequences searched (store or FASTA), keyed by sha256;
* :mod:`.index`: the saved k-mer index (built once, refused when stale);
* :mod:`.search`: exact seeds and ungapped extension on both strands;
* :mod:`.blast`: the same search through BLAST+ (``blastn``) when installed;
* :mod:`.queries`: windows tables (neuron catalog, SAE top examples) and FASTA queries;
* :mod:`.summary`: per-feature spread, copies and split sharing;
* :mod:`.leakage`: share of held-out k-mers present in the training split.
"""
