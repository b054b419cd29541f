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
- :mod:`.windows`, :mod:`.records`: window batches and genome regions for the above.

Pipelines import from every layer below (models, training, analysis, sae) and from no CLI.
"""
