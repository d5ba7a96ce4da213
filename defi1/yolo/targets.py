"""YOLOv3 training targets: ground-truth boxes to one packed array per head.

Each ground-truth box is given to the anchor (over ALL heads) whose shape best matches the box (IoU of boxes sharing
a centre), in the grid cell that contains the box centre; with an ``assign_threshold`` below 1 (darknet's ``[yolo]
iou_thresh``, 0.213 in the YOLOv4 cfgs), also to every other anchor whose shape IoU with the box exceeds it (more
positive examples per box: faster learning, at the price of near-duplicate predictions that NMS removes). A centre
exactly on the right or bottom edge of the input goes to the last cell (the index is clamped), never out of range.

Packed target layout, per head, ``float32`` of shape ``(batch, grid_h * grid_w * A + max_boxes, 5 + C)``:

* rows ``[0, G)``, ``G = grid_h * grid_w * A`` in row-major ``(y, x, anchor)`` order (the order of
  ``head_output.reshape(batch, grid_h, grid_w, A, 5 + C)``): ``[cx, cy, w, h]`` of the assigned box in network-input
  pixels, objectness 1 (0 where no box is assigned), one-hot class;
* rows ``[G, G + max_boxes)``: every ground-truth box of the image, ``[cx, cy, w, h]`` pixels, 1 for a real box,
  0 for padding, zeros in the class columns. The loss uses these for the ignore mask, so each head sees all boxes
  of the image, not only those assigned to it.
"""

from __future__ import annotations

import numpy as np

from defi1.boxes import cxcywh_from_xyxy, wh_iou
from defi1.yolo.heads import grid_shape, head_spec, input_width_height


