"""Tests of defi1.yolo.model: YOLOv3 networks built from darknet cfgs, darknet's arithmetic, saved metadata.

Numbers are checked against numpy re-implementations of darknet's layers (``forward_convolutional_layer``,
``normalize_cpu``, ``forward_maxpool_layer``); the OpenCV comparisons are in ``test_darknet.py``.
"""

import keras
import numpy as np
import pytest

import defi1  # noqa: F401  (registers the custom layers for safe_mode loading)
from defi1.errors import ConfigError
from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_TINY_ANCHORS
from defi1.yolo.layers import DarknetBatchNormalization, DarknetMaxPool, YoloHead, yolo_heads
from defi1.yolo.model import (backbone_layer_names, build_from_cfg, build_yolov3, build_yolov3_tiny,
                              check_input_shape, initialize_head_priors, model_cfg_text)

CLASS_NAMES = ["circle", "square", "triangle"]

def _darknet_convolution(image, kernel, stride, padding):
    """Darknet's convolution on one HWC image: ``padding`` zeros on every side, kernel (out, in, k, k)."""
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    size = kernel.shape[-1]
    out_height = (image.shape[0] + 2 * padding - size) // stride + 1
    out_width = (image.shape[1] + 2 * padding - size) // stride + 1
    output = np.zeros((out_height, out_width, kernel.shape[0]))
    for y in range(out_height):
        for x in range(out_width):
            window = padded[y * stride:y * stride + size, x * stride:x * stride + size, :]  # (k, k, in)
            output[y, x] = np.einsum("hwi,oihw->o", window, kernel)
    return output


@pytest.mark.backend_agnostic
def test_convolution_batchnorm_leaky_match_darknet_formulas(tiny_cfg, rng):
    model = build_from_cfg(tiny_cfg)  # layer 0: 8 filters 3 x 3, stride 2, pad 1, batch norm, leaky
    kernel = rng.normal(size=(8, 3, 3, 3))  # darknet order (out, in, h, w)
    gamma, beta = np.resize([1.5, 0.5], 8), np.resize([0.1, -0.2], 8)
    mean, variance = np.resize([0.2, -0.1], 8), np.resize([0.8, 1e-4], 8)
    model.get_layer("conv_0").kernel.assign(kernel.transpose(2, 3, 1, 0))
    batchnorm = model.get_layer("batchnorm_0")
    for variable, value in ((batchnorm.gamma, gamma), (batchnorm.beta, beta), (batchnorm.moving_mean, mean),
                            (batchnorm.moving_variance, variance)):
        variable.assign(value)
    image = rng.random((8, 8, 3))
    inner = keras.Model(model.input, model.get_layer("leaky_0").output)
    output = keras.ops.convert_to_numpy(inner(image[None].astype("float32")))[0]

    convolved = _darknet_convolution(image, kernel, stride=2, padding=1)
    normalised = gamma * (convolved - mean) / (np.sqrt(variance) + 1e-6) + beta
    expected = np.where(normalised > 0, normalised, 0.1 * normalised)
    assert output.shape == (4, 4, 8)
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
    # Keras' "same" padding for a stride-2 convolution pads bottom/right instead: a different result.
    shifted = _darknet_convolution(np.pad(image, ((0, 1), (0, 1), (0, 0)))[1:, 1:], kernel, stride=2, padding=1)
    assert np.abs(convolved - shifted).max() > 0.1


@pytest.mark.backend_agnostic
def test_darknet_batchnorm_inference_and_training():
    layer = DarknetBatchNormalization()
    layer.build((None, 1))
    layer.moving_variance.assign([1e-6])
    # Darknet divides by sqrt(variance) + 1e-6 = 1.001e-3 (Keras' sqrt(variance + 1e-6) would give 1.414e-3).
    output = keras.ops.convert_to_numpy(layer(np.ones((1, 1), "float32")))
    np.testing.assert_allclose(output, [[1 / 1.001e-3]], rtol=1e-6)

    layer = DarknetBatchNormalization(momentum=0.9)
    inputs = np.array([[1.0], [3.0]], dtype="float32")  # batch mean 2, biased variance 1
    output = keras.ops.convert_to_numpy(layer(inputs, training=True))
    np.testing.assert_allclose(output, [[-1 / (1 + 1e-6)], [1 / (1 + 1e-6)]], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), [0.2], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), [1.0], rtol=1e-6)


