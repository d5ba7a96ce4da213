"""What every stage after the network needs to know about a YOLO head, and the grid it predicts on.

A :class:`HeadSpec` holds one head's anchors, stride, class count and ignore threshold; target encoding
(:mod:`defi1.yolo.targets`), the loss, decoding (:mod:`defi1.yolo.decode`) and inference all take them.
:func:`head_specs` reads them from a model's :class:`~defi1.yolo.layers.YoloHead` layers.

A head of stride ``s`` on an input of ``width`` × ``height`` pixels predicts on a grid of ``height / s`` rows and
``width / s`` columns (:func:`grid_shape`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadSpec:
    """What target encoding, loss and decoding need to know about one YOLO head.

    Attributes:
        anchors: ``(A, 2)`` ``[width, height]`` pixels of the network input.
        stride: input pixels per grid cell (32, 16, 8).
        num_classes: number of classes ``C``.
        ignore_threshold: IoU above which a prediction is not penalised as background (0.5 YOLOv3, 0.7 tiny).
        class_names: optional ``C`` names.
    """

    anchors: np.ndarray
    stride: int
    num_classes: int
    ignore_threshold: float = 0.5
    class_names: tuple | None = None

    def __post_init__(self):
        anchors = np.asarray(self.anchors, dtype=np.float64).reshape(-1, 2)
        if len(anchors) == 0 or np.any(anchors <= 0):
            raise ValueError(f"a head needs at least one anchor of positive size, got {anchors.tolist()}")
        if int(self.stride) <= 0:
            raise ValueError(f"a head's stride must be positive, got {self.stride}")
        if int(self.num_classes) <= 0:
            raise ValueError(f"a head needs at least one class, got num_classes={self.num_classes}")
        object.__setattr__(self, "anchors", anchors)
        object.__setattr__(self, "stride", int(self.stride))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(self, "ignore_threshold", float(self.ignore_threshold))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def num_anchors(self) -> int:
        return len(self.anchors)


def head_spec(head) -> HeadSpec:
    """A :class:`HeadSpec` from a :class:`~defi1.yolo.layers.YoloHead` layer (or any object with the same fields)."""
    if isinstance(head, HeadSpec):
        return head
    return HeadSpec(anchors=np.asarray(head.anchors, dtype=np.float64), stride=head.stride,
                    num_classes=head.num_classes, ignore_threshold=getattr(head, "ignore_threshold", 0.5),
                    class_names=getattr(head, "class_names", None))


def head_specs(model) -> list[HeadSpec]:
    """The :class:`HeadSpec` of each :class:`~defi1.yolo.layers.YoloHead` of ``model``, in output order."""
    from defi1.yolo.layers import yolo_heads

    return [head_spec(head) for head in yolo_heads(model)]


def input_width_height(input_size) -> tuple[int, int]:
    """``input_size`` (an int for a square input, or ``(width, height)``) as ``(width, height)``."""
    if np.ndim(input_size) == 0:
        return int(input_size), int(input_size)
    width, height = input_size
    return int(width), int(height)


def grid_shape(input_size, stride) -> tuple[int, int]:
    """``(grid_h, grid_w)`` of a head of ``stride`` for ``input_size``; ``ValueError`` if not a multiple."""
    width, height = input_width_height(input_size)
    if width % stride or height % stride:
        raise ValueError(f"input size {width}x{height} is not a multiple of the head stride {stride}")
    return height // stride, width // stride
