"""The names of Part 1's models, without importing Keras (the command line lists them in ``--help``)."""

#: Backbone name -> (``keras.applications`` constructor, module holding its ``preprocess_input``, smallest input side).
BACKBONES = {
    "mobilenet_v2": ("MobileNetV2", "keras.applications.mobilenet_v2", 32),
    "resnet50": ("ResNet50", "keras.applications.resnet50", 32),
    "efficientnet_b0": ("EfficientNetB0", "keras.applications.efficientnet", 32),
}
#: Models trained from random weights.
SCRATCH_MODELS = ("course_mlp", "dropout_mlp", "small_cnn")
#: Every model :func:`defi1.classification.models.build_model` builds.
MODEL_NAMES = SCRATCH_MODELS + tuple(BACKBONES)
