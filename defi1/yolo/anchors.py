"""YOLOv3 anchor boxes: darknet's defaults and k-means anchors for a new dataset.

(The box sizes of a dataset, and the anchor report of ``defi1 detect anchors``, are in
:mod:`defi1.detection.anchors`.)

An anchor is a ``[width, height]`` prior in pixels of the network input (darknet's units, 416 × 416 for the defaults).
Each ``[yolo]`` head uses the anchors its ``mask`` selects: YOLOv3's stride-32 head (13 × 13 at 416) takes the three
largest, the stride-8 head the three smallest.

Note on YOLOv3-tiny: the current ``yolov3-tiny.cfg`` uses ``mask = 3,4,5`` and ``mask = 0,1,2`` (the defaults here),
but the originally released ``yolov3-tiny.weights`` were trained with ``mask = 1,2,3`` for the second head. The
darknet loader therefore always takes the masks from the cfg it is given; use the cfg that goes with the weights.
"""

from __future__ import annotations

import numpy as np

from defi1.boxes import wh_iou

#: COCO anchors of ``yolov3.cfg``, ``(9, 2)`` ``[width, height]`` pixels at 416 × 416, sorted by area.
YOLOV3_ANCHORS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198],
                           [373, 326]], dtype=np.float64)
#: Anchor indices of YOLOv3's three heads, in ``[yolo]`` order (stride 32, 16, 8).
YOLOV3_MASKS = [[6, 7, 8], [3, 4, 5], [0, 1, 2]]
#: COCO anchors of ``yolov3-tiny.cfg``, ``(6, 2)`` ``[width, height]`` pixels at 416 × 416.
YOLOV3_TINY_ANCHORS = np.array([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], dtype=np.float64)
#: Anchor indices of YOLOv3-tiny's two heads (stride 32, 16) as in the current ``yolov3-tiny.cfg``.
YOLOV3_TINY_MASKS = [[3, 4, 5], [0, 1, 2]]


def kmeans_anchors(sizes, k, *, seed=0, max_iterations=300, restarts=5):
    """Cluster box sizes into ``k`` anchors with k-means under the distance ``1 - IoU`` (YOLOv2/v3's recipe).

    IoU here is between boxes sharing one centre (:func:`defi1.boxes.wh_iou`), so large and small boxes are
    compared by shape and scale, not by absolute pixel differences. Initialisation is k-means++ with that distance;
    centroids are the mean size of their cluster; the best of ``restarts`` seeded runs (highest mean IoU) is kept.

    Args:
        sizes: ``(N, 2)`` ``[width, height]`` of the ground-truth boxes, in pixels of the network input (boxes
            scaled as the letterbox scales them). Boxes with a non-positive side are ignored.
        k: number of anchors (9 for YOLOv3, 6 for tiny).
        seed: random seed; the same sizes and seed give the same anchors.
        max_iterations: iteration limit of each run (runs stop earlier once assignments no longer change).
        restarts: number of independent initialisations.
    Returns:
        ``(anchors, mean_iou)``: anchors ``(k, 2)`` ``[width, height]`` pixels sorted by increasing area, and the mean
        over boxes of the IoU with their best anchor.
    Raises:
        ValueError: ``sizes`` is not ``(N, 2)``, or has fewer than ``k`` boxes of positive size.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 2 or sizes.shape[1] != 2:
        raise ValueError(f"expected box sizes of shape (N, 2) [width, height], got shape {sizes.shape}")
    k = int(k)
    if k < 1:
        raise ValueError(f"the number of anchors k must be at least 1, got {k}")
    sizes = sizes[np.all(np.isfinite(sizes), axis=1) & np.all(sizes > 0, axis=1)]
    if len(sizes) < k:
        raise ValueError(f"k-means needs at least k={k} boxes of positive size, got {len(sizes)}")
    generator = np.random.default_rng(seed)
    best_anchors, best_iou = None, -1.0
    for _ in range(max(1, int(restarts))):
        anchors = _kmeans_run(sizes, k, generator, max_iterations)
        mean_iou = mean_best_iou(sizes, anchors)
        if mean_iou > best_iou:
            best_anchors, best_iou = anchors, mean_iou
    order = np.argsort(best_anchors[:, 0] * best_anchors[:, 1], kind="stable")
    return best_anchors[order], best_iou


def mean_best_iou(sizes, anchors) -> float:
    """Mean over boxes of the IoU of each box with its best-fitting anchor (shapes compared on a shared centre,
    :func:`defi1.boxes.wh_iou`): how well ``anchors`` ``(k, 2)`` cover box sizes ``(N, 2)``, both ``[width, height]``
    in the same pixels."""
    return float(np.mean(np.max(wh_iou(sizes, anchors), axis=1)))


def _kmeans_plus_plus(sizes, k, generator):
    """k-means++ seeding under ``1 - IoU``: each new centre is drawn with probability proportional to its distance."""
    centres = [sizes[generator.integers(len(sizes))]]
    for _ in range(1, k):
        distance = 1.0 - np.max(wh_iou(sizes, np.array(centres)), axis=1)
        total = distance.sum()
        if total <= 0:  # every box coincides with a centre already: pick any box not yet chosen
            index = generator.integers(len(sizes))
        else:
            index = generator.choice(len(sizes), p=distance / total)
        centres.append(sizes[index])
    return np.array(centres, dtype=np.float64)


def _kmeans_run(sizes, k, generator, max_iterations):
    anchors = _kmeans_plus_plus(sizes, k, generator)
    assignment = None
    for _ in range(int(max_iterations)):
        iou = wh_iou(sizes, anchors)
        new_assignment = np.argmax(iou, axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        counts = np.bincount(assignment, minlength=k)
        sums = np.zeros((k, 2))
        np.add.at(sums, assignment, sizes)
        empty = counts == 0
        anchors = np.where(empty[:, None], anchors, sums / np.maximum(counts, 1)[:, None])
        if np.any(empty):
            # An empty cluster restarts on the boxes that fit their anchor worst.
            worst = np.argsort(np.max(iou, axis=1), kind="stable")[:int(empty.sum())]
            anchors[empty] = sizes[worst]
            assignment = None
    return anchors


def format_anchors(anchors) -> str:
    """Anchors in darknet's ``anchors =`` syntax, e.g. ``10,13,  16,30`` (rounded to whole pixels)."""
    return ",  ".join(f"{int(round(width))},{int(round(height))}" for width, height in np.asarray(anchors))
