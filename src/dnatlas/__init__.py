"""dnatlas: train and interpret DNA language models.

Dependencies flow one way:
``genome`` and ``annotation`` (data) -> ``model`` (DNAtlas) and ``baselines`` -> ``models``
(every gLM behind one protocol) -> ``training``, ``analysis`` and ``sae`` -> ``pipelines``
-> ``cli`` (and the explorer).

With the ``hf`` extra installed, DNAtlas folders load through ``transformers.AutoModel``
(:mod:`dnatlas.models.hf`, registered by :mod:`dnatlas.hf_hook`); ``transformers`` is not imported until the user imports it.
"""

__version__ = "0.1.0"


def _register_with_transformers() -> None:
    from dnatlas.hf_hook import register_when_imported

    register_when_imported()


_register_with_transformers()
