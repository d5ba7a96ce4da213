"""Stand-ins shared by the real-time tests: a tiny detector with the Detector interface and a generated video."""

import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from defi1.realtime.video import write_synthetic_video


@dataclass
class StandInDetection:
    """Same fields as defi1.yolo.detector.Detection: boxes xyxy pixels (K, 4), scores (K,), class_ids (K,)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list = field(default_factory=lambda: ["bright"])


class BrightestPixelDetector:
    """Detects one 10x10 box around the brightest pixel of the red channel; its score is the mean intensity / 255.

    ``delay_s`` makes it as slow as a real model, to exercise frame dropping.
    """

    def __init__(self, delay_s=0.0):
        self.delay_s = delay_s
        self.calls = 0

    def detect(self, images):
        images = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else images
        if self.delay_s:
            time.sleep(self.delay_s)
        detections = []
        for image in images:
            self.calls += 1
            row, column = np.unravel_index(np.argmax(image[:, :, 0]), image.shape[:2])
            detections.append(StandInDetection(
                boxes=np.array([[column - 5, row - 5, column + 5, row + 5]], dtype=np.float32),
                scores=np.array([image.mean() / 255.0], dtype=np.float32),
                class_ids=np.array([0])))
        return detections


def draw_box(image, detection):
    """A minimal drawing function: paints the box outline in pure green."""
    image = image.copy()
    for x_min, y_min, x_max, y_max in detection.boxes.astype(int):
        image[max(y_min, 0):y_max, max(x_min, 0):x_max][[0, -1], :] = (0, 255, 0)
    return image


@pytest.fixture(scope="session")
def small_video(tmp_path_factory):
    """30 frames, 160x120, 30 fps."""
    return write_synthetic_video(tmp_path_factory.mktemp("video") / "shapes.mp4", frames=30, width=160, height=120)


MINI_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
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
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=24
size=1
stride=1
pad=1
activation=linear

[yolo]
mask = 3,4,5
anchors = 10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=3
num=6
ignore_thresh = .7

[route]
layers = -4

[convolutional]
filters=24
size=1
stride=1
pad=1
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=3
num=6
ignore_thresh = .7
"""


@pytest.fixture(scope="session")
def mini_model():
    """A tiny-YOLO-like network of 11 layers (heads at strides 32 and 16, 3 classes) with seeded random weights,
    fast to build and export."""
    from defi1.yolo.model import build_from_cfg

    model = build_from_cfg(MINI_CFG, class_names=["circle", "square", "triangle"])
    generator = np.random.default_rng(0)  # the same weights under every backend
    model.set_weights([generator.normal(0.0, 0.3, weight.shape).astype("float32") if "variance" not in weight.path
                       else generator.uniform(0.5, 1.5, weight.shape).astype("float32") for weight in model.weights])
    return model


@pytest.fixture(scope="session")
def mini_model_path(mini_model, tmp_path_factory):
    from defi1.files import atomic_save_model

    return atomic_save_model(mini_model, tmp_path_factory.mktemp("model") / "mini.keras")


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
