"""From raw YOLO head outputs to detections: decoding (``keras.ops``, compiled with the network by
:meth:`defi1.yolo.inference.CompiledForward.detect`; :func:`decode_heads_numpy`, the same in NumPy, for engines that
return raw heads such as ONNX Runtime), then thresholds, per-class NMS and the letterbox undone (NumPy, per image).

For a cell ``(cell_x, cell_y)`` of a head with stride ``s`` and an anchor ``(anchor_w, anchor_h)``:

* ``center_x = (sigmoid(tx) + cell_x) * s``, ``center_y = (sigmoid(ty) + cell_y) * s``;
* ``width = anchor_w * exp(tw)``, ``height = anchor_h * exp(th)`` (``tw, th`` clipped at ``log(1000)`` so that
  ``exp`` never overflows);
* objectness ``sigmoid(to)``, class probabilities ``sigmoid(tc)`` (independent logistic classifiers, as YOLOv3);
* score of a class = objectness × class probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from keras import ops

from defi1.boxes import clip_boxes, non_max_suppression
from defi1.yolo.heads import head_spec, input_width_height

#: Exponent limit for ``exp(tw)``: a predicted box is at most 1000 anchors wide.
MAX_LOG_SCALE = float(np.log(1000.0))


def grid_offsets(grid_height, grid_width, num_anchors, dtype="float32"):
    """Cell corner ``[cell_x, cell_y]`` of every row of a head reshaped to ``(batch, grid_h * grid_w * A, 5 + C)``
    (row-major ``(y, x, anchor)`` order), as a ``keras.ops`` tensor of shape ``(1, grid_h * grid_w * A, 2)``."""
    grid_x, grid_y = ops.meshgrid(ops.arange(grid_width, dtype=dtype), ops.arange(grid_height, dtype=dtype))
    cells = ops.stack([ops.reshape(grid_x, (-1,)), ops.reshape(grid_y, (-1,))], axis=-1)  # (grid_h * grid_w, 2)
    return ops.reshape(ops.repeat(cells[:, None, :], num_anchors, axis=1), (1, -1, 2))


def anchor_rows(anchors, grid_height, grid_width, dtype="float32"):
    """Anchor ``[width, height]`` of every row, ``(1, grid_h * grid_w * A, 2)`` (same order as :func:`grid_offsets`)."""
    anchors = ops.convert_to_tensor(np.asarray(anchors, dtype=np.float32).reshape(-1, 2), dtype=dtype)
    return ops.tile(anchors, (grid_height * grid_width, 1))[None]


def decode_head(raw, anchors, stride):
    """Decode ONE head.

    Args:
        raw: ``(batch, grid_h, grid_w, A * (5 + C))`` raw logits.
        anchors: ``(A, 2)`` ``[width, height]`` pixels of the network input. stride: pixels per cell.
    Returns:
        ``(centre_size, objectness_logits, class_logits)``: ``(batch, G, 4)`` ``[cx, cy, w, h]`` network pixels,
        ``(batch, G)``, ``(batch, G, C)``, with ``G = grid_h * grid_w * A`` rows in ``(y, x, anchor)`` order.
    """
    num_anchors = len(np.asarray(anchors).reshape(-1, 2))
    shape = ops.shape(raw)
    rows = ops.reshape(raw, (shape[0], -1, shape[3] // num_anchors))
    return decode_rows(rows, anchors, stride, shape[1], shape[2])


def decode_rows(rows, anchors, stride, grid_height, grid_width):
    """:func:`decode_head` on a head already reshaped to rows ``(batch, G, 5 + C)`` (``(y, x, anchor)`` order) of
    a ``grid_height`` × ``grid_width`` grid: the one place where raw logits become boxes (the loss decodes its
    predictions here too, for the ignore mask). Returns ``(centre_size, objectness_logits, class_logits)``."""
    num_anchors = len(np.asarray(anchors).reshape(-1, 2))
    centre = (ops.sigmoid(rows[..., 0:2]) + grid_offsets(grid_height, grid_width, num_anchors, rows.dtype)) * stride
    size = anchor_rows(anchors, grid_height, grid_width, rows.dtype) * ops.exp(ops.minimum(rows[..., 2:4],
                                                                                            MAX_LOG_SCALE))
    return ops.concatenate([centre, size], axis=-1), rows[..., 4], rows[..., 5:]


def decode_heads(head_outputs, heads, *, input_size=None):
    """Decode every head of a YOLO model and concatenate their predictions (``keras.ops``; works on batches).

    Args:
        head_outputs: list of raw head arrays, ``(batch, grid_h, grid_w, A * (5 + C))``, in the model's output order.
        heads: list of :class:`~defi1.yolo.heads.HeadSpec` or YoloHead layers (anchors, stride), same order.
        input_size: network input (int side, or ``(width, height)``) the outputs were computed for; when given,
            each head's grid is checked against it (``ValueError`` on a mismatch).
    Returns:
        ``(boxes, objectness, class_probabilities)``: ``(batch, N, 4)`` ``[x_min, y_min, x_max, y_max]`` pixels of the
        network input, ``(batch, N)`` and ``(batch, N, C)`` in ``[0, 1]``; ``N`` is the sum of ``grid_h * grid_w * A``
        over the heads (10647 for YOLOv3 at 416).
    """
    if len(head_outputs) != len(heads):
        raise ValueError(f"{len(head_outputs)} head outputs for {len(heads)} heads")
    boxes, objectness, classes = [], [], []
    for raw, head in zip(head_outputs, heads):
        head = head_spec(head)
        raw = ops.convert_to_tensor(raw)
        if input_size is not None:
            width, height = input_width_height(input_size)
            static = tuple(raw.shape[1:3])
            if None not in static and static != (height // head.stride, width // head.stride):
                raise ValueError(f"head of stride {head.stride} has a {static[0]}x{static[1]} grid, expected "
                                 f"{height // head.stride}x{width // head.stride} for a {width}x{height} input")
        if raw.shape[-1] is not None and raw.shape[-1] != head.num_anchors * (5 + head.num_classes):
            raise ValueError(f"head of stride {head.stride} has {raw.shape[-1]} channels, expected "
                             f"{head.num_anchors} anchors x (5 + {head.num_classes} classes)")
        centre_size, objectness_logits, class_logits = decode_head(raw, head.anchors, head.stride)
        half = centre_size[..., 2:4] / 2.0
        boxes.append(ops.concatenate([centre_size[..., 0:2] - half, centre_size[..., 0:2] + half], axis=-1))
        objectness.append(ops.sigmoid(objectness_logits))
        classes.append(ops.sigmoid(class_logits))
    return ops.concatenate(boxes, axis=1), ops.concatenate(objectness, axis=1), ops.concatenate(classes, axis=1)


_GRID_CACHE: dict = {}


def _numpy_grid(grid_height, grid_width, anchors, stride):
    """Cached ``(G, 2)`` cell corners times ``stride`` and ``(G, 2)`` anchor sizes, ``(y, x, anchor)`` row order."""
    key = (grid_height, grid_width, stride, anchors.tobytes())
    grid = _GRID_CACHE.get(key)
    if grid is None:
        num_anchors = len(anchors)
        cell_y, cell_x = np.meshgrid(np.arange(grid_height), np.arange(grid_width), indexing="ij")
        cells = np.repeat(np.stack([cell_x.ravel(), cell_y.ravel()], axis=-1), num_anchors, axis=0)
        grid = ((cells * stride).astype(np.float32), np.tile(anchors, (grid_height * grid_width, 1)).astype(np.float32))
        if len(_GRID_CACHE) > 64:
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid


def _sigmoid(values):
    """Logistic function in float32 without overflow warnings (``exp`` of a large logit gives ``inf``, then 0)."""
    with np.errstate(over="ignore"):
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-values))


def decode_heads_numpy(head_outputs, heads, *, input_size=None, min_objectness=None):
    """:func:`decode_heads` in NumPy, for raw head arrays already on the host (ONNX Runtime, exported models).

    Same arguments and the same results (float32 numpy arrays): ``(boxes (batch, N, 4)`` xyxy network pixels,
    ``objectness (batch, N)``, ``class_probabilities (batch, N, C))``, heads concatenated in order, rows in
    ``(y, x, anchor)`` order. The cell grids are cached per shape, so a stream pays only for the arithmetic.

    ``min_objectness``: decode only the rows whose objectness is above it in at least one image of the batch (the
    others are left out, ``N`` is then their number). A score is objectness × class probability, so
    :func:`postprocess` with ``conf_threshold >= min_objectness`` gives the same detections, for a fraction of the
    decoding (a tiny-YOLOv3 at 416 has 2,535 rows of 85 values; a few dozen pass 0.25).
    """
    if len(head_outputs) != len(heads):
        raise ValueError(f"{len(head_outputs)} head outputs for {len(heads)} heads")
    boxes, objectness, classes = [], [], []
    for raw, head in zip(head_outputs, heads):
        head = head_spec(head)
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim != 4:
            raise ValueError(f"head of stride {head.stride}: expected (batch, grid_h, grid_w, channels), got shape "
                             f"{raw.shape}")
        batch, grid_height, grid_width, channels = raw.shape
        if input_size is not None:
            width, height = input_width_height(input_size)
            if (grid_height, grid_width) != (height // head.stride, width // head.stride):
                raise ValueError(f"head of stride {head.stride} has a {grid_height}x{grid_width} grid, expected "
                                 f"{height // head.stride}x{width // head.stride} for a {width}x{height} input")
        if channels != head.num_anchors * (5 + head.num_classes):
            raise ValueError(f"head of stride {head.stride} has {channels} channels, expected "
                             f"{head.num_anchors} anchors x (5 + {head.num_classes} classes)")
        rows = raw.reshape(batch, -1, 5 + head.num_classes)
        corners, anchors = _numpy_grid(grid_height, grid_width, head.anchors, head.stride)
        head_objectness = _sigmoid(rows[..., 4])
        if min_objectness is not None:
            kept = np.flatnonzero((head_objectness > min_objectness).any(axis=0))
            rows, corners, anchors, head_objectness = (rows[:, kept], corners[kept], anchors[kept],
                                                       head_objectness[:, kept])
        centre = _sigmoid(rows[..., 0:2]) * np.float32(head.stride) + corners
        half = anchors * np.exp(np.minimum(rows[..., 2:4], np.float32(MAX_LOG_SCALE))) / np.float32(2.0)
        boxes.append(np.concatenate([centre - half, centre + half], axis=-1))
        objectness.append(head_objectness)
        classes.append(_sigmoid(rows[..., 5:]))
    return np.concatenate(boxes, axis=1), np.concatenate(objectness, axis=1), np.concatenate(classes, axis=1)


@dataclass
class Detection:
    """The detections of one image.

    Attributes:
        boxes: ``(K, 4)`` float ``[x_min, y_min, x_max, y_max]`` in pixels of the original image.
        scores: ``(K,)`` objectness × class probability, decreasing.
        class_ids: ``(K,)`` int class indices.
        class_names: ``K`` names, ``class_names[i]`` the name of detection ``i`` (the id as text when the model has
            no names).
        image_size: ``(width, height)`` of the original image (``None`` when unknown).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list = field(default_factory=list)
    image_size: tuple | None = None

    def __len__(self):
        return len(self.scores)

    @classmethod
    def empty(cls, image_size=None):
        return cls(boxes=np.zeros((0, 4)), scores=np.zeros((0,)), class_ids=np.zeros((0,), np.int64),
                   class_names=[], image_size=image_size)


