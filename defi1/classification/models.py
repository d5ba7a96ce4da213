"""Classifiers of Part 1: the course's "Model 2" MLP, its ReLU + Dropout variant, a small CNN, and transfer learning.

Every model takes images ``(batch, height, width, channels)``: pixel values in [0, 255] (``float32``) for the models
trained from scratch (they rescale inside), or the backbone's ``preprocess_input`` output for transfer models
(:class:`defi1.classification.generator.ImagePathDataset` applies it). Every model ends with a
:class:`ClassifierOutput` layer that records the class names, input size, colour mode and preprocessing, so that a
saved ``.keras`` file is all :func:`classifier_info` (and ``defi1 classify predict``) needs. Outputs are class
probabilities ``(batch, num_classes)``.
"""

from __future__ import annotations

import importlib

import keras
from keras import layers

from defi1.classification.catalog import BACKBONES, MODEL_NAMES, SCRATCH_MODELS  # noqa: F401  (re-exported)
from defi1.layers import MetadataLayer


def preprocess_function(preprocessing: str):
    """The function applied to ``float32`` pixel batches ``(batch, height, width, 3)`` in [0, 255] before the network.

    ``"none"`` leaves pixels as they are; a backbone name gives that backbone's ``preprocess_input``
    (MobileNetV2: scale to [-1, 1]; ResNet50: RGB to BGR and ImageNet mean subtraction; EfficientNetB0: identity,
    the network rescales inside).
    """
    if preprocessing in (None, "none"):
        return _identity
    if preprocessing not in BACKBONES:
        raise ValueError(f"preprocessing={preprocessing!r}: expected 'none' or one of {', '.join(BACKBONES)}")
    return importlib.import_module(BACKBONES[preprocessing][1]).preprocess_input


def _identity(images):
    return images


@keras.saving.register_keras_serializable(package="defi1")
class ClassifierOutput(MetadataLayer):
    """Identity layer on the class probabilities ``(batch, num_classes)`` that carries what is needed to use the model.

    Args:
        class_names: the name of each class, in label order (``len == num_classes``).
        image_size: ``(height, width)`` of the input images.
        color_mode: ``"rgb"`` or ``"grayscale"``.
        preprocessing: ``"none"`` or a backbone name (see :func:`preprocess_function`).
    """

    def __init__(self, class_names, image_size, color_mode="rgb", preprocessing="none", **kwargs):
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]
        self.image_size = [int(side) for side in image_size]
        self.color_mode = color_mode
        self.preprocessing = preprocessing

    def get_config(self):
        config = super().get_config()
        config.update(class_names=self.class_names, image_size=self.image_size, color_mode=self.color_mode,
                      preprocessing=self.preprocessing)
        return config


def classifier_info(model) -> dict:
    """``class_names``, ``image_size`` ``(height, width)``, ``color_mode``, ``preprocessing`` and ``num_classes`` of a
    model built here (read from its :class:`ClassifierOutput`). Other Keras models: inferred from their shapes."""
    for layer in reversed(model.layers):
        if isinstance(layer, ClassifierOutput):
            return {"class_names": list(layer.class_names), "image_size": tuple(layer.image_size),
                    "color_mode": layer.color_mode, "preprocessing": layer.preprocessing,
                    "num_classes": len(layer.class_names)}
    input_shape = model.inputs[0].shape
    num_classes = int(model.outputs[0].shape[-1])
    return {"class_names": [str(index) for index in range(num_classes)],
            "image_size": (input_shape[1], input_shape[2]),
            "color_mode": "grayscale" if input_shape[-1] == 1 else "rgb", "preprocessing": "none",
            "num_classes": num_classes}


def _class_names(class_names, num_classes):
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
    return list(class_names)


def _finish(inputs, probabilities, *, class_names, num_classes, input_shape, preprocessing, name):
    outputs = ClassifierOutput(_class_names(class_names, num_classes), input_shape[:2],
                               color_mode="grayscale" if input_shape[2] == 1 else "rgb",
                               preprocessing=preprocessing, name="classes")(probabilities)
    return keras.Model(inputs, outputs, name=name)


def build_course_mlp(*, input_shape, num_classes, class_names=None) -> keras.Model:
    """The course's "Model 2", exactly: Dense 200-100-60-30 with sigmoid, then a softmax output.

    ``input_shape`` is ``(height, width, channels)`` of images in [0, 255]; they are rescaled to [0, 1] and flattened
    (the course's ``input_dim=trainX.shape[1]``).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for units in (200, 100, 60, 30):
        x = layers.Dense(units, activation="sigmoid", name=f"dense_{units}")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return _finish(inputs, probabilities, class_names=class_names, num_classes=num_classes, input_shape=input_shape,
                   preprocessing="none", name="course_mlp")


def build_dropout_mlp(*, input_shape, num_classes, dropout_rate=0.2, activation="relu",
                      class_names=None) -> keras.Model:
    """"Model 2" improved: the same Dense 200-100-60-30 widths with ``activation`` (ReLU by default) and
    Dropout(``dropout_rate``) after each. With ``activation="sigmoid"`` it is Model 2 plus Dropout and nothing else,
    the comparison that isolates Dropout."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for units in (200, 100, 60, 30):
        x = layers.Dense(units, activation=activation, name=f"dense_{units}")(x)
        x = layers.Dropout(dropout_rate, name=f"dropout_{units}")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return _finish(inputs, probabilities, class_names=class_names, num_classes=num_classes, input_shape=input_shape,
                   preprocessing="none", name="dropout_mlp")


