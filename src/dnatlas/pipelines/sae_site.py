"""An SAE folder loaded for a model: the one check that the SAE reads a site the model has,
at the width the model gives it (used by ``sae eval``, ``concepts eval`` and ``steer``)."""

from __future__ import annotations

from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter


def load_sae_for(spec: str | Path, model: ModelAdapter, hook: str | None = None,
                 device=None):
    """Load the SAE ``spec`` (a SAELens folder, or a bundled name such as ``default``) for
    ``model``, checked against the site it reads.

    Args:
        spec: the SAE folder or bundled SAE name.
        model: the model whose activations the SAE will read.
        hook: the site to read (default: the SAE's ``cfg.hook_name``).
        device: where to load the SAE (default: the model's device).

    Returns:
        ``(sae, folder, key)``: the loaded SAE, its resolved folder and the site key.

    Raises:
        InputError: one line naming the folder when the SAE has no site, the model has
            no such site, or the site's width differs from the SAE's ``d_in``.
    """
    from dnatlas.sae.saelens_format import load_sae, resolve_sae_path

    folder = resolve_sae_path(spec)
    sae = load_sae(folder, device=model.device if device is None else device)
    key = hook or sae.cfg.hook_name
    if not key:
        raise InputError("the SAE's cfg.json has no hook_name; give the site (hook)",
                         path=folder, setting="hook")
    try:
        model.check_keys([key])
    except ValueError as exc:
        raise InputError(f"the SAE does not fit the model: {exc}", path=folder) from None
    if model.d(key) != sae.d_in:
        raise InputError(f"the SAE reads {sae.d_in} channels but {key} of {model.name} has "
                         f"{model.d(key)}: an SAE of another model?", path=folder)
    from dnatlas.outputs import check_finished

    check_finished(folder, "SAE folder")  # not one a run is still writing (or left unfinished)
    return sae, folder, key