def postprocess(boxes, objectness, class_probabilities, *, letterboxes=None, image_sizes=None, conf_threshold=0.25,
                iou_threshold=0.45, max_detections=100, class_names=None, multi_label=False,
                max_candidates=3000):
    """Per-image detections from decoded predictions: score threshold, per-class NMS, letterbox undone.

    Args:
        boxes: ``(batch, N, 4)`` xyxy network-input pixels (from :func:`decode_heads`; tensors or arrays).
        objectness: ``(batch, N)``. class_probabilities: ``(batch, N, C)``.
        letterboxes: per image, the :class:`defi1.boxes.Letterbox` that made its network input; boxes are mapped back
            with ``Letterbox.to_image``. ``None``: boxes stay in network pixels.
        image_sizes: per image, ``(width, height)`` of the original image: boxes are clipped to it (those left
            with no area, i.e. entirely in the letterbox padding, are dropped) and it is recorded in
            :attr:`Detection.image_size`.
        conf_threshold: keep predictions whose score (objectness × class probability) is above this.
        iou_threshold: NMS threshold, per class.
        max_detections: at most this many detections per image (highest scores).
        class_names: ``C`` names for :attr:`Detection.class_names`.
        multi_label: score every class above the threshold (darknet, best for mAP); default the best class only.
        max_candidates: at most this many highest-scoring candidates enter NMS (bounds its cost at low thresholds).
    Returns:
        list of :class:`Detection`, one per image.
    """
    boxes, objectness, class_probabilities = (
        values if isinstance(values, np.ndarray) else np.asarray(ops.convert_to_numpy(values))
        for values in (boxes, objectness, class_probabilities))
    if letterboxes is not None and len(letterboxes) != len(boxes):
        raise ValueError(f"{len(letterboxes)} letterboxes for a batch of {len(boxes)} images")
    if image_sizes is not None and len(image_sizes) != len(boxes):
        raise ValueError(f"{len(image_sizes)} image sizes for a batch of {len(boxes)} images")
    detections = []
    for index in range(len(boxes)):
        # A score never exceeds its objectness: predictions below the threshold are dropped before scoring.
        rows = np.flatnonzero(objectness[index] > conf_threshold)
        # Only the surviving rows are converted to float64 (scores, boxes): cheap whatever the number of rows.
        scores = (objectness[index, rows, None].astype(np.float64)
                  * class_probabilities[index, rows].astype(np.float64))  # (rows, C)
        if multi_label:
            candidate, class_ids = np.nonzero(scores > conf_threshold)
        else:
            class_ids = np.argmax(scores, axis=1)
            candidate = np.flatnonzero(scores[np.arange(len(scores)), class_ids] > conf_threshold)
            class_ids = class_ids[candidate]
        candidate_scores = scores[candidate, class_ids]
        candidate = rows[candidate]
        if len(candidate_scores) > max_candidates:
            top = np.argpartition(-candidate_scores, max_candidates - 1)[:max_candidates]
            candidate, class_ids, candidate_scores = candidate[top], class_ids[top], candidate_scores[top]
        candidate_boxes = boxes[index, candidate].astype(np.float64)
        if letterboxes is not None and letterboxes[index] is not None:
            candidate_boxes = letterboxes[index].to_image(candidate_boxes)
        image_size = None
        if image_sizes is not None and image_sizes[index] is not None:
            image_size = (int(image_sizes[index][0]), int(image_sizes[index][1]))
            candidate_boxes = clip_boxes(candidate_boxes, *image_size)
            # Boxes that lie entirely in the letterbox padding have nothing left of them in the image.
            inside = (candidate_boxes[:, 2] > candidate_boxes[:, 0]) & (candidate_boxes[:, 3] > candidate_boxes[:, 1])
            candidate, class_ids = candidate[inside], class_ids[inside]
            candidate_boxes, candidate_scores = candidate_boxes[inside], candidate_scores[inside]
        kept = non_max_suppression(candidate_boxes, candidate_scores, iou_threshold, class_ids=class_ids,
                                   max_detections=max_detections)
        kept_ids = class_ids[kept].astype(np.int64)
        names = [class_names[class_id] if class_names is not None and class_id < len(class_names) else str(class_id)
                 for class_id in kept_ids]
        detections.append(Detection(boxes=candidate_boxes[kept], scores=candidate_scores[kept], class_ids=kept_ids,
                                    class_names=names, image_size=image_size))
    return detections
