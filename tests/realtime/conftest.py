"""Stand-ins shared by the real-time tests: a tiny detector with the Detector interface and a drawing function."""

import time
from dataclasses import dataclass, field

import numpy as np


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
