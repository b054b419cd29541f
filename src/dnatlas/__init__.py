"""dnatlas: train and interpret DNA language models.

Layers, each importing only from its own layer and the layers above it in this list
(``docs/design.md``; checked by ``tests/test_layers.py``):

1. base: ``errors``, ``files``, ``outputs`` (output folders), ``extras`` (optional
   dependencies), ``progress``, ``devices``, ``distributed``, ``masked_scores``,
   ``runtime``, ``model_files``, ``bundled``, ``presets``, ``_version`` (and this
   package's ``__init__``, ``_moved``, ``hf_hook``);
2. data: ``genome``, ``annotation``, ``motifs``, ``concepts``, ``audit``;
3. ``architectures``: DNAtlas, HyenaDNA, Nucleotide Transformer, Transformer MLM, k-mer;
4. ``models``: the model layer, every gLM behind one protocol (``load_model``,
   ``resolve_model``);
5. ``training``, ``analysis``, ``sae``, ``atlas`` (siblings: none imports another);
6. ``pipelines``: the jobs as plain functions;
7. ``cli`` and ``explorer`` (siblings; ``python -m dnatlas`` is the CLI).

Importing ``dnatlas`` imports none of them. With the ``hf`` extra installed, DNAtlas folders
load through ``transformers.AutoModel`` (:mod:`dnatlas.models.hf`, registered by
:mod:`dnatlas.hf_hook` as soon as the user imports ``transformers``). Import paths that moved
in 0.2 keep working for one release with a ``DeprecationWarning`` (:mod:`dnatlas._moved`).
"""

from dnatlas._moved import install as _install_moved
from dnatlas._version import __version__
from dnatlas.hf_hook import register_when_imported as _register_when_imported

__all__ = ["__version__"]

_install_moved()
_register_when_imported()
