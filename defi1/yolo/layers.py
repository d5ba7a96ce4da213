"""Keras layers of the YOLOv3 port. Every layer stores its arguments in ``get_config`` (no ``Lambda``), so saved
``.keras`` files load with ``safe_mode=True`` once :mod:`defi1` is imported.

:class:`YoloHead` is the contract between the network and everything after it (loss, decoding, darknet export):
each model output passes through one ``YoloHead``, in the order of the cfg's ``[yolo]`` sections, and the layer's
config carries what decoding needs.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="defi1")
class YoloHead(keras.layers.Layer):
    """Identity layer that marks one YOLO output and carries its metadata.

    Input and output: raw head logits, shape ``(batch, grid_height, grid_width, len(anchors) * (5 + num_classes))``,
    NHWC, channels in darknet's order: for each anchor ``[tx, ty, tw, th, objectness, class_0 ... class_{C-1}]``.

    Args:
        anchors: this head's anchors, list of ``[width, height]`` in pixels of the network input (darknet's units).
        num_classes: number of classes ``C``.
        stride: input pixels per grid cell (32, 16 or 8 for YOLOv3).
        class_names: optional list of ``C`` class names.
        input_size: default square input side the model was built or trained for (a multiple of 32).
        head_index: position of this head among the model's outputs (0 = first ``[yolo]`` section).
        mask: the anchor indices of darknet's ``mask =`` key (into ``all_anchors``).
        all_anchors: the full anchor list of the cfg's ``anchors =`` key, ``[[w, h], ...]`` pixels.
        ignore_threshold: darknet's ``ignore_thresh`` for this head (0.5 by default in YOLOv3, 0.7 in tiny).
        cfg_text: the darknet cfg the model was built from (kept on head 0 only), for export back to darknet.
    """

    def __init__(self, anchors, num_classes, stride, class_names=None, input_size=416, head_index=0, mask=None,
                 all_anchors=None, ignore_threshold=0.5, cfg_text=None, **kwargs):
        super().__init__(**kwargs)
        self.anchors = [[float(width), float(height)] for width, height in anchors]
        self.num_classes = int(num_classes)
        self.stride = int(stride)
        self.class_names = list(class_names) if class_names is not None else None
        self.input_size = int(input_size)
        self.head_index = int(head_index)
        self.mask = [int(index) for index in mask] if mask is not None else None
        self.all_anchors = [[float(w), float(h)] for w, h in all_anchors] if all_anchors is not None else None
        self.ignore_threshold = float(ignore_threshold)
        self.cfg_text = cfg_text

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            anchors=self.anchors,
            num_classes=self.num_classes,
            stride=self.stride,
            class_names=self.class_names,
            input_size=self.input_size,
            head_index=self.head_index,
            mask=self.mask,
            all_anchors=self.all_anchors,
            ignore_threshold=self.ignore_threshold,
            cfg_text=self.cfg_text,
        )
        return config


def yolo_heads(model) -> list[YoloHead]:
    """The model's :class:`YoloHead` layers in output order. Raises ``ValueError`` if it has none."""
    heads = [layer for layer in model.layers if isinstance(layer, YoloHead)]
    if not heads:
        raise ValueError(f"model {model.name!r} has no YoloHead layers: it is not a defi1 YOLO detector")
    return sorted(heads, key=lambda head: head.head_index)
