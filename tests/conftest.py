"""Shared test fixtures. ``shared_dir`` is the project's reference data (``../shared``), skipped when absent."""

from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"


@pytest.fixture
def shared_dir():
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DIR} (the ../shared folder beside the project)")
    return SHARED_DIR


@pytest.fixture
def darknet_dir(shared_dir):
    path = shared_dir / "darknet"
    if not path.is_dir():
        pytest.skip(f"darknet reference files not found at {path}")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
