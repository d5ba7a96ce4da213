"""Box operations shared by every part of defi1: one intersection and IoU, one NMS, one letterbox.

Formats (always stated by the callers' docstrings too):

* ``xyxy``: ``[x_min, y_min, x_max, y_max]`` in pixels, ``x`` to the right, ``y`` down; a box covering pixel columns
  6..293 of a 300-wide image has ``x_min = 6`` and ``x_max = 293`` (continuous coordinates, area ``(x_max - x_min) *
  (y_max - y_min)``, as darknet, VOC-converted YOLO labels and pycocotools use).
* ``cxcywh``: ``[center_x, center_y, width, height]``, in pixels or normalised to ``[0, 1]`` by the image size (the
  YOLO label format).

Arrays are NumPy, shape ``(num_boxes, 4)``, ``float``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LETTERBOX_FILL = 128  # darknet pads with 0.5 grey


def xyxy_from_cxcywh(boxes) -> np.ndarray:
    """``(N, 4)`` ``[cx, cy, w, h]`` to ``(N, 4)`` ``[x_min, y_min, x_max, y_max]`` (same units)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    half = boxes[:, 2:] / 2.0
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def cxcywh_from_xyxy(boxes) -> np.ndarray:
    """``(N, 4)`` ``[x_min, y_min, x_max, y_max]`` to ``(N, 4)`` ``[cx, cy, w, h]`` (same units)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + size / 2.0, size], axis=1)


def box_area(boxes) -> np.ndarray:
    """Areas of ``(N, 4)`` xyxy boxes, shape ``(N,)``; inverted boxes have area 0."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_intersection(boxes_a, boxes_b) -> np.ndarray:
    """Pairwise intersection areas of xyxy boxes.

    Args:
        boxes_a: ``(N, 4)`` xyxy. boxes_b: ``(M, 4)`` xyxy (same units).
    Returns:
        ``(N, M)`` areas of the overlaps (0 for boxes that do not overlap).
    """
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    return _intersection(boxes_a[:, None, :], boxes_b[None, :, :])


def _intersection(boxes_a, boxes_b):
    """Intersection areas of xyxy float arrays broadcast against each other (``(..., 4)`` -> ``(...)``)."""
    top_left = np.maximum(boxes_a[..., :2], boxes_b[..., :2])
    bottom_right = np.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    return np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)


def _iou_from_areas(intersection, areas_a, areas_b):
    union = areas_a + areas_b - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Pairwise intersection over union of xyxy boxes.

    Args:
        boxes_a: ``(N, 4)`` xyxy. boxes_b: ``(M, 4)`` xyxy (same units).
    Returns:
        ``(N, M)`` IoU in ``[0, 1]``; 0 where both boxes have zero area.
    """
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    return _iou_from_areas(box_intersection(boxes_a, boxes_b), box_area(boxes_a)[:, None], box_area(boxes_b)[None, :])


def overlaps_too_much(box, earlier_boxes, *, max_iou, max_hidden_fraction=0.5) -> bool:
    """The placement rule of the synthetic datasets: True when ``box`` overlaps one of ``earlier_boxes`` with an IoU
    above ``max_iou``, or would hide more than ``max_hidden_fraction`` of one (a large object drawn over a small one).

    Args:
        box: ``(4,)`` xyxy pixels. earlier_boxes: ``(N, 4)`` xyxy pixels (``N`` may be 0: nothing to overlap).
    """
    earlier_boxes = np.asarray(earlier_boxes, dtype=np.float64).reshape(-1, 4)
    if len(earlier_boxes) == 0:
        return False
    intersection = box_intersection(box, earlier_boxes)[0]
    earlier_areas = box_area(earlier_boxes)
    iou = _iou_from_areas(intersection, box_area(box)[0], earlier_areas)
    return bool(iou.max() > max_iou or np.any(intersection > max_hidden_fraction * earlier_areas))


def duplicate_boxes(boxes, class_ids, *, min_iou) -> list[tuple[int, int, float]]:
    """Boxes that repeat an earlier box of the same class: ``(index, earlier index, IoU)`` for each box whose IoU
    with an earlier box of its class is at least ``min_iou`` (the first such earlier box), in index order.

    Args:
        boxes: ``(N, 4)`` xyxy (any units; IoU does not change when both axes are scaled). class_ids: ``(N,)``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids).reshape(-1)
    iou = np.tril(box_iou(boxes, boxes), k=-1) * (class_ids[:, None] == class_ids[None, :])
    found = []
    for index in np.flatnonzero(np.any(iou >= min_iou, axis=1)):
        earlier = int(np.argmax(iou[index] >= min_iou))
        found.append((int(index), earlier, float(iou[index, earlier])))
    return found


