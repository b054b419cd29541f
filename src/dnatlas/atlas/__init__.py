"""The feature atlas: every neuron and SAE feature of a model on a genome, described.

One streaming pass (:func:`dnatlas.pipelines.atlas.build_atlas`) computes per feature
its statistics, where it fires along the genome, top and quantile examples, concept
matches with their controls, structure (RC partner, decoder neighbours, meta-SAE) and
the biology no concept file names (motif, landmark profiles, codon phase, strand, GC),
and a written description; the result is one DuckDB file in a folder
(:mod:`dnatlas.atlas.schema`), read without torch by :class:`dnatlas.atlas.reader.Atlas`.
"""
