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


def onnx_export_available() -> bool:
    """ONNX export goes through tf2onnx under TensorFlow and needs jax2onnx under JAX."""
    import importlib.util

    import keras

    return keras.backend.backend() != "jax" or importlib.util.find_spec("jax2onnx") is not None


requires_onnx_export = pytest.mark.skipif(not onnx_export_available(),
                                          reason="ONNX export under JAX needs jax2onnx (not installed)")


@pytest.fixture(scope="session")
def onnx_path(mini_model, tmp_path_factory):
    """``mini_model`` exported to ONNX."""
    from defi1.realtime.export import export_model

    return export_model(mini_model, tmp_path_factory.mktemp("onnx") / "mini.onnx", format="onnx")
