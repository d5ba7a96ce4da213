"""The model a detection training run starts from: built (``yolov3``, ``yolov3-tiny``, a darknet cfg) or loaded
(a ``.keras`` file), with its initial weights (darknet ``.weights``, a ``.keras`` model), and the switches training
flips on it (frozen backbone, batch-norm momentum).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from defi1.detection.training_settings import TrainingSettings
from defi1.errors import ConfigError, WeightsError
from defi1.files import load_keras_model


def build_model(settings: TrainingSettings, *, class_names) -> keras.Model:
    """The model named by ``settings.model`` for ``class_names``, with ``settings.weights`` loaded.

    A newly built model's heads start at the priors of :func:`defi1.yolo.model.initialize_head_priors` (what
    training from scratch, or COCO weights with another class count, keeps for the head convolutions)."""
    from defi1.yolo import model as yolo_model

    num_classes = len(class_names)
    name = str(settings.model)
    anchors = _resolve_anchors(settings, name)
    if name.endswith(".keras"):
        model = load_keras_model(name)
        model_classes = yolo_heads_num_classes(model)
        if model_classes != num_classes:
            raise ConfigError(f"{name}: the model has {model_classes} classes but the dataset {settings.data} has "
                              f"{num_classes}; start from its weights instead (--model yolov3-tiny --weights {name})")
    elif name in ("yolov3", "yolov3-tiny", "yolov3_tiny"):
        builder = yolo_model.build_yolov3 if name == "yolov3" else yolo_model.build_yolov3_tiny
        model = builder(num_classes=num_classes, input_size=settings.input_size, anchors=anchors,
                        class_names=class_names)
    elif name.endswith(".cfg"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such darknet cfg file")
        model = yolo_model.build_from_cfg(name, num_classes=num_classes, class_names=class_names,
                                          input_size=settings.input_size)
    else:
        raise ConfigError(f"unknown model {name!r}: expected yolov3, yolov3-tiny, a darknet .cfg file or a .keras "
                          "model")
    if not name.endswith(".keras"):  # a new model: heads start at the priors; loaded weights replace them
        yolo_model.initialize_head_priors(model)
    load_initial_weights(model, settings.weights)
    return model


def yolo_heads_num_classes(model) -> int:
    from defi1.yolo.layers import yolo_heads

    return yolo_heads(model)[0].num_classes


def _resolve_anchors(settings, model_name):
    if settings.anchors is None:
        return None
    if model_name not in ("yolov3", "yolov3-tiny", "yolov3_tiny"):
        raise ConfigError(f"custom anchors apply to the built-in models only; {model_name} carries its own")
    if isinstance(settings.anchors, str):
        if settings.anchors != "kmeans":
            raise ConfigError(f"anchors must be None, 'kmeans' or an (A, 2) array, got {settings.anchors!r}")
        from defi1.detection.anchors import dataset_box_sizes
        from defi1.yolo.anchors import kmeans_anchors

        count = 9 if model_name == "yolov3" else 6
        sizes = dataset_box_sizes(settings.data, input_size=settings.input_size, split="train")
        if len(sizes) < count:
            raise ConfigError(f"{settings.data}: {len(sizes)} training boxes, too few for {count} k-means anchors")
        anchors, _ = kmeans_anchors(sizes, count, seed=settings.seed)
        return np.asarray(anchors, dtype=np.float64)
    return np.asarray(settings.anchors, dtype=np.float64).reshape(-1, 2)


def load_initial_weights(model, weights) -> dict | None:
    """Load ``weights`` (darknet ``.weights``, a ``.keras`` model, or ``None``/``"none"``) into ``model``.

    Darknet files go through :func:`defi1.yolo.darknet.load_darknet_weights` with ``skip_mismatched_heads`` (COCO
    weights for another class count); files named ``*.conv.*`` (``darknet53.conv.74``) are backbone-only.
    A ``.keras`` file gives its weights to the layers of ``model`` with the same name and weight shapes.
    Returns the loader's report, or ``None`` when nothing was loaded.
    """
    if weights is None or str(weights).lower() in ("", "none"):
        return None
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".keras":
        return _transfer_keras_weights(model, path)
    from defi1.yolo.darknet import load_darknet_weights

    backbone_only = ".conv." in path.name
    return load_darknet_weights(model, path, skip_mismatched_heads=True, backbone_only=backbone_only)


def _transfer_keras_weights(model, path) -> dict:
    source = load_keras_model(path)
    source_layers = {layer.name: layer for layer in source.layers}
    copied, skipped = [], []
    for layer in model.layers:
        other = source_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        values = other.get_weights()
        if [tuple(weight.shape) for weight in layer.weights] == [value.shape for value in values]:
            layer.set_weights(values)
            copied.append(layer.name)
        else:
            skipped.append(layer.name)
    if not copied:
        raise WeightsError(f"{path}: no layer of this model matches a layer of {model.name!r} by name and shape")
    return {"source": str(path), "copied_layers": copied, "skipped_layers": skipped}


def set_backbone_trainable(model, trainable: bool) -> list[str]:
    """Freeze (``trainable=False``) or unfreeze the backbone layers; returns their names. Frozen BatchNormalization
    layers run in inference mode (Keras 3), so their moving statistics are kept."""
    from defi1.yolo.model import backbone_layer_names

    names = set(backbone_layer_names(model))
    for layer in model.layers:
        layer.trainable = (layer.name not in names) or trainable
    return sorted(names)


def set_batchnorm_momentum(model, momentum: float) -> int:
    """Set the moving-statistics momentum of every batch normalisation layer; returns how many were changed."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"batch normalisation momentum must be in [0, 1), got {momentum}")
    changed = 0
    for layer in model.layers:
        if "BatchNormalization" in type(layer).__name__ and hasattr(layer, "momentum"):
            layer.momentum = float(momentum)
            changed += 1
    return changed