@pytest.mark.backend_agnostic
def test_darknet_maxpool_geometry():
    image = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    # size 2 stride 1 (tiny-YOLOv3): keeps the size, pads after with -inf.
    output = keras.ops.convert_to_numpy(DarknetMaxPool(pool_size=2, strides=1)(image))[0, :, :, 0]
    np.testing.assert_array_equal(output, [[5, 6, 6], [8, 9, 9], [8, 9, 9]])
    negative = -np.arange(1, 5, dtype="float32").reshape(1, 2, 2, 1)
    output = keras.ops.convert_to_numpy(DarknetMaxPool(pool_size=2, strides=1)(negative))[0, :, :, 0]
    np.testing.assert_array_equal(output, [[-1, -2], [-3, -4]])  # zero padding would give zeros
    # size 2 stride 2 on an odd side: darknet's output side is (3 + 1 - 2) // 2 + 1 = 2.
    output = keras.ops.convert_to_numpy(DarknetMaxPool(pool_size=2, strides=2)(image))[0, :, :, 0]
    np.testing.assert_array_equal(output, [[5, 6], [8, 9]])
    # size 5 stride 1 (SPP): 2 pixels before, 2 after.
    output = keras.ops.convert_to_numpy(DarknetMaxPool(pool_size=5, strides=1)(image))[0, :, :, 0]
    np.testing.assert_array_equal(output, np.full((3, 3), 9.0))
    assert DarknetMaxPool(pool_size=2, strides=1).compute_output_shape((1, 13, 13, 4)) == (1, 13, 13, 4)


@pytest.mark.backend_agnostic
def test_tiny_heads_shapes_and_metadata():
    model = build_yolov3_tiny(num_classes=3, input_size=320, class_names=CLASS_NAMES)
    outputs = model(np.zeros((2, 64, 96, 3), "float32"))
    assert [tuple(output.shape) for output in outputs] == [(2, 2, 3, 24), (2, 4, 6, 24)]
    heads = yolo_heads(model)
    assert [head.stride for head in heads] == [32, 16]
    assert [head.mask for head in heads] == [[3, 4, 5], [0, 1, 2]]
    np.testing.assert_array_equal(heads[0].anchors, YOLOV3_TINY_ANCHORS[3:])
    np.testing.assert_array_equal(heads[1].all_anchors, YOLOV3_TINY_ANCHORS)
    assert all(head.class_names == CLASS_NAMES and head.num_classes == 3 for head in heads)
    assert [head.input_size for head in heads] == [320, 320]
    assert [head.ignore_threshold for head in heads] == [0.7, 0.7]
    assert heads[0].cfg_text is not None and heads[1].cfg_text is None
    assert [head.name for head in heads] == ["yolo_head_0", "yolo_head_1"]


@pytest.mark.backend_agnostic
def test_head_priors_set_the_initial_probabilities():
    model = build_yolov3_tiny(num_classes=3, input_size=64)
    assert initialize_head_priors(model, objectness_prior=0.01) == ["conv_15", "conv_22"]
    # A black image gives zero activations all the way (no bias before the heads, BatchNorm beta 0), so each head
    # outputs exactly its bias: objectness probability 0.01, each class 1/3, box terms 0.
    outputs = model(np.zeros((1, 64, 64, 3), "float32"))
    for output in outputs:
        rows = keras.ops.convert_to_numpy(output).reshape(-1, 8)
        np.testing.assert_allclose(1 / (1 + np.exp(-rows[:, 4])), 0.01, rtol=1e-5)
        np.testing.assert_allclose(1 / (1 + np.exp(-rows[:, 5:])), 1 / 3, rtol=1e-5)
        np.testing.assert_array_equal(rows[:, :4], 0.0)
    with pytest.raises(ValueError, match="probabilities"):
        initialize_head_priors(model, objectness_prior=1.0)
    single_class = build_yolov3_tiny(num_classes=1, input_size=64)
    initialize_head_priors(single_class)
    bias = keras.ops.convert_to_numpy(single_class.get_layer("conv_15").bias)
    np.testing.assert_array_equal(bias[5::6], 0.0)  # class probability 0.5


def test_yolov3_heads_metadata_and_backbone():
    model = build_yolov3(num_classes=3)
    heads = yolo_heads(model)
    assert [head.stride for head in heads] == [32, 16, 8]
    for head, mask in zip(heads, ([6, 7, 8], [3, 4, 5], [0, 1, 2])):
        np.testing.assert_array_equal(head.anchors, YOLOV3_ANCHORS[mask])
    assert [int(output.shape[-1]) for output in model.outputs] == [24, 24, 24]
    names = backbone_layer_names(model)
    assert names[-1] == "shortcut_74"
    assert sum(name.startswith("conv_") for name in names) == 52  # Darknet-53 without its classifier
    assert "conv_75" not in names


