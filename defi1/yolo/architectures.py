"""The YOLOv3 family as darknet cfg text, generated in code (no file read at run time).

:func:`yolov3_cfg`, :func:`yolov3_tiny_cfg` and :func:`yolov3_spp_cfg` write the network definitions of darknet's
``yolov3.cfg``, ``yolov3-tiny.cfg`` and ``yolov3-spp.cfg`` (the darknet cfgs are public-domain data; the tests check
that these generators give the same layers as the files) for any class count, anchors and input size. The
``[net]`` section holds only ``width``, ``height`` and ``channels``: darknet's training settings do not apply to
Keras training.

Anchors are ``[width, height]`` in pixels of the network input, as in darknet; masks list, per ``[yolo]`` section
in cfg order, the anchor indices that head predicts (YOLOv3: ``[[6, 7, 8], [3, 4, 5], [0, 1, 2]]``, largest anchors
on the coarsest grid).
"""

from __future__ import annotations

import numpy as np

from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_MASKS, YOLOV3_TINY_ANCHORS, YOLOV3_TINY_MASKS

#: Residual blocks per stage of Darknet-53 (stage outputs 64, 128, 256, 512, 1024 channels).
DARKNET53_BLOCKS = (1, 2, 8, 8, 4)


class _CfgWriter:
    """Accumulates cfg sections and counts darknet layer indices."""

    def __init__(self, *, input_size):
        self.blocks = [f"[net]\nwidth={input_size}\nheight={input_size}\nchannels=3"]
        self.count = 0

    def add(self, section_type, **options):
        lines = [f"[{section_type}]"] + [f"{key.rstrip('_')}={value}" for key, value in options.items()]
        self.blocks.append("\n".join(lines))
        self.count += 1
        return self.count - 1

    def conv(self, filters, size, stride=1):
        return self.add("convolutional", batch_normalize=1, filters=filters, size=size, stride=stride, pad=1,
                        activation="leaky")

    def head(self, *, mask, anchors, num_classes, ignore_threshold, jitter=".3"):
        self.add("convolutional", size=1, stride=1, pad=1, filters=len(mask) * (5 + num_classes),
                 activation="linear")
        anchor_text = ",  ".join(f"{_number(width)},{_number(height)}" for width, height in anchors)
        return self.add("yolo", mask=",".join(str(index) for index in mask), anchors=anchor_text,
                        classes=num_classes, num=len(anchors), jitter=jitter, ignore_thresh=ignore_threshold,
                        truth_thresh=1, random=1)

    def text(self):
        return "\n\n".join(self.blocks) + "\n"


def _number(value):
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _check(num_classes, input_size, anchors, masks, default_anchors, default_masks):
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if int(input_size) < 32 or int(input_size) % 32:
        raise ValueError(f"input_size must be a positive multiple of 32 (the network's largest stride), "
                         f"got {input_size}")
    anchors = np.asarray(default_anchors if anchors is None else anchors, dtype=np.float64)
    masks = [list(mask) for mask in (default_masks if masks is None else masks)]
    if anchors.ndim != 2 or anchors.shape[1] != 2 or np.any(anchors <= 0):
        raise ValueError(f"anchors must be an (N, 2) array of positive [width, height] pixels, got shape "
                         f"{anchors.shape}")
    if len(masks) != len(default_masks):
        raise ValueError(f"expected {len(default_masks)} masks (one per head), got {len(masks)}")
    for mask in masks:
        if not mask or any(index < 0 or index >= len(anchors) for index in mask):
            raise ValueError(f"mask {mask} does not index into the {len(anchors)} anchors")
    return int(num_classes), int(input_size), anchors, masks


