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
