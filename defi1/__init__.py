"""defi1: the "Hands on AI, défi 1" toolkit.

Part 1, classification (:mod:`defi1.classification`); Part 2, localisation with a Keras 3 port of YOLOv3
(:mod:`defi1.yolo`, :mod:`defi1.detection`); Part 3, real-time detection (:mod:`defi1.realtime`).

Importing :mod:`defi1` registers the package's Keras layers and losses, so that saved ``.keras`` files load with
``keras.saving.load_model(path, safe_mode=True)``.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def _register_keras_objects():
    """Import the modules that define serialisable Keras objects (they register themselves on import)."""
    import importlib

    for module_name in ("defi1.yolo.layers", "defi1.yolo.loss", "defi1.classification.models"):
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise


_register_keras_objects()