def wh_iou(sizes_a, sizes_b) -> np.ndarray:
    """IoU of boxes that share one centre (anchor matching, k-means): ``(N, 2)`` and ``(M, 2)`` ``[w, h]`` to ``(N, M)``."""
    sizes_a = np.asarray(sizes_a, dtype=np.float64).reshape(-1, 2)
    sizes_b = np.asarray(sizes_b, dtype=np.float64).reshape(-1, 2)
    intersection = np.minimum(sizes_a[:, None, 0], sizes_b[None, :, 0]) * np.minimum(sizes_a[:, None, 1],
                                                                                       sizes_b[None, :, 1])
    union = (sizes_a[:, 0] * sizes_a[:, 1])[:, None] + (sizes_b[:, 0] * sizes_b[:, 1])[None, :] - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def clip_boxes(boxes, width, height) -> np.ndarray:
    """Clip ``(N, 4)`` xyxy pixel boxes to an image of ``width`` × ``height``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    return boxes


def non_max_suppression(boxes, scores, iou_threshold=0.45, class_ids=None, max_detections=None, *,
                        implementation: str = "auto") -> np.ndarray:
    """Greedy non-maximum suppression, per class when ``class_ids`` is given.

    Args:
        boxes: ``(N, 4)`` xyxy. scores: ``(N,)``. class_ids: ``(N,)`` ints or ``None`` (class-agnostic).
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box of its class exceeds this.
        max_detections: keep at most this many (highest scores first).
        implementation: ``"numpy"`` (this module's, the reference), ``"opencv"`` (``cv2.dnn.NMSBoxesBatched`` /
            ``NMSBoxes``: the same algorithm in C++, about 16 times faster on 300 boxes) or ``"auto"`` (OpenCV's
            when this OpenCV has it, else NumPy's). Both give the same indices (tests/test_boxes.py).
    Returns:
        indices of the kept boxes, ``(K,)`` int64, by decreasing score (ties: input order).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) == 0 or (max_detections is not None and max_detections <= 0):
        return np.zeros((0,), dtype=np.int64)
    if implementation not in ("auto", "numpy", "opencv"):
        raise ValueError(f"NMS implementation {implementation!r}: expected auto, numpy or opencv")
    if implementation != "numpy":
        kept = _opencv_nms(boxes, scores, iou_threshold, class_ids, max_detections)
        if kept is not None:
            return kept
        if implementation == "opencv":
            raise ValueError("this OpenCV has no cv2.dnn.NMSBoxesBatched (OpenCV 4.7 or newer has it)")
    if class_ids is None:
        kept = _greedy_nms(boxes, scores, iou_threshold, max_detections)
    else:
        class_ids = np.asarray(class_ids).reshape(-1)
        kept = np.concatenate([members[_greedy_nms(boxes[members], scores[members], iou_threshold, max_detections)]
                               for members in (np.flatnonzero(class_ids == value) for value in np.unique(class_ids))])
        kept = kept[np.lexsort((kept, -scores[kept]))]  # by decreasing score, ties by input order
        if max_detections is not None:
            kept = kept[:max_detections]
    return kept.astype(np.int64)


