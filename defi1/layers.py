"""Keras building blocks shared by the Part 1 classifiers and the YOLO models.

:class:`MetadataLayer` is the identity layer both families end with (:class:`defi1.classification.models.
ClassifierOutput`, :class:`defi1.yolo.layers.YoloHead`): it leaves its input unchanged and carries, in its config,
what is needed to use the saved model (class names, input size, anchors...), so that a ``.keras`` file is all a
user needs and loads with ``safe_mode=True`` (no ``Lambda`` layer).
"""

from __future__ import annotations

import keras


class MetadataLayer(keras.layers.Layer):
    """Identity layer whose subclasses store their arguments as attributes and return them from ``get_config``."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
