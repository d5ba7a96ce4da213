"""Tests of defi1.classification.models: the course's Model 2, the dropout MLP, the CNN and transfer learning."""

import keras
import numpy as np
import pytest

from defi1.classification import models


@pytest.mark.backend_agnostic
def test_course_model_2_is_exactly_the_course_stack():
    model = models.build_course_mlp(input_shape=(8, 8, 1), num_classes=10)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [200, 100, 60, 30, 10]
    assert [layer.activation.__name__ for layer in dense] == ["sigmoid"] * 4 + ["softmax"]
    # 64*200+200 + 200*100+100 + 100*60+60 + 60*30+30 + 30*10+10
    assert model.count_params() == 13000 + 20100 + 6060 + 1830 + 310 == 41300


@pytest.mark.backend_agnostic
def test_dropout_mlp_uses_relu_and_dropout():
    model = models.build_dropout_mlp(input_shape=(8, 8, 1), num_classes=3, dropout_rate=0.25)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.activation.__name__ for layer in dense] == ["relu"] * 4 + ["softmax"]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.25] * 4


@pytest.mark.backend_agnostic
def test_dropout_mlp_with_sigmoid_is_model_2_plus_dropout_only():
    course = models.build_course_mlp(input_shape=(8, 8, 1), num_classes=10)
    dropout = models.build_dropout_mlp(input_shape=(8, 8, 1), num_classes=10, activation="sigmoid")
    dense = [layer for layer in dropout.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.activation.__name__ for layer in dense] == ["sigmoid"] * 4 + ["softmax"]
    assert dropout.count_params() == course.count_params() == 41300  # Dropout adds no weight
    assert [type(layer).__name__ for layer in dropout.layers if not isinstance(layer, keras.layers.Dropout)] == [
        type(layer).__name__ for layer in course.layers]


@pytest.mark.backend_agnostic
def test_saved_models_load_with_safe_mode_and_keep_their_info(tmp_path):
    import defi1  # noqa: F401  (registers ClassifierOutput)

    model = models.build_small_cnn(input_shape=(16, 16, 1), num_classes=3, class_names=["a", "b", "c"])
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 1)).astype(np.float32)
    expected = model.predict_on_batch(images)
    assert np.allclose(expected.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras", safe_mode=True)
    assert np.allclose(loaded.predict_on_batch(images), expected, atol=1e-6)
    assert models.classifier_info(loaded) == {"class_names": ["a", "b", "c"], "image_size": (16, 16),
                                              "color_mode": "grayscale", "preprocessing": "none", "num_classes": 3}


def test_wrong_number_of_class_names_is_refused():
    with pytest.raises(ValueError, match="2 class names for num_classes=3"):
        models.build_course_mlp(input_shape=(8, 8, 1), num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="expected one of"):
        models.build_classifier("vgg99", input_shape=(32, 32, 3), num_classes=3)


def test_transfer_classifier_offline_has_a_frozen_backbone_and_records_preprocessing():
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=None)
    backbone = models.backbone_of(model)
    assert backbone.trainable is False
    assert [weight.name for weight in model.trainable_weights] == ["kernel", "bias"]  # the new Dense head only
    assert models.classifier_info(model)["preprocessing"] == "mobilenet_v2"
    with pytest.raises(ValueError, match="at least 32 pixels"):
        models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(16, 16, 3), num_classes=3,
                                         weights=None)


@pytest.mark.parametrize("backbone, constructor", [("mobilenet_v2", "MobileNetV2"), ("resnet50", "ResNet50"),
                                                   ("efficientnet_b0", "EfficientNetB0")])
def test_imagenet_weights_are_requested_by_default(monkeypatch, backbone, constructor):
    calls = []
    real = keras.applications.MobileNetV2

    def recording_constructor(**options):
        calls.append(options)
        return real(**{**options, "weights": None})

    monkeypatch.setattr(keras.applications, constructor, recording_constructor)
    models.build_transfer_classifier(backbone=backbone, input_shape=(32, 32, 3), num_classes=3)
    assert calls == [{"include_top": False, "weights": "imagenet", "input_shape": (32, 32, 3), "pooling": "avg",
                      "name": "backbone"}]


