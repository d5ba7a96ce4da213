"""Tests of defi1.yolo.inference: batch-norm folding and the compiled forward pass."""

import keras
import numpy as np
import pytest

import defi1  # noqa: F401
from defi1.yolo.decode import decode_heads
from defi1.yolo.inference import compile_forward, fold_batchnorm, network_stride, select_candidates
from defi1.yolo.layers import DarknetBatchNormalization, yolo_heads
from defi1.yolo.model import build_yolov3_tiny
from defi1.yolo.heads import head_specs


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


@pytest.mark.backend_agnostic
def test_select_candidates_keeps_the_best_scores_in_order():
    boxes = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    objectness = np.array([[0.9, 0.1, 0.5, 0.8, 0.3], [0.2, 0.2, 0.2, 0.2, 1.0]], np.float32)
    classes = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5], [0.1, 0.9]],
                        [[1.0, 0.0], [0.0, 0.9], [0.3, 0.3], [0.5, 0.0], [0.1, 0.1]]], np.float32)
    # Scores (objectness x best class): image 0 [0.9, 0.1, 0.5, 0.4, 0.27] -> rows 0, 2, 3;
    # image 1 [0.2, 0.18, 0.06, 0.1, 0.1] -> rows 0, 1, then 3 or 4 (tied at 0.1).
    kept_boxes, kept_objectness, kept_classes = (keras.ops.convert_to_numpy(values) for values in select_candidates(
        boxes, objectness, classes, max_candidates=3))
    np.testing.assert_array_equal(kept_boxes[0], boxes[0, [0, 2, 3]])
    np.testing.assert_array_equal(kept_boxes[1, :2], boxes[1, [0, 1]])
    # float32 values compared as float32 (numpy 1.x would compare float32(0.2) with the float64 0.2 and differ)
    assert kept_objectness[1, 2] in np.float32([0.2, 1.0]) and kept_boxes[1, 2].tolist() in (boxes[1, 3].tolist(),
                                                                                          boxes[1, 4].tolist())
    np.testing.assert_allclose(kept_objectness[0], [0.9, 0.5, 0.8])
    np.testing.assert_allclose(kept_classes[0], classes[0, [0, 2, 3]])
    every = select_candidates(boxes, objectness, classes, max_candidates=None)
    assert every[0] is boxes and every[2] is classes


@pytest.mark.backend_agnostic
def test_detect_compiles_decoding_with_the_forward_pass(tiny, rng):
    images = rng.random((2, 64, 96, 3), dtype=np.float32)
    heads = head_specs(tiny)
    reference = [keras.ops.convert_to_numpy(values) for values in decode_heads(tiny(images, training=False), heads)]
    everything = compile_forward(tiny, max_candidates=None).detect(images)
    assert [values.shape for values in everything] == [(2, 2 * 3 * 3 + 4 * 6 * 3, 4), (2, 90), (2, 90, 3)]
    for values, expected in zip(everything, reference):
        np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-3)
    forward = compile_forward(tiny, max_candidates=10)
    boxes, objectness, classes = forward.detect(images)
    assert boxes.shape == (2, 10, 4) and objectness.shape == (2, 10) and classes.shape == (2, 10, 3)
    for index in range(2):
        scores = reference[1][index] * reference[2][index].max(axis=-1)
        best = np.argsort(-scores, kind="stable")[:10]
        np.testing.assert_allclose(objectness[index] * classes[index].max(axis=-1), scores[best], rtol=1e-4)
        np.testing.assert_allclose(boxes[index], reference[0][index, best], rtol=1e-4, atol=1e-3)
    # The raw heads are still there, from the same compiled object.
    assert [output.shape for output in forward(images)] == [(2, 2, 3, 24), (2, 4, 6, 24)]


def test_default_jit_compile_per_backend(tiny):
    from defi1.yolo.inference import DEFAULT_JIT_COMPILE

    forward = compile_forward(tiny)
    assert forward.jit_compile == DEFAULT_JIT_COMPILE.get(keras.backend.backend(), False)
    assert compile_forward(tiny, jit_compile=True).jit_compile


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA switch of the TensorFlow adapter")
def test_xla_forward_and_detect_match_the_graph(tiny, rng):
    images = rng.random((1, 64, 64, 3), dtype=np.float32)
    plain, xla = compile_forward(tiny, jit_compile=False), compile_forward(tiny, jit_compile=True)
    for output, reference in zip(xla(images), plain(images)):
        np.testing.assert_allclose(output, reference, rtol=1e-4, atol=1e-4)
    for values, reference in zip(xla.detect(images), plain.detect(images)):
        np.testing.assert_allclose(values, reference, rtol=1e-4, atol=1e-3)
