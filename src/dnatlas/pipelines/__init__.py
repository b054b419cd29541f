"""Pipelines: the report's jobs as plain Python functions with typed arguments.

The ``dnatlas`` CLI turns argv into one call of these; a notebook or a web server makes the
same call. Each module is one job:

- :mod:`.extract`: activations of a genome file to an activation folder;
- :mod:`.gram`: Gram maps and their statistics;
- :mod:`.neurons` (+ :mod:`.neuron_figures`): the neuron catalog;
- :mod:`.sae`: SAE training over layers x hyperparameters, evaluation, activation caches;
- :mod:`.evaluate`: masked-nucleotide bits/nt of models and baselines;
- :mod:`.figures`: the report's figure analogues;
- :mod:`.demo`: the main job, including building the default genome store;
- :mod:`.annotate`, :mod:`.motifs`: genome annotation (GFF3) and motif scanning (BED6);
- :mod:`.data`: GTDB selection, NCBI download, genome stores; :mod:`.train`: training;
- :mod:`.windows`, :mod:`.records`: window batches and genome regions for the above.

Calling convention: ``fn(inputs..., settings, out=None, force=False) -> Result`` (a
dataclass of settings with the library's defaults; computed first, written only with
``out``). Errors name settings (``window``, ``force=True``), never CLI flags.

Pipelines import from every layer below (models, training, analysis, sae) and from no CLI.
"""