def test_local_backbone_weights_file_is_loaded(tmp_path):
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    source.save_weights(tmp_path / "backbone.weights.h5")
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=str(tmp_path / "backbone.weights.h5"))
    loaded = models.backbone_of(model).get_layer("Conv1").kernel
    expected = keras.ops.convert_to_numpy(source.get_layer("Conv1").kernel)
    assert np.array_equal(keras.ops.convert_to_numpy(loaded), expected)


def test_preprocess_functions():
    pixels = np.array([[[[255.0, 0.0, 127.5]]]], dtype=np.float32)
    assert np.allclose(models.preprocess_function("none")(pixels), pixels)
    assert np.allclose(models.preprocess_function("mobilenet_v2")(pixels.copy()), [1.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="preprocessing='vgg'"):
        models.preprocess_function("vgg")


def _batch_norm_statistics(model):
    backbone = models.backbone_of(model)
    return {layer.name: [keras.ops.convert_to_numpy(layer.moving_mean).copy(),
                         keras.ops.convert_to_numpy(layer.moving_variance).copy()]
            for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)}


def _images():
    return np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)


def _calibrate_batch_norm(model):
    """Give a random backbone the BatchNorm statistics of the test images, as a pretrained one has for its data
    (otherwise its activations vanish and nothing trains): one training-mode pass with momentum 0."""
    batch_norms = [layer for layer in models.backbone_of(model).layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in batch_norms:
        layer.momentum = 0.0
    models.backbone_of(model)(_images(), training=True)
    for layer in batch_norms:
        layer.momentum = 0.999


def _fine_tuning_epoch(model):
    from defi1.classification.training import compile_classifier

    images = _images()
    labels = np.arange(8) % 3
    compile_classifier(model, learning_rate=1e-3)
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)


def test_fine_tuning_keeps_batch_norm_statistics_frozen():
    keras.utils.set_random_seed(1)
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=None)
    _calibrate_batch_norm(model)
    unfrozen = models.set_fine_tuning(model, num_layers=30)
    backbone = models.backbone_of(model)
    top = backbone.layers[-30:]
    expected = [weight.path for layer in top if not isinstance(layer, keras.layers.BatchNormalization)
                for weight in layer.trainable_weights]
    assert unfrozen == len([layer for layer in top if layer.trainable and layer.weights]) == 10
    assert [weight.path for weight in backbone.trainable_weights] == expected and len(expected) == 10
    assert all(not layer.trainable for layer in backbone.layers[1:-30])
    top_conv = backbone.get_layer("Conv_1").kernel
    top_conv_before = keras.ops.convert_to_numpy(top_conv).copy()
    before = _batch_norm_statistics(model)
    _fine_tuning_epoch(model)
    after = _batch_norm_statistics(model)
    assert before.keys() == after.keys() and len(before) == 52
    for name in before:
        assert np.array_equal(before[name][0], after[name][0]), name
        assert np.array_equal(before[name][1], after[name][1]), name
    assert not np.array_equal(keras.ops.convert_to_numpy(top_conv), top_conv_before)  # unfrozen layers trained


@pytest.mark.slow
def test_unfreezing_without_set_fine_tuning_moves_batch_norm_statistics():
    """Why set_fine_tuning exists: built with base(x, training=False), an unfrozen backbone's BatchNorm still moves."""
    keras.utils.set_random_seed(1)
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=None)
    _calibrate_batch_norm(model)
    models.backbone_of(model).trainable = True
    before = _batch_norm_statistics(model)
    _fine_tuning_epoch(model)
    after = _batch_norm_statistics(model)
    moved = [name for name in before if not np.array_equal(before[name][0], after[name][0])]
    assert moved, "BatchNorm statistics did not move: Keras now honours training=False; revisit set_fine_tuning"


@pytest.mark.backend_agnostic
def test_prepare_training_from_scratch_unfreezes_and_speeds_up_batchnorm_statistics():
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=None)
    backbone = models.backbone_of(model)
    batchnorms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert not backbone.trainable and {layer.momentum for layer in batchnorms} == {0.999}
    assert models.prepare_training_from_scratch(model, batchnorm_momentum=0.9) == len(batchnorms) == 52
    assert backbone.trainable and all(layer.trainable for layer in backbone.layers)
    assert {layer.momentum for layer in batchnorms} == {0.9}
    assert {layer["config"]["momentum"] for layer in model.get_config()["layers"][1]["config"]["layers"]
            if layer["class_name"] == "BatchNormalization"} == {0.9}  # saved with the model
