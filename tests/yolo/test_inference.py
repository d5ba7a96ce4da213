"""Tests of defi1.yolo.inference: batch-norm folding and the compiled forward pass."""

import keras
import numpy as np
import pytest

import defi1  # noqa: F401
from defi1.yolo.inference import compile_forward, fold_batchnorm, network_stride
from defi1.yolo.layers import DarknetBatchNormalization, yolo_heads
from defi1.yolo.model import build_yolov3_tiny


@pytest.fixture
def tiny(rng):
    """tiny-YOLOv3 (3 classes) with non-trivial batch-norm statistics."""
    model = build_yolov3_tiny(num_classes=3, class_names=["a", "b", "c"], input_size=320)
    for layer in model.layers:
        if isinstance(layer, DarknetBatchNormalization):
            channels = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, channels).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
    return model


def _reference(model, images):
    return [keras.ops.convert_to_numpy(output) for output in model(images, training=False)]


@pytest.mark.backend_agnostic
def test_folded_model_equals_original(tiny, rng):
    images = rng.random((2, 64, 64, 3), dtype=np.float32)
    folded = fold_batchnorm(tiny)
    assert not any(isinstance(layer, DarknetBatchNormalization) for layer in folded.layers)
    assert len(folded.layers) == len(tiny.layers) - 11  # tiny-YOLOv3 has 11 batch-normalised convolutions
    heads = yolo_heads(folded)
    assert heads[0].class_names == ["a", "b", "c"] and heads[0].input_size == 320
    for output, reference in zip(_reference(folded, images), _reference(tiny, images)):
        np.testing.assert_allclose(output, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.backend_agnostic
def test_folded_weights_by_hand(tiny):
    folded = fold_batchnorm(tiny)
    batchnorm = tiny.get_layer("batchnorm_0")
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(variable)[0] for variable in (
        batchnorm.gamma, batchnorm.beta, batchnorm.moving_mean, batchnorm.moving_variance))
    scale = gamma / (np.sqrt(variance) + 1e-6)
    kernel, bias = folded.get_layer("conv_0").get_weights()
    original = keras.ops.convert_to_numpy(tiny.get_layer("conv_0").kernel)
    np.testing.assert_allclose(kernel[..., 0], original[..., 0] * scale, rtol=1e-6)
    np.testing.assert_allclose(bias[0], beta - mean * scale, rtol=1e-6)
    # A head convolution has no batch norm: copied unchanged.
    for a, b in zip(folded.get_layer("conv_15").get_weights(), tiny.get_layer("conv_15").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("fold", [True, False])
def test_compiled_forward_matches_model(tiny, rng, fold):
    forward = compile_forward(tiny, fold_batchnorm=fold)
    assert forward.stride == 32
    for shape in ((1, 64, 64, 3), (2, 96, 64, 3)):
        images = rng.random(shape, dtype=np.float32)
        outputs = forward(images)
        assert all(isinstance(output, np.ndarray) and output.dtype == np.float32 for output in outputs)
        for output, reference in zip(outputs, _reference(tiny, images)):
            np.testing.assert_allclose(output, reference, rtol=1e-4, atol=1e-5)
    single = forward(images[0])
    np.testing.assert_allclose(single[0], outputs[0][:1], rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_compiled_forward_rejects_bad_shapes(tiny):
    forward = compile_forward(tiny)
    with pytest.raises(ValueError, match=r"input side 100x64 is not a multiple of 32"):
        forward(np.zeros((1, 100, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected a batch of RGB images \(batch, height, width, 3\)"):
        forward(np.zeros((1, 64, 64, 4), np.float32))


def test_mixed_precision_close_to_float32(tiny, rng):
    images = rng.random((1, 64, 64, 3), dtype=np.float32)
    forward = compile_forward(tiny, mixed_precision=True)
    assert forward.model.get_layer("conv_0").compute_dtype == "float16"
    for output, reference in zip(forward(images), _reference(tiny, images)):
        assert output.dtype == np.float32
        np.testing.assert_allclose(output, reference, atol=0.05 * np.abs(reference).max())


def test_network_stride(tiny):
    assert network_stride(tiny) == 32
