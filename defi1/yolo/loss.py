"""The YOLOv3 loss, one :class:`YoloLoss` per head (Keras applies one loss per model output). Pure ``keras.ops``.

For a head with raw output ``t = (tx, ty, tw, th, to, tc_0 ... tc_{C-1})`` per cell and anchor, and the packed
targets of :func:`defi1.yolo.targets.encode_targets`, the loss of one image is the sum of

* **centre**, responsible anchors only: ``BCE(sigmoid(tx), cx / stride - cell_x)`` (same for y), weighted by
  ``2 - w * h`` (``w, h`` of the true box divided by the input width and height: small boxes weigh up to twice as
  much as a box filling the image; darknet's rule, ``box_weighting="darknet"``) or by 1 (``"uniform"``);
* **size**, responsible anchors only: ``0.5 * (tw - log(w / anchor_w))**2`` (same for h), same weight (the 0.5 makes
  the gradient darknet's ``scale * (target - tw)``);
* or, with ``box_loss="ciou"``, **one box term** in place of centre and size, responsible anchors only, same weight:
  ``1 - CIoU`` of the decoded box (centre ``(sigmoid(tx) + cell_x) * stride``, size ``anchor_w * exp(tw)``) against
  the true one, where ``CIoU = IoU - d**2 / c**2 - alpha * v`` (``d``: distance between the centres, ``c``: diagonal
  of the smallest box enclosing both, ``v = 4 / pi**2 * (atan(w / h) - atan(w_pred / h_pred))**2`` and
  ``alpha = v / (1 - IoU + v)`` held constant; Zheng et al. 2020, what YOLOv4 and later train). It measures the
  boxes' overlap, what map50-95 grades, where darknet's terms measure the coordinates one by one;
* **objectness**: ``BCE(sigmoid(to), 1)`` on responsible anchors, ``BCE(sigmoid(to), 0)`` on the others, except those
  whose predicted box has an IoU above ``ignore_threshold`` with some ground-truth box of the same image (they are
  neither object nor background);
* **classes**: ``sum_c BCE(sigmoid(tc_c), onehot_c)`` on responsible anchors (independent logistic classifiers).

Keras then averages the per-image sums over the batch (``sum_over_batch_size``): summed and divided by batch size.
Every BCE is computed from logits as ``softplus(z) - z * y``, finite for any ``z``; the size
target uses ``log(max(w, eps))``, so empty images, zero-size boxes and logits of ±1e4 give finite losses and gradients.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from defi1.choices import BOX_LOSSES, BOX_WEIGHTINGS
from defi1.yolo.decode import anchor_rows, decode_rows, grid_offsets

_EPSILON = 1e-9
#: How the centre and size terms are weighted per box (:class:`YoloLoss`).


def binary_cross_entropy_from_logits(labels, logits):
    """Element-wise ``-y log(sigmoid(z)) - (1 - y) log(1 - sigmoid(z))``, computed stably from logits ``z``.

    ``softplus(z) - z * y`` equals it, is finite for any ``z`` (the backends' softplus never overflows) and has the
    exact gradient ``sigmoid(z) - y`` everywhere, ``z = 0`` included (``max(z, 0) + log1p(exp(-|z|))`` has a
    kink there that autodiff gets wrong).
    """
    return ops.softplus(logits) - logits * labels


@keras.saving.register_keras_serializable(package="defi1")
class YoloLoss(keras.losses.Loss):
    """YOLOv3 loss of ONE head (see the module docstring for the terms).

    Args:
        anchors: this head's anchors, ``(A, 2)`` ``[width, height]`` pixels of the network input.
        stride: input pixels per grid cell.
        num_classes: number of classes ``C``.
        ignore_threshold: IoU above which a non-responsible prediction is not penalised as background.
        max_boxes: number of ground-truth rows packed at the end of ``y_true`` (as in ``encode_targets``).
        box_weighting: weight of the centre and size terms: ``"darknet"`` (``2 - w * h``, small boxes count more) or
            ``"uniform"`` (1 for every box, large ones included).
        box_loss: ``"darknet"`` (centre cross-entropy and log-size squared error) or ``"ciou"`` (``1 - CIoU``).

    ``y_true``: ``(batch, grid_h * grid_w * A + max_boxes, 5 + C)`` packed targets (boxes ``[cx, cy, w, h]`` pixels).
    ``y_pred``: raw head output ``(batch, grid_h, grid_w, A * (5 + C))``.
    ``call`` returns the loss of each image, ``(batch,)``.
    """

    def __init__(self, anchors, stride, num_classes, ignore_threshold=0.5, max_boxes=100, box_weighting="darknet",
                 box_loss="darknet", name="yolo_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.anchors = [[float(width), float(height)] for width, height in np.asarray(anchors).reshape(-1, 2)]
        self.stride = int(stride)
        self.num_classes = int(num_classes)
        self.ignore_threshold = float(ignore_threshold)
        self.max_boxes = int(max_boxes)
        if self.max_boxes < 1:
            raise ValueError(f"max_boxes must be at least 1, got {max_boxes}")
        if box_weighting not in BOX_WEIGHTINGS:
            raise ValueError(f"box_weighting={box_weighting!r}: expected one of {', '.join(BOX_WEIGHTINGS)}")
        self.box_weighting = box_weighting
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss={box_loss!r}: expected one of {', '.join(BOX_LOSSES)}")
        self.box_loss = box_loss

    def call(self, y_true, y_pred):
        num_anchors = len(self.anchors)
        depth = 5 + self.num_classes
        stride = float(self.stride)
        y_true = ops.cast(y_true, y_pred.dtype)
        shape = ops.shape(y_pred)
        grid_h, grid_w = shape[1], shape[2]
        prediction = ops.reshape(y_pred, (shape[0], -1, depth))  # (batch, G, 5 + C), rows (y, x, anchor)
        cells = y_true[:, :-self.max_boxes, :]
        true_boxes = y_true[:, -self.max_boxes:, :5]

        # Cell corner and anchor of each row, in the (y, x, anchor) order of the reshape.
        cells_xy = grid_offsets(grid_h, grid_w, num_anchors, y_pred.dtype)  # (1, G, 2)
        grid_x, grid_y = cells_xy[..., 0], cells_xy[..., 1]
        anchors = anchor_rows(self.anchors, grid_h, grid_w, y_pred.dtype)  # (1, G, 2)
        input_w = ops.cast(grid_w, y_pred.dtype) * stride
        input_h = ops.cast(grid_h, y_pred.dtype) * stride

        responsible = cells[..., 4]
        true_xy, true_wh = cells[..., 0:2], cells[..., 2:4]
        if self.box_weighting == "darknet":
            weight = responsible * (2.0 - (true_wh[..., 0] / input_w) * (true_wh[..., 1] / input_h))
        else:
            weight = responsible

        decoded = decode_rows(prediction, self.anchors, stride, grid_h, grid_w)[0]
        if self.box_loss == "ciou":
            box_loss = 1.0 - complete_iou(decoded, cells[..., 0:4])
        else:
            # In [0, 1]; exactly 1 for a centre on the right/bottom edge (its index was clamped to the last cell).
            offset_target = ops.clip(ops.stack([true_xy[..., 0] / stride - grid_x,
                                                true_xy[..., 1] / stride - grid_y], axis=-1), 0.0, 1.0)
            centre_loss = ops.sum(binary_cross_entropy_from_logits(offset_target, prediction[..., 0:2]), axis=-1)
            size_target = ops.log(ops.maximum(true_wh, _EPSILON) / anchors)
            size_loss = 0.5 * ops.sum(ops.square(prediction[..., 2:4] - size_target), axis=-1)
            box_loss = centre_loss + size_loss

        # Ignore mask: predicted boxes (no gradient) against every ground-truth box of the image.
        predicted = ops.stop_gradient(decoded)
        best_iou = ops.max(_centre_size_iou(predicted[:, :, None, :], true_boxes[:, None, :, 0:4])
                           * true_boxes[:, None, :, 4], axis=2)
        background = (1.0 - responsible) * ops.cast(best_iou <= self.ignore_threshold, y_pred.dtype)
        objectness_logits = prediction[..., 4]
        objectness_loss = (responsible * binary_cross_entropy_from_logits(ops.ones_like(objectness_logits),
                                                                          objectness_logits)
                           + background * binary_cross_entropy_from_logits(ops.zeros_like(objectness_logits),
                                                                           objectness_logits))
        class_loss = ops.sum(binary_cross_entropy_from_logits(cells[..., 5:], prediction[..., 5:]), axis=-1)

        per_row = weight * box_loss + objectness_loss + responsible * class_loss
        return ops.sum(per_row, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(anchors=self.anchors, stride=self.stride, num_classes=self.num_classes,
                      ignore_threshold=self.ignore_threshold, max_boxes=self.max_boxes,
                      box_weighting=self.box_weighting, box_loss=self.box_loss)
        return config


def _corners(boxes):
    """``(min, max)`` corners, each ``(..., 2)`` ``[x, y]``, of ``[cx, cy, w, h]`` boxes (keras.ops)."""
    return boxes[..., 0:2] - boxes[..., 2:4] / 2.0, boxes[..., 0:2] + boxes[..., 2:4] / 2.0


def _centre_size_iou(boxes_a, boxes_b):
    """IoU of ``[cx, cy, w, h]`` boxes broadcast against each other (keras.ops); 0 where the union is 0."""
    (a_min, a_max), (b_min, b_max) = _corners(boxes_a), _corners(boxes_b)
    overlap = ops.maximum(ops.minimum(a_max, b_max) - ops.maximum(a_min, b_min), 0.0)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = boxes_a[..., 2] * boxes_a[..., 3] + boxes_b[..., 2] * boxes_b[..., 3] - intersection
    return intersection / ops.maximum(union, _EPSILON)


def complete_iou(predicted, true):
    """Complete IoU (Zheng et al. 2020) of ``[cx, cy, w, h]`` boxes, element-wise over matching leading axes
    (keras.ops): ``IoU - d**2 / c**2 - alpha * v``, in ``[-1, 1]``; 1 only for identical boxes.

    ``d``: distance between the centres; ``c``: diagonal of the smallest box enclosing both;
    ``v = 4 / pi**2 * (atan(w_true / h_true) - atan(w_pred / h_pred))**2``, the aspect-ratio mismatch, and
    ``alpha = v / (1 - IoU + v)``, held constant (no gradient), as in the paper. Finite for zero-size boxes (the
    rows of ``y_true`` without an object).
    """
    iou = _centre_size_iou(predicted, true)
    (predicted_min, predicted_max), (true_min, true_max) = _corners(predicted), _corners(true)
    enclosing = ops.maximum(predicted_max, true_max) - ops.minimum(predicted_min, true_min)
    diagonal_squared = ops.sum(ops.square(enclosing), axis=-1)
    centre_distance_squared = ops.sum(ops.square(predicted[..., 0:2] - true[..., 0:2]), axis=-1)
    aspect = (4.0 / np.pi ** 2) * ops.square(
        ops.arctan(true[..., 2] / ops.maximum(true[..., 3], _EPSILON))
        - ops.arctan(predicted[..., 2] / ops.maximum(predicted[..., 3], _EPSILON)))
    alpha = ops.stop_gradient(aspect / ops.maximum(1.0 - iou + aspect, _EPSILON))
    return iou - centre_distance_squared / ops.maximum(diagonal_squared, _EPSILON) - alpha * aspect


def yolo_losses(model, *, max_boxes=100, box_weighting="darknet", box_loss="darknet") -> list[YoloLoss]:
    """One :class:`YoloLoss` per :class:`~defi1.yolo.layers.YoloHead` of ``model``, in output order, using each
    head's anchors, stride, class count and ignore threshold (``box_weighting``, ``box_loss``: see
    :class:`YoloLoss`). Pass the list to ``model.compile(loss=...)``."""
    from defi1.yolo.layers import yolo_heads

    return [YoloLoss(anchors=head.anchors, stride=head.stride, num_classes=head.num_classes,
                     ignore_threshold=head.ignore_threshold, max_boxes=max_boxes,
                     box_weighting=box_weighting, box_loss=box_loss, name=f"yolo_loss_{head.head_index}")
            for head in yolo_heads(model)]
