"""The names of the Part 1 classifiers, without importing Keras (the command line lists them in ``--help``).

:mod:`defi1.classification.models` builds them.
"""

from __future__ import annotations

#: Backbones for transfer learning: name -> (``keras.applications`` constructor, module holding its
#: ``preprocess_input``, smallest input side).
BACKBONES = {
    "mobilenet_v2": ("MobileNetV2", "keras.applications.mobilenet_v2", 32),
    "resnet50": ("ResNet50", "keras.applications.resnet50", 32),
    "efficientnet_b0": ("EfficientNetB0", "keras.applications.efficientnet", 32),
}
#: Models trained from scratch: the course's "Model 2" MLP, its dropout variant and a small CNN.
SCRATCH_MODELS = ("course_mlp", "dropout_mlp", "small_cnn")
#: Every model ``defi1 classify train --model`` accepts.
MODEL_NAMES = SCRATCH_MODELS + tuple(BACKBONES)