def _opencv_nms(boxes, scores, iou_threshold, class_ids, max_detections):
    """:func:`non_max_suppression` with OpenCV's DNN module; ``None`` when this OpenCV lacks it."""
    import cv2  # imported here: defi1.boxes stays light for the command line's start-up

    dnn = getattr(cv2, "dnn", None)
    function = getattr(dnn, "NMSBoxes" if class_ids is None else "NMSBoxesBatched", None)
    rectangles = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])  # (x, y, width, height)
    if function is None or not np.isfinite(boxes).all() or not scores.min() > 0 or not rectangles[:, 2:].min() > 0:
        return None  # OpenCV needs a threshold >= 0 (keeps the scores above it); empty boxes: IoU 0/0 differs
    arguments = [rectangles, scores.astype(np.float32)]
    if class_ids is not None:
        arguments.append(np.asarray(class_ids).reshape(-1).astype(np.int32))
    # Score threshold 0 (every score is above), eta 1 (plain greedy NMS); OpenCV's top_k would cut the candidates
    # before NMS, not the kept boxes, so the result is cut here.
    kept = np.asarray(function(*arguments, 0.0, float(iou_threshold)), dtype=np.int64).reshape(-1)
    return kept[:max_detections] if max_detections is not None else kept


def _greedy_nms(boxes, scores, iou_threshold, max_detections):
    """Class-agnostic greedy NMS; indices into ``boxes`` by decreasing score. One IoU row per kept box (memory O(N),
    not an N x N matrix: mAP evaluation feeds thousands of candidates)."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    areas = box_area(boxes)
    suppressed = np.zeros(len(boxes), dtype=bool)
    kept = []
    for position in range(len(boxes)):
        if suppressed[position]:
            continue
        kept.append(position)
        if max_detections is not None and len(kept) >= max_detections:
            break
        intersection = _intersection(boxes[position], boxes[position + 1:])
        iou = _iou_from_areas(intersection, areas[position], areas[position + 1:])
        suppressed[position + 1:] |= iou > iou_threshold
    return order[np.asarray(kept, dtype=np.int64)]


@dataclass(frozen=True)
class Letterbox:
    """How an image was letterboxed: scaled by ``scale`` (same on both axes), then placed at ``(pad_x, pad_y)``.

    ``resized_width = round(width * scale)``, ``resized_height = round(height * scale)``; the inverse maps network
    pixels back with ``(x - pad_x) / scale``.
    """

    scale: float
    pad_x: int
    pad_y: int
    resized_width: int
    resized_height: int
    target_width: int
    target_height: int

    def to_network(self, boxes) -> np.ndarray:
        """``(N, 4)`` xyxy boxes in original-image pixels to network-input pixels."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return boxes * self.scale + offset

    def to_image(self, boxes) -> np.ndarray:
        """``(N, 4)`` xyxy boxes in network-input pixels to original-image pixels (exact inverse of :meth:`to_network`)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return (boxes - offset) / self.scale


def letterbox_geometry(width, height, target_width, target_height=None) -> Letterbox:
    """The aspect-preserving fit of a ``width`` × ``height`` image into ``target_width`` × ``target_height``.

    One rounding rule: resized sides are ``round(side * scale)`` (at least 1), padding is split with the extra pixel
    on the right/bottom (``pad = (target - resized) // 2``).
    """
    target_height = target_width if target_height is None else target_height
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot letterbox an image of size {width}x{height}")
    scale = min(target_width / width, target_height / height)
    resized_width = max(1, min(target_width, int(round(width * scale))))
    resized_height = max(1, min(target_height, int(round(height * scale))))
    return Letterbox(scale=scale, pad_x=(target_width - resized_width) // 2, pad_y=(target_height - resized_height) // 2,
                     resized_width=resized_width, resized_height=resized_height, target_width=int(target_width),
                     target_height=int(target_height))


def letterbox_image(image, target_width, target_height=None, fill=LETTERBOX_FILL):
    """Resize an ``(H, W, 3)`` ``uint8`` image into ``target_width`` × ``target_height`` keeping its aspect ratio,
    padding with grey ``fill`` (resized by :func:`defi1.images.resize_image`: bilinear, area averaging for reductions
    by 2 or more). Returns ``(letterboxed (target_height, target_width, 3) uint8, Letterbox)``.
    """
    from defi1.images import resize_image

    image = np.asarray(image)
    height, width = image.shape[:2]
    geometry = letterbox_geometry(width, height, target_width, target_height)
    resized = resize_image(image, geometry.resized_width, geometry.resized_height)
    canvas = np.full((geometry.target_height, geometry.target_width, image.shape[2]), fill, dtype=image.dtype)
    canvas[geometry.pad_y:geometry.pad_y + geometry.resized_height,
           geometry.pad_x:geometry.pad_x + geometry.resized_width] = resized
    return canvas, geometry
