"""Choosing a torch device from a user's ``--device`` value, with one-line errors."""

from __future__ import annotations

from dnatlas.errors import InputError


def resolve_device(name: str | None = None):
    """``torch.device`` of ``name`` (None or ``"auto"``: cuda when available, else cpu).

    Raises :class:`InputError` for a malformed name or a device this machine lacks
    (``cuda`` on a CPU build of torch, ``cuda:3`` on a one-GPU machine, ``mps`` off a Mac).
    """
    import torch

    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except (RuntimeError, ValueError):
        raise InputError(f"device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)",
                         setting="device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name}: this torch build or machine has no CUDA GPU "
                             "(use device cpu)", setting="device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {name}: only {torch.cuda.device_count()} CUDA "
                             "device(s)", setting="device")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name}: MPS is not available here (use device cpu)",
                         setting="device")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name}: unsupported device type {device.type!r}",
                         setting="device")
    return device