def build_small_cnn(*, input_shape, num_classes, filters=(32, 64), dense_units=128, dropout_rate=0.3,
                    class_names=None) -> keras.Model:
    """A small CNN: per entry of ``filters``, two 3×3 convolutions (ReLU, batch norm on the first) and 2×2 max
    pooling; then global average pooling, Dense(``dense_units``), Dropout and softmax."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for block, block_filters in enumerate(filters, start=1):
        x = layers.Conv2D(block_filters, 3, padding="same", use_bias=False, name=f"block{block}_conv1")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.Activation("relu", name=f"block{block}_relu1")(x)
        x = layers.Conv2D(block_filters, 3, padding="same", activation="relu", name=f"block{block}_conv2")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return _finish(inputs, probabilities, class_names=class_names, num_classes=num_classes, input_shape=input_shape,
                   preprocessing="none", name="small_cnn")


def build_transfer_classifier(*, backbone="mobilenet_v2", input_shape=(224, 224, 3), num_classes, weights="imagenet",
                              dropout_rate=0.2, class_names=None) -> keras.Model:
    """A ``keras.applications`` backbone (``include_top=False``, global average pooling) and a new softmax head.

    The backbone is frozen (phase 1 of transfer learning: train the head). Its layer is named ``"backbone"``;
    :func:`set_fine_tuning` unfreezes its top layers for phase 2. ``weights`` is ``"imagenet"`` (downloaded and cached
    by Keras), ``None`` (random, offline) or a path to a weights file of the backbone. Inputs must be preprocessed
    with the backbone's ``preprocess_input`` (recorded in the model, see :func:`classifier_info`).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r}: expected one of {', '.join(BACKBONES)}")
    constructor_name, _module, minimum_side = BACKBONES[backbone]
    input_shape = tuple(int(side) for side in input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape={input_shape}: a {backbone} backbone takes RGB images (height, width, 3)")
    if min(input_shape[:2]) < minimum_side:
        raise ValueError(f"input_shape={input_shape}: {backbone} needs sides of at least {minimum_side} pixels")
    constructor = getattr(keras.applications, constructor_name)
    base = constructor(include_top=False, weights=weights, input_shape=input_shape, pooling="avg", name="backbone")
    base.trainable = False
    inputs = keras.Input(shape=input_shape, name="image")
    x = base(inputs, training=False)
    x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return _finish(inputs, probabilities, class_names=class_names, num_classes=num_classes, input_shape=input_shape,
                   preprocessing=backbone, name=f"{backbone}_classifier")


def backbone_of(model) -> keras.Model:
    """The nested backbone model of a transfer classifier (the layer named ``"backbone"``)."""
    try:
        return model.get_layer("backbone")
    except ValueError as error:
        raise ValueError(f"model {model.name!r} has no 'backbone' layer (not a transfer classifier)") from error


def prepare_training_from_scratch(model, *, batchnorm_momentum=0.9) -> int:
    """Make every backbone layer of a :func:`build_transfer_classifier` model trainable, to train it from random
    weights, and set the momentum of its BatchNormalization layers to ``batchnorm_momentum``.

    ``keras.applications`` backbones use a momentum of 0.999: their moving statistics need thousands of steps to leave
    their initial values, so after a short training from scratch (a few hundred steps) inference would normalise with
    statistics that were never learned and predict one class. Returns the number of BatchNormalization layers set.
    """
    backbone = backbone_of(model)
    backbone.trainable = True
    changed = 0
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(batchnorm_momentum)
            changed += 1
    return changed


def freeze_backbone(model) -> None:
    """Phase 1: the whole backbone is frozen; only the head trains. Recompile the model afterwards."""
    backbone_of(model).trainable = False


def set_fine_tuning(model, *, num_layers) -> int:
    """Phase 2: unfreeze the top ``num_layers`` layers of the backbone, keeping every BatchNormalization frozen.

    BatchNormalization layers stay ``trainable=False``, which in Keras 3 also makes them run in inference mode:
    their moving mean and variance are not updated by fine-tuning (calling the backbone with ``training=False`` is
    not enough once it is unfrozen). Recompile the model (with a low learning rate) afterwards. Returns the number of
    layers made trainable.
    """
    base = backbone_of(model)
    base.trainable = True
    candidates = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    top = candidates[-num_layers:] if num_layers > 0 else []
    top_ids = {id(layer) for layer in top}
    unfrozen = 0
    for layer in candidates:
        batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top_ids and not batch_norm
        unfrozen += int(layer.trainable and bool(layer.weights))
    return unfrozen


def build_classifier(name, *, input_shape, num_classes, class_names=None, weights="imagenet", dropout_rate=None):
    """Build a model by name: one of :data:`MODEL_NAMES` (``weights`` only matters for transfer models)."""
    options = {} if dropout_rate is None else {"dropout_rate": dropout_rate}
    if name == "course_mlp":
        return build_course_mlp(input_shape=input_shape, num_classes=num_classes, class_names=class_names)
    if name == "dropout_mlp":
        return build_dropout_mlp(input_shape=input_shape, num_classes=num_classes, class_names=class_names, **options)
    if name == "small_cnn":
        return build_small_cnn(input_shape=input_shape, num_classes=num_classes, class_names=class_names, **options)
    if name in BACKBONES:
        return build_transfer_classifier(backbone=name, input_shape=input_shape, num_classes=num_classes,
                                         weights=weights, class_names=class_names, **options)
    raise ValueError(f"model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
