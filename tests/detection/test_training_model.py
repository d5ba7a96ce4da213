"""Tests of defi1.detection.training_model: the model a run starts from, its weights, frozen backbone and batch-norm
momentum."""

import keras
import numpy as np
import pytest

from defi1.detection.training_model import (build_model, load_initial_weights, set_backbone_trainable,
                                            set_batchnorm_momentum)
from defi1.detection.training_settings import TrainingSettings
from defi1.errors import ConfigError
from defi1.yolo.model import backbone_layer_names, build_from_cfg

from .conftest import SHAPE_NAMES


def test_unknown_model_is_named(small_run):
    _, data_yaml, _ = small_run
    with pytest.raises(ConfigError, match="resnet"):
        build_model(TrainingSettings(data=data_yaml, model="resnet"), class_names=SHAPE_NAMES)


def test_frozen_backbone_keeps_batchnorm_statistics(small_run, rng):
    _, _, cfg = small_run
    model = build_from_cfg(cfg, num_classes=5)
    frozen = set(set_backbone_trainable(model, False))
    assert frozen == set(backbone_layer_names(model)) and frozen
    batchnorms = [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
    frozen_bn = [layer for layer in batchnorms if layer.name in frozen]
    free_bn = [layer for layer in batchnorms if layer.name not in frozen]
    assert frozen_bn and free_bn
    assert all(not layer.trainable for layer in frozen_bn) and all(layer.trainable for layer in free_bn)
    before = [keras.ops.convert_to_numpy(layer.moving_mean).copy() for layer in batchnorms]
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    training_outputs = model(images, training=True)
    after = [keras.ops.convert_to_numpy(layer.moving_mean) for layer in batchnorms]
    for layer, old, new in zip(batchnorms, before, after):
        if layer in frozen_bn:
            np.testing.assert_array_equal(old, new)  # a frozen batch norm runs in inference mode
        else:
            assert not np.allclose(old, new)  # a trainable one updates its statistics
    set_backbone_trainable(model, True)
    assert all(layer.trainable for layer in model.layers)
    assert len(training_outputs) == 2


def test_keras_weights_load_by_name_and_shape(tmp_path, small_run):
    _, _, cfg = small_run
    source = build_from_cfg(cfg, num_classes=3)
    source.save(tmp_path / "source.keras")
    target = build_from_cfg(cfg, num_classes=5)
    report = load_initial_weights(target, tmp_path / "source.keras")
    source_layers = {layer.name: layer for layer in source.layers}
    assert report["copied_layers"] and report["skipped_layers"]
    for name in report["copied_layers"]:
        for mine, theirs in zip(target.get_layer(name).get_weights(), source_layers[name].get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    # The head convolutions (3 vs 5 classes) have other shapes and keep their own initialisation.
    for name in report["skipped_layers"]:
        assert target.get_layer(name).weights[0].shape != source_layers[name].weights[0].shape


def test_batchnorm_momentum_override(small_run):
    _, _, cfg = small_run
    model = build_from_cfg(cfg, num_classes=5)
    count = set_batchnorm_momentum(model, 0.9)
    assert count == sum("BatchNormalization" in type(layer).__name__ for layer in model.layers) > 0
    assert {layer.momentum for layer in model.layers if hasattr(layer, "momentum")} == {0.9}


def test_the_box_weighting_setting_reaches_every_heads_loss(small_run):
    from defi1.detection.training import _compile_stage

    _, data_yaml, cfg = small_run
    model = build_from_cfg(cfg, num_classes=5)
    for weighting in ("uniform", "darknet"):
        settings = TrainingSettings(data=data_yaml, box_weighting=weighting, jit_compile=False, ema_momentum=None)
        _compile_stage(model, settings, 1e-3)
        assert [loss.box_weighting for loss in model.loss] == [weighting] * len(model.outputs)
    with pytest.raises(ValueError, match="box_weighting must be one of darknet, uniform, got 'large'"):
        TrainingSettings(data=data_yaml, box_weighting="large", learning_rate=1e-3, anchors=None,
                         learning_rate_schedule="plateau", warmup_epochs=0.0, ema_momentum=None,
                         assign_threshold=1.0, batchnorm_momentum=None, augmentation=None).check()
