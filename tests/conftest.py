import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DNATLAS_SHARED_DATA", REPO.parent / "shared" / "data"))
BUNDLED = REPO / "src" / "dnatlas" / "bundled"


@pytest.fixture
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture
def bundled() -> Path:
    return BUNDLED


@pytest.fixture
def one_torch_thread():
    """Models run on 1 thread: faster than 2 on a shared 2-core machine (and under -n 2)."""
    import torch  # here, not at the top: tests that need no torch start faster

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