def _darknet53(writer):
    """Write Darknet-53 (layers 0-74) and return the layer indices of the stride-8 and stride-16 outputs."""
    writer.conv(32, 3)
    stage_outputs = []
    filters = 64
    for blocks in DARKNET53_BLOCKS:
        writer.conv(filters, 3, stride=2)
        for _ in range(blocks):
            writer.conv(filters // 2, 1)
            writer.conv(filters, 3)
            writer.add("shortcut", from_=-3, activation="linear")
        stage_outputs.append(writer.count - 1)
        filters *= 2
    return stage_outputs[2], stage_outputs[3]


def _yolov3(*, num_classes, input_size, anchors, masks, spp, ignore_threshold):
    writer = _CfgWriter(input_size=input_size)
    stride8_layer, stride16_layer = _darknet53(writer)
    ignore = _number(ignore_threshold)
    # Head 0 (stride 32).
    writer.conv(512, 1)
    writer.conv(1024, 3)
    writer.conv(512, 1)
    if spp:
        writer.add("maxpool", stride=1, size=5)
        writer.add("route", layers=-2)
        writer.add("maxpool", stride=1, size=9)
        writer.add("route", layers=-4)
        writer.add("maxpool", stride=1, size=13)
        writer.add("route", layers="-1,-3,-5,-6")
        writer.conv(512, 1)
    writer.conv(1024, 3)
    writer.conv(512, 1)
    writer.conv(1024, 3)
    writer.head(mask=masks[0], anchors=anchors, num_classes=num_classes, ignore_threshold=ignore)
    # Heads 1 (stride 16) and 2 (stride 8).
    for filters, skip_layer, mask in ((256, stride16_layer, masks[1]), (128, stride8_layer, masks[2])):
        writer.add("route", layers=-4)
        writer.conv(filters, 1)
        writer.add("upsample", stride=2)
        writer.add("route", layers=f"-1, {skip_layer}")
        for _ in range(3):
            writer.conv(filters, 1)
            writer.conv(filters * 2, 3)
        writer.head(mask=mask, anchors=anchors, num_classes=num_classes, ignore_threshold=ignore)
    return writer.text()


def yolov3_cfg(*, num_classes=80, input_size=416, anchors=None, masks=None, ignore_threshold=0.7) -> str:
    """Darknet cfg text of YOLOv3 (Darknet-53 backbone, heads at strides 32, 16, 8; 107 layers).

    Args:
        num_classes: number of classes ``C``; each head convolution has ``len(mask) * (5 + C)`` filters.
        input_size: ``[net] width`` and ``height``, a multiple of 32.
        anchors: ``(N, 2)`` ``[width, height]`` pixels; default :data:`defi1.yolo.anchors.YOLOV3_ANCHORS`.
        masks: three lists of anchor indices; default :data:`defi1.yolo.anchors.YOLOV3_MASKS`.
        ignore_threshold: ``ignore_thresh`` of the ``[yolo]`` sections (0.7 in ``yolov3.cfg``, 0.5 in
            ``yolov3-voc.cfg``).
    """
    num_classes, input_size, anchors, masks = _check(num_classes, input_size, anchors, masks, YOLOV3_ANCHORS,
                                                      YOLOV3_MASKS)
    return _yolov3(num_classes=num_classes, input_size=input_size, anchors=anchors, masks=masks, spp=False,
                   ignore_threshold=ignore_threshold)


def yolov3_spp_cfg(*, num_classes=80, input_size=416, anchors=None, masks=None, ignore_threshold=0.7) -> str:
    """Darknet cfg text of YOLOv3-SPP: YOLOv3 with a spatial pyramid pooling block (max pools 5, 9, 13, stride 1)
    in the stride-32 head. Arguments as :func:`yolov3_cfg`."""
    num_classes, input_size, anchors, masks = _check(num_classes, input_size, anchors, masks, YOLOV3_ANCHORS,
                                                      YOLOV3_MASKS)
    return _yolov3(num_classes=num_classes, input_size=input_size, anchors=anchors, masks=masks, spp=True,
                   ignore_threshold=ignore_threshold)


def yolov3_tiny_cfg(*, num_classes=80, input_size=416, anchors=None, masks=None, ignore_threshold=0.7) -> str:
    """Darknet cfg text of tiny-YOLOv3 (7 convolutions and 6 max pools, heads at strides 32 and 16; 24 layers).

    Masks default to ``[[3, 4, 5], [0, 1, 2]]`` as in the current ``yolov3-tiny.cfg`` (the originally released tiny
    weights were trained with ``1,2,3`` for the second head: load those with the cfg they came with).
    Other arguments as :func:`yolov3_cfg` (default anchors :data:`defi1.yolo.anchors.YOLOV3_TINY_ANCHORS`).
    """
    num_classes, input_size, anchors, masks = _check(num_classes, input_size, anchors, masks, YOLOV3_TINY_ANCHORS,
                                                      YOLOV3_TINY_MASKS)
    writer = _CfgWriter(input_size=input_size)
    for filters in (16, 32, 64, 128, 256):
        writer.conv(filters, 3)
        writer.add("maxpool", size=2, stride=2)
    stride16_layer = writer.count - 2
    writer.conv(512, 3)
    writer.add("maxpool", size=2, stride=1)
    writer.conv(1024, 3)
    writer.conv(256, 1)
    writer.conv(512, 3)
    writer.head(mask=masks[0], anchors=anchors, num_classes=num_classes,
                ignore_threshold=_number(ignore_threshold))
    writer.add("route", layers=-4)
    writer.conv(128, 1)
    writer.add("upsample", stride=2)
    writer.add("route", layers=f"-1, {stride16_layer}")
    writer.conv(256, 3)
    writer.head(mask=masks[1], anchors=anchors, num_classes=num_classes,
                ignore_threshold=_number(ignore_threshold))
    return writer.text()
