"""defi1: the "Hands on AI, défi 1" toolkit.

Part 1, classification (:mod:`defi1.classification`); Part 2, localisation with a Keras 3 port of YOLOv3
(:mod:`defi1.yolo`, :mod:`defi1.detection`); Part 3, real-time detection (:mod:`defi1.realtime`).

Importing :mod:`defi1` does not import Keras or its backend (TensorFlow by default): they load, quietly, when a
model is first needed (:mod:`defi1.keras_runtime`). From then on the package's Keras layers and losses are
registered, so that saved ``.keras`` files load with ``keras.saving.load_model(path, safe_mode=True)``.
"""

__version__ = "0.2.0"

from defi1 import keras_runtime as _keras_runtime  # noqa: E402

_keras_runtime.install()