def test_tiny_backbone_is_shared_trunk():
    names = backbone_layer_names(build_yolov3_tiny(num_classes=3))
    assert [name for name in names if name.startswith("conv_")] == [f"conv_{index}" for index in range(0, 13, 2)]
    assert names[-1] == "leaky_12"


def test_num_classes_rewrites_cfg(darknet_dir):
    model = build_from_cfg(darknet_dir / "cfg" / "yolov3-tiny.cfg", num_classes=3, class_names=CLASS_NAMES)
    assert model.get_layer("conv_15").filters == 24 and model.get_layer("conv_22").filters == 24
    text = model_cfg_text(model)
    assert text.count("classes=3") == 2 and text.count("filters=24") == 2
    assert "classes=80" not in text
    with pytest.raises(ValueError, match="2 class names given for num_classes=3"):
        build_from_cfg(darknet_dir / "cfg" / "yolov3-tiny.cfg", num_classes=3, class_names=["a", "b"])


@pytest.mark.backend_agnostic
def test_saved_model_loads_in_safe_mode_with_metadata(tmp_path, rng):
    model = build_yolov3_tiny(num_classes=3, class_names=CLASS_NAMES, input_size=320)
    batchnorm = model.get_layer("batchnorm_0")
    batchnorm.moving_mean.assign(rng.normal(size=16).astype("float32"))
    images = rng.random((1, 64, 64, 3)).astype("float32")
    expected = [keras.ops.convert_to_numpy(output) for output in model(images)]
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    heads = yolo_heads(loaded)
    assert isinstance(heads[0], YoloHead)
    assert heads[0].class_names == CLASS_NAMES and heads[0].input_size == 320 and heads[1].mask == [0, 1, 2]
    assert heads[0].cfg_text == model_cfg_text(model)
    for output, reference in zip(loaded(images), expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(output), reference, rtol=1e-6, atol=1e-6)


def test_input_side_not_multiple_of_32_is_an_error(tiny_cfg):
    with pytest.raises(ValueError, match="multiple of 32"):
        build_yolov3_tiny(num_classes=3, input_size=100)
    with pytest.raises(ValueError, match=r"input size 65x65 is not a multiple of the network's largest stride 16"):
        build_from_cfg(tiny_cfg.replace("width=64\nheight=64", "width=65\nheight=65"))
    with pytest.raises(ValueError, match=r"input side 100x64 is not a multiple of 32"):
        check_input_shape((1, 100, 64, 3))
    with pytest.raises(ValueError, match=r"expected a batch of RGB images"):
        check_input_shape((1, 64, 64, 1))


@pytest.mark.parametrize("edit, message", [
    (("filters=21", "filters=20", 1), r"line 85: \[convolutional\] \(layer 13\) feeding the \[yolo\] at line 88 "
                                      r"has filters=20; expected len\(mask\) \* \(5 \+ classes\) = 3 \* \(5 \+ 2\) = 21"),
    (("[yolo]", "[route]\nlayers=50\n\n[yolo]", 1), r"layers=50 refers to layer 50, expected an earlier layer"),
    (("[yolo]", "[local]\nfilters=2\n\n[yolo]", 1), r"line 88: unsupported section \[local\]"),
])
def test_inconsistent_cfg_names_line(tiny_cfg, edit, message):
    with pytest.raises(ConfigError, match=message):
        build_from_cfg(tiny_cfg.replace(*edit))


@pytest.mark.backend_agnostic
def test_fit_updates_batchnorm_statistics_except_frozen_backbone(rng):
    model = build_yolov3_tiny(num_classes=1)
    frozen = set(backbone_layer_names(model))
    for name in frozen:
        model.get_layer(name).trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=["mse", "mse"])
    images = rng.random((2, 64, 64, 3)).astype("float32")
    targets = [np.zeros((2, 2, 2, 18), "float32"), np.zeros((2, 4, 4, 18), "float32")]
    frozen_before = keras.ops.convert_to_numpy(model.get_layer("batchnorm_12").moving_mean).copy()
    head_before = keras.ops.convert_to_numpy(model.get_layer("batchnorm_13").moving_mean).copy()
    gamma_before = keras.ops.convert_to_numpy(model.get_layer("batchnorm_13").gamma).copy()
    model.fit(images, targets, batch_size=2, epochs=1, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("batchnorm_12").moving_mean),
                                  frozen_before)
    # Trainable batch norm: moving mean moved by (1 - 0.99) towards the batch mean, gamma got a gradient step.
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("batchnorm_13").moving_mean) - head_before).max() > 0
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("batchnorm_13").gamma) - gamma_before).max() > 0
