"""``hf:REPO_ID[@REVISION]``: models on the Hugging Face Hub, through huggingface_hub's cache.

The repository is fetched with :func:`huggingface_hub.snapshot_download` into the standard
cache (``HF_HUB_CACHE`` / ``HF_HOME``). Without network, or with ``HF_HUB_OFFLINE=1``, a
snapshot already in the cache is used; only when neither works is it an error.
"""

from __future__ import annotations

from pathlib import Path

from dnatlas.errors import InputError

WEIGHT_PATTERNS = ["config.json", "*.safetensors", "*.bin", "*.ckpt", "*.npz", "*.txt",
                   "*.json", "*.md"]


def split_repo(text: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ("org/name", "rev")."""
    repo, _, revision = text.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise InputError(f"hf:{text}: a repository id is ORG/NAME (optionally @REVISION)")
    return repo, revision or None


def snapshot_folder(text: str, config_only: bool = False) -> Path:
    """Local folder of a hub repository's snapshot (downloaded or from the cache).

    Args:
        text: ``ORG/NAME`` or ``ORG/NAME@REVISION``.
        config_only: fetch only ``config.json`` (enough for a random initialisation).
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError
    except ImportError:
        raise InputError("hf: models need huggingface_hub: pip install 'dnatlas[hf]'") from None
    repo, revision = split_repo(text)
    patterns = ["config.json"] if config_only else WEIGHT_PATTERNS
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=patterns)
    except HFValidationError as exc:
        raise InputError(f"hf:{text}: {str(exc).splitlines()[0]}") from None
    except Exception as online_error:  # no network, repo gone, offline mode: try the cache
        try:
            folder = snapshot_download(repo, revision=revision, allow_patterns=patterns,
                                       local_files_only=True)
        except Exception:
            reason = str(online_error).splitlines()[0] if str(online_error) else \
                type(online_error).__name__
            raise InputError(f"hf:{text}: not in the local Hugging Face cache and cannot be "
                             f"downloaded ({reason})") from None
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"hf:{text}: the repository has no config.json", path=folder)
    return folder
