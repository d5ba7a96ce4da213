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


@pytest.fixture
def read_net_from_darknet():
    """OpenCV 4's darknet importer, the reference implementation of darknet's arithmetic. OpenCV 5 removed it: the
    tests that use it as an oracle skip there, saying so (they run in CI's main environment, which has OpenCV 4)."""
    cv2 = pytest.importorskip("cv2")
    importer = getattr(cv2.dnn, "readNetFromDarknet", None)
    if importer is None:
        pytest.skip(f"OpenCV {cv2.__version__} has no darknet importer (removed in OpenCV 5); this oracle needs "
                    "OpenCV 4.x")
    return importer
