"""Fixtures of the detection tests: a narrow tiny-YOLOv3 cfg and a small shapes dataset to train it on."""

import re
from pathlib import Path

import pytest

from defi1.detection.labels import write_dataset_yaml
from defi1.detection.shapes import ShapesSettings, generate_shapes_dataset
from defi1.yolo.architectures import yolov3_tiny_cfg

SHAPE_NAMES = ["circle", "square", "triangle", "star", "cross"]


def narrow_tiny_cfg(path, *, num_classes=5, input_size=64, divisor=8, anchors=None, batch_normalize=True):
    """tiny-YOLOv3's cfg with every layer ``divisor`` times narrower (fast tests), written to ``path``."""
    text = yolov3_tiny_cfg(num_classes=num_classes, input_size=input_size, anchors=anchors)
    widths = (16, 32, 64, 128, 256, 512, 1024)
    text = re.sub(r"filters=(\d+)",
                  lambda match: f"filters={int(match.group(1)) // divisor}" if int(match.group(1)) in widths
                  else match.group(0), text)
    if not batch_normalize:
        text = text.replace("batch_normalize=1", "batch_normalize=0")
    Path(path).write_text(text)
    return Path(path)


def shapes_dataset(folder, *, num_images, image_size, seed=3):
    """A shapes dataset whose validation split is its training split (for overfitting and exact comparisons)."""
    data_yaml = generate_shapes_dataset(folder, num_images=num_images, num_val=1, seed=seed, image_size=image_size,
                                        settings=ShapesSettings(image_size=image_size, min_objects=1, max_objects=3,
                                                                min_size=0.15, max_size=0.45,
                                                                background_probability=0.0))
    write_dataset_yaml(data_yaml, names=SHAPE_NAMES, train="images/train", val="images/train")
    return data_yaml


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("training")
    data_yaml = shapes_dataset(folder / "shapes", num_images=4, image_size=64)
    cfg = narrow_tiny_cfg(folder / "narrow.cfg")
    return folder, data_yaml, cfg
