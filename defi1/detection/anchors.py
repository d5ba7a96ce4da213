"""Anchors for a dataset: its box sizes at the network input, k-means anchors for them, and how well they and the
COCO defaults fit (what ``defi1 detect anchors`` prints and notebook 2 shows).

Box sizes are ``(N, 2)`` ``[width, height]`` in pixels of the square network input, each image scaled as the
letterbox scales it (:func:`defi1.boxes.letterbox_geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from defi1.boxes import letterbox_geometry
from defi1.detection.formats.loader import load_dataset
from defi1.detection.labels import load_ground_truth
from defi1.errors import DataError
from defi1.images import image_size
from defi1.yolo.anchors import (YOLOV3_ANCHORS, YOLOV3_TINY_ANCHORS, format_anchors, kmeans_anchors,
                                mean_best_iou)

#: The COCO anchors compared with a dataset's k-means anchors, at darknet's 416 × 416.
COCO_ANCHORS = {"yolov3": YOLOV3_ANCHORS, "yolov3-tiny": YOLOV3_TINY_ANCHORS}
COCO_INPUT_SIZE = 416


def dataset_box_sizes(data_yaml, *, input_size=416, split="train", skipped=None):
    """Ground-truth box sizes of a YOLO-format dataset, scaled as the letterbox scales them.

    Each image of ``width`` × ``height`` is fitted into ``input_size`` × ``input_size`` with scale
    ``min(input_size / width, input_size / height)`` (:func:`defi1.boxes.letterbox_geometry`); a normalised label
    ``w, h`` becomes ``w * width * scale, h * height * scale`` pixels.

    Args:
        data_yaml: the dataset: its YAML, or any form :func:`defi1.detection.formats.load_dataset` reads.
        input_size: side of the square network input, pixels.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (every split of the dataset).
        skipped: a list that gets ``(path, reason)`` for each image left out because it or its label file cannot
            be read (``defi1 data check`` lists those); without it, such a file raises.
    Returns:
        ``(N, 2)`` ``[width, height]`` pixels at ``input_size``.
    Raises:
        FileNotFoundError, DataError: missing files, unreadable labels (naming the file and line).
    """
    index = load_dataset(data_yaml)
    sizes = []
    for sample in index.require_samples(split):
        if sample.is_background:
            continue
        try:
            width, height = image_size(sample.image_path)
            boxes, _ = load_ground_truth(sample, (width, height), num_classes=index.num_classes or None)
        except (DataError, OSError) as error:
            if skipped is None:
                raise
            skipped.append((str(sample.image_path), str(error)))
            continue
        if len(boxes) == 0:
            continue
        scale = letterbox_geometry(width, height, input_size, input_size).scale
        sizes.append(np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) * scale)
    if not sizes:
        raise DataError(f"{data_yaml}: no labelled boxes in the {split!r} split")
    return np.concatenate(sizes, axis=0)


@dataclass
class AnchorReport:
    """k-means anchors of a dataset and how well they fit its boxes.

    Attributes:
        sizes: ``(N, 2)`` box ``[width, height]`` at ``input_size``. anchors: ``(k, 2)`` k-means anchors, by area.
        mean_iou: mean IoU of each box with its best k-means anchor.
        coco_mean_iou: the same for the COCO anchors of each architecture, scaled from 416 to ``input_size``.
        split, input_size, seed: what was clustered, at which input side, with which seed.
    """

    sizes: np.ndarray
    anchors: np.ndarray
    mean_iou: float
    split: str
    input_size: int
    seed: int
    coco_mean_iou: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as ``defi1 detect anchors`` prints it (the anchors in darknet's ``anchors =`` syntax)."""
        lines = [f"{len(self.sizes)} boxes ({self.split}) at input {self.input_size}, k = {len(self.anchors)}, "
                 f"seed {self.seed}",
                 f"anchors = {format_anchors(self.anchors)}",
                 f"mean IoU: {self.mean_iou:.4f}"]
        lines += [f"mean IoU of the {name} COCO anchors: {value:.4f}" for name, value in self.coco_mean_iou.items()]
        lines += [f"skipped {path}: {reason}" for path, reason in self.skipped]
        if self.skipped:
            lines.append(f"{len(self.skipped)} image(s) skipped (defi1 data check lists every problem)")
        return lines


def dataset_anchors(data_yaml, k, *, input_size=416, seed=0, split="train") -> AnchorReport:
    """k-means anchors (:func:`defi1.yolo.anchors.kmeans_anchors`) of a dataset's boxes at ``input_size``, with
    the mean IoU they reach and the one the COCO defaults reach on the same boxes (scaled to ``input_size``).

    Raises ``ValueError`` when the split has fewer than ``k`` boxes, and the errors of :func:`dataset_box_sizes`.
    """
    skipped = []
    sizes = dataset_box_sizes(data_yaml, input_size=input_size, split=split, skipped=skipped)
    anchors, mean_iou = kmeans_anchors(sizes, k, seed=seed)
    coco = {name: mean_best_iou(sizes, defaults * input_size / COCO_INPUT_SIZE)
            for name, defaults in COCO_ANCHORS.items()}
    return AnchorReport(sizes=sizes, anchors=anchors, mean_iou=mean_iou, split=split, input_size=int(input_size),
                        seed=int(seed), coco_mean_iou=coco, skipped=skipped)
