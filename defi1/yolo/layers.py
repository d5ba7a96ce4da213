"""Keras layers of the YOLOv3 port. Every layer stores its arguments in ``get_config`` (no ``Lambda``), so saved
``.keras`` files load with ``safe_mode=True`` once :mod:`defi1` is imported.

:class:`YoloHead` is the contract between the network and everything after it (loss, decoding, darknet export):
each model output passes through one ``YoloHead``, in the order of the cfg's ``[yolo]`` sections, and the layer's
config carries what decoding needs.
"""

from __future__ import annotations

import keras

from defi1.layers import MetadataLayer


@keras.saving.register_keras_serializable(package="defi1")
class YoloHead(MetadataLayer):
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
        darknet_header: ``{"major", "minor", "revision", "seen"}`` of the darknet ``.weights`` file the model was
            converted from (head 0 only, ``None`` otherwise), so that exporting writes the same header back.
    """

    def __init__(self, anchors, num_classes, stride, class_names=None, input_size=416, head_index=0, mask=None,
                 all_anchors=None, ignore_threshold=0.5, cfg_text=None, darknet_header=None, **kwargs):
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
        self.darknet_header = ({key: int(value) for key, value in darknet_header.items()}
                               if darknet_header is not None else None)

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
            darknet_header=self.darknet_header,
        )
        return config


#: Darknet's batch-norm epsilon, added to the standard deviation (not to the variance): ``normalize_cpu`` computes
#: ``(x - mean) / (sqrt(variance) + .000001f)``.
DARKNET_BATCHNORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="defi1")
class DarknetBatchNormalization(keras.layers.Layer):
    """Batch normalisation computed as darknet computes it, on the last (channel) axis of NHWC tensors.

    ``output = gamma * (x - mean) / (sqrt(variance) + epsilon) + beta`` with ``epsilon = 1e-6`` added to the
    standard deviation (darknet's ``normalize_cpu``). Keras' ``BatchNormalization`` and OpenCV's darknet importer
    use ``(x - mean) / sqrt(variance + epsilon)`` instead; for variances that trained networks have (well above
    1e-6) the two differ by far less than float32 rounding, but only this formula reproduces darknet exactly.

    In training (``training=True`` and the layer trainable) the batch's mean and (biased) variance are used and the
    moving statistics are updated with ``moving = momentum * moving + (1 - momentum) * batch`` (darknet: 0.99).
    Otherwise, or when the layer is frozen, the moving statistics are used, as in Keras.

    Args:
        momentum: moving-average momentum of the statistics.
        epsilon: added to ``sqrt(variance)``.
    """

    def __init__(self, momentum=0.99, epsilon=DARKNET_BATCHNORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma", autocast=False)
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta", autocast=False)
        self.moving_mean = self.add_weight(shape=(channels,), initializer="zeros", name="moving_mean",
                                           trainable=False, autocast=False)
        self.moving_variance = self.add_weight(shape=(channels,), initializer="ones", name="moving_variance",
                                               trainable=False, autocast=False)

    def call(self, inputs, training=None):
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = keras.ops.cast(inputs, compute_dtype)
        if training and self.trainable:
            axes = list(range(len(inputs.shape) - 1))
            mean, variance = keras.ops.moments(inputs, axes=axes)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean = keras.ops.cast(self.moving_mean, compute_dtype)
            variance = keras.ops.cast(self.moving_variance, compute_dtype)
        gamma = keras.ops.cast(self.gamma, compute_dtype)
        beta = keras.ops.cast(self.beta, compute_dtype)
        outputs = (inputs - mean) / (keras.ops.sqrt(variance) + self.epsilon) * gamma + beta
        return keras.ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="defi1")
class DarknetMaxPool(keras.layers.Layer):
    """Max pooling with darknet's geometry (NHWC).

    Darknet pads ``padding`` pixels in all (default ``size - 1``): ``padding // 2`` before (top/left), the rest after,
    ignoring the padded pixels in the max; the output side is ``(side + padding - size) // stride + 1``. So
    ``size=2, stride=1`` (tiny-YOLOv3) keeps the side, and ``size=5, stride=1`` (the SPP block) too. Padded pixels
    are ``-inf``, never chosen.

    Args:
        pool_size: darknet ``size``.
        strides: darknet ``stride``.
        padding: darknet ``padding`` (total padding per axis); ``None`` for darknet's default ``pool_size - 1``.
    """

    def __init__(self, pool_size=2, strides=2, padding=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.padding = int(padding) if padding is not None else self.pool_size - 1

    def _output_side(self, side):
        return (side + self.padding - self.pool_size) // self.strides + 1

    def _pads(self, side):
        """``(before, after)`` padding of one axis of length ``side`` (``None`` when unknown)."""
        before = self.padding // 2
        if side is None and self.padding == self.pool_size - 1:
            # Darknet's default: padding the whole remainder after gives exactly darknet's output side for any
            # input side, so the padding does not depend on the (dynamic) input shape.
            return before, self.padding - before
        if side is None:
            raise ValueError(f"{self.name}: darknet maxpool with padding={self.padding} (not size-1) needs a static "
                             f"input shape")
        after = (self._output_side(side) - 1) * self.strides + self.pool_size - side - before
        return before, max(0, after)

    def call(self, inputs):
        top, bottom = self._pads(inputs.shape[1])
        left, right = self._pads(inputs.shape[2])
        if top or bottom or left or right:
            inputs = keras.ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]],
                                   constant_values=float("-inf"))
        return keras.ops.max_pool(inputs, pool_size=self.pool_size, strides=self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        height = None if height is None else self._output_side(height)
        width = None if width is None else self._output_side(width)
        return (batch, height, width, channels)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding)
        return config


def yolo_heads(model) -> list[YoloHead]:
    """The model's :class:`YoloHead` layers in output order. Raises ``ValueError`` if it has none."""
    heads = [layer for layer in model.layers if isinstance(layer, YoloHead)]
    if not heads:
        raise ValueError(f"model {model.name!r} has no YoloHead layers: it is not a defi1 YOLO detector")
    return sorted(heads, key=lambda head: head.head_index)
