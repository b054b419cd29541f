"""dnatlas: train and interpret DNA language models.

Dependencies flow one way:
``genome`` and ``annotation`` (data) -> ``model`` -> ``training`` (and inference)
-> ``analysis`` and ``sae`` -> explorer.
"""

__version__ = "0.1.0"