def encode_targets(boxes_list, class_ids_list, *, input_size, heads, max_boxes=100, assign_threshold=1.0):
    """Encode ground truth of a batch into one packed target array per head (layout in the module docstring).

    Boxes with zero width or height are dropped (they cannot be learned and would make ``log(w / anchor)``
    infinite), and so are boxes whose centre lies outside the input canvas (clip boxes in the data pipeline if
    partly visible objects should count). A centre exactly on the right or bottom edge is kept and goes to the last
    cell. When two boxes fall on the same cell and anchor,
    the later one wins (as in darknet). An image with more than ``max_boxes`` boxes lists only its first
    ``max_boxes`` in the ignore rows (all of them still get cell targets).

    Args:
        boxes_list: per image, ``(N_i, 4)`` ``[x_min, y_min, x_max, y_max]`` in pixels of the network input (after
            letterbox), any ``N_i`` including 0.
        class_ids_list: per image, ``(N_i,)`` integer class ids in ``[0, C)``.
        input_size: network input side (int) or ``(width, height)``.
        heads: list of :class:`~defi1.yolo.heads.HeadSpec` (or YoloHead layers) in output order.
        max_boxes: number of ground-truth rows appended to each head's targets.
        assign_threshold: shape IoU above which an anchor other than the best one is also responsible for a box
            (darknet's ``iou_thresh``); 1.0 (the default, YOLOv3's rule): the best anchor only.
    Returns:
        list (one per head) of ``float32`` arrays ``(batch, grid_h * grid_w * A + max_boxes, 5 + C)``.
    Raises:
        ValueError: mismatched lengths, class ids out of range, heads that disagree on ``C``.
    """
    heads = [head_spec(head) for head in heads]
    if not heads:
        raise ValueError("encode_targets needs at least one head")
    num_classes = heads[0].num_classes
    if any(head.num_classes != num_classes for head in heads):
        raise ValueError(f"heads disagree on the number of classes: {[head.num_classes for head in heads]}")
    if len(boxes_list) != len(class_ids_list):
        raise ValueError(f"{len(boxes_list)} box arrays but {len(class_ids_list)} class-id arrays")
    if int(max_boxes) < 1:
        raise ValueError(f"max_boxes must be at least 1, got {max_boxes}")
    max_boxes = int(max_boxes)
    width, height = input_width_height(input_size)
    batch_size = len(boxes_list)

    # All boxes of the batch in one array, with their image index and their rank within the image.
    boxes, class_ids, image_index = [], [], []
    for index, (image_boxes, image_class_ids) in enumerate(zip(boxes_list, class_ids_list)):
        image_boxes = np.asarray(image_boxes, dtype=np.float64).reshape(-1, 4)
        image_class_ids = np.asarray(image_class_ids).reshape(-1)
        if len(image_boxes) != len(image_class_ids):
            raise ValueError(f"image {index}: {len(image_boxes)} boxes but {len(image_class_ids)} class ids")
        boxes.append(image_boxes)
        class_ids.append(image_class_ids)
        image_index.append(np.full(len(image_boxes), index, dtype=np.int64))
    boxes = np.concatenate(boxes, axis=0) if boxes else np.zeros((0, 4))
    class_ids = np.concatenate(class_ids).astype(np.int64) if class_ids else np.zeros((0,), np.int64)
    image_index = np.concatenate(image_index) if image_index else np.zeros((0,), np.int64)
    if len(class_ids) and (class_ids.min() < 0 or class_ids.max() >= num_classes):
        raise ValueError(f"class ids must be in [0, {num_classes}), got values from {class_ids.min()} to "
                         f"{class_ids.max()}")
    centre_size = cxcywh_from_xyxy(boxes)
    valid = ((centre_size[:, 2] > 0) & (centre_size[:, 3] > 0) & (centre_size[:, 0] >= 0)
             & (centre_size[:, 0] <= width) & (centre_size[:, 1] >= 0) & (centre_size[:, 1] <= height)
             & np.all(np.isfinite(centre_size), axis=1))
    centre_size, class_ids, image_index = centre_size[valid], class_ids[valid], image_index[valid]
    rank = _rank_within_image(image_index)

    # Best anchor over all heads.
    all_anchors = np.concatenate([head.anchors for head in heads], axis=0)
    head_of_anchor = np.concatenate([np.full(head.num_anchors, position) for position, head in enumerate(heads)])
    local_anchor = np.concatenate([np.arange(head.num_anchors) for head in heads])
    shape_iou = wh_iou(centre_size[:, 2:], all_anchors).reshape(len(centre_size), len(all_anchors))
    assigned = shape_iou > float(assign_threshold)
    assigned[np.arange(len(centre_size)), np.argmax(shape_iou, axis=1)] = True  # the best anchor, always
    box_of_pair, anchor_of_pair = np.nonzero(assigned)  # ordered by box: a later box overwrites an earlier one

    one_hot = np.eye(num_classes, dtype=np.float32)[class_ids]
    outputs = []
    for position, head in enumerate(heads):
        grid_h, grid_w = grid_shape((width, height), head.stride)
        num_cells = grid_h * grid_w * head.num_anchors
        target = np.zeros((batch_size, num_cells + max_boxes, 5 + num_classes), dtype=np.float32)
        mine = box_of_pair[head_of_anchor[anchor_of_pair] == position]
        anchors_mine = anchor_of_pair[head_of_anchor[anchor_of_pair] == position]
        cell_x = np.clip(np.floor(centre_size[mine, 0] / head.stride).astype(np.int64), 0, grid_w - 1)
        cell_y = np.clip(np.floor(centre_size[mine, 1] / head.stride).astype(np.int64), 0, grid_h - 1)
        row = (cell_y * grid_w + cell_x) * head.num_anchors + local_anchor[anchors_mine]
        target[image_index[mine], row, 0:4] = centre_size[mine]
        target[image_index[mine], row, 4] = 1.0
        target[image_index[mine], row, 5:] = one_hot[mine]
        listed = rank < max_boxes
        target[image_index[listed], num_cells + rank[listed], 0:4] = centre_size[listed]
        target[image_index[listed], num_cells + rank[listed], 4] = 1.0
        outputs.append(target)
    return outputs


def _rank_within_image(image_index):
    """Position of each box among the boxes of its image (``image_index`` sorted ascending), ``(N,)`` int."""
    if len(image_index) == 0:
        return np.zeros((0,), dtype=np.int64)
    first_of_image = np.searchsorted(image_index, image_index, side="left")
    return np.arange(len(image_index)) - first_of_image


def split_targets(target, *, max_boxes=100):
    """Unpack one head's packed target ``(batch, G + max_boxes, 5 + C)`` (numpy) into ``(cells, boxes)``."""
    target = np.asarray(target)
    return target[:, :-max_boxes], target[:, -max_boxes:, :5]
