"""Tests of defi1.yolo.darknet: darknet .weights in and out, checked against OpenCV's darknet importer.

OpenCV (``cv2.dnn.readNetFromDarknet``) is the reference implementation: the same cfg and seeded random weights
(written in darknet's format) are run by both, and the convolutions feeding the ``[yolo]`` layers are compared
(OpenCV's own ``yolo`` layer output is already decoded). The small cfg is the tests' ``tiny_cfg`` (conftest.py): it
uses every supported section.
"""

import keras
import numpy as np
import pytest

import defi1  # noqa: F401
from defi1.errors import WeightsError
from defi1.files import read_names_file
from defi1.yolo.darknet import (convolution_weights, encode_header, load_darknet, load_darknet_weights, read_header,
                                save_darknet, write_random_darknet_weights)
from defi1.yolo.layers import yolo_heads
from defi1.yolo.model import build_from_cfg, build_yolov3_tiny, prepare_sections


def _opencv_heads(read_net_from_darknet, cfg_path, weights_path, images):
    """Head convolution outputs of OpenCV's darknet importer, NHWC."""
    sections, _, _ = prepare_sections(cfg_path)
    names = [f"conv_{layer.index}" for layer in convolution_weights(sections) if layer.feeds_yolo]
    network = read_net_from_darknet(str(cfg_path), str(weights_path))
    network.setInput(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return [output.transpose(0, 2, 3, 1) for output in network.forward(names)]


def _max_differences(read_net_from_darknet, model, cfg_path, weights_path, images):
    ours = [keras.ops.convert_to_numpy(output) for output in model(images)]
    reference = _opencv_heads(read_net_from_darknet, cfg_path, weights_path, images)
    assert [output.shape for output in ours] == [output.shape for output in reference]
    assert all(np.abs(output).max() > 0.1 for output in reference)  # not a trivially small signal
    return [float(np.abs(a - b).max()) for a, b in zip(ours, reference)]


def test_header_formats():
    new = encode_header({"major": 0, "minor": 2, "revision": 0, "seen": 2 ** 33})
    assert len(new) == 20 and read_header(new) == {"major": 0, "minor": 2, "revision": 0, "seen": 2 ** 33}
    old = encode_header({"major": 0, "minor": 1, "revision": 0, "seen": 64000})
    assert len(old) == 16 and old[12:] == np.int32(64000).tobytes()
    assert read_header(old + b"\0" * 8)["seen"] == 64000
    with pytest.raises(WeightsError, match="too short for a darknet weights header"):
        read_header(b"\0" * 10)


def test_reference_file_sizes(darknet_dir):
    """Sizes of the published files: yolov3.weights 248,007,048 bytes, yolov3-tiny.weights 35,434,956,
    darknet53.conv.74 (the first 52 convolutions) 162,482,580."""
    yolov3 = convolution_weights(prepare_sections(darknet_dir / "cfg" / "yolov3.cfg")[0])
    tiny = convolution_weights(prepare_sections(darknet_dir / "cfg" / "yolov3-tiny.cfg")[0])
    assert 20 + 4 * sum(layer.count for layer in yolov3) == 248_007_048
    assert 20 + 4 * sum(layer.count for layer in tiny) == 35_434_956
    assert 20 + 4 * sum(layer.count for layer in yolov3[:52]) == 162_482_580
    assert yolov3[51].index == 73


@pytest.mark.backend_agnostic
def test_mini_cfg_matches_opencv(read_net_from_darknet, tiny_darknet, rng):
    """Under TensorFlow and JAX alike (CI reruns it with KERAS_BACKEND=jax)."""
    cfg_path, weights_path, _ = tiny_darknet
    model = load_darknet(cfg_path, weights_path)
    images = rng.random((2, 64, 96, 3), dtype=np.float32)
    assert max(_max_differences(read_net_from_darknet, model, cfg_path, weights_path, images)) < 1e-4


def test_tiny_matches_opencv_at_416(read_net_from_darknet, darknet_dir, tmp_path, rng):
    cfg_path = darknet_dir / "cfg" / "yolov3-tiny.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "tiny.weights", seed=0)
    model = load_darknet(cfg_path, weights_path, class_names=darknet_dir / "coco.names")
    assert yolo_heads(model)[0].class_names[:2] == ["person", "bicycle"]
    images = rng.random((1, 416, 416, 3), dtype=np.float32)
    assert max(_max_differences(read_net_from_darknet, model, cfg_path, weights_path, images)) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov3", "yolov3-spp", "yolov3-voc"])
def test_full_cfgs_match_opencv(read_net_from_darknet, darknet_dir, tmp_path, rng, name):
    cfg_path = darknet_dir / "cfg" / f"{name}.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / f"{name}.weights", seed=0)
    model = load_darknet(cfg_path, weights_path)
    images = rng.random((1, 128, 128, 3), dtype=np.float32)
    assert max(_max_differences(read_net_from_darknet, model, cfg_path, weights_path, images)) < 1e-4


def test_opencv_batchnorm_uses_variance_plus_epsilon(read_net_from_darknet, tmp_path):
    """OpenCV's importer computes (x - mean) / sqrt(variance + 1e-6); darknet (and defi1) (x - mean) /
    (sqrt(variance) + 1e-6). The difference only shows for variances near 1e-6."""
    cfg_path = tmp_path / "bn.cfg"
    cfg_path.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=18\n"
                        "size=1\nstride=1\npad=1\nactivation=linear\n\n[yolo]\nmask=0,1,2\nanchors=10,13, 16,30, "
                        "33,23\nclasses=1\nnum=3\n")
    variance = np.array([1e-6, 1e-4, 1.0] * 6)
    kernel = np.zeros((18, 3, 1, 1))
    kernel[:, 0] = 1.0
    values = np.concatenate([np.zeros(18), np.ones(18), np.zeros(18), variance, kernel.ravel()])
    weights_path = tmp_path / "bn.weights"
    weights_path.write_bytes(encode_header({"major": 0, "minor": 2, "revision": 0, "seen": 0})
                             + values.astype("<f4").tobytes())
    images = np.full((1, 32, 32, 3), 0.5, dtype=np.float32)
    network = read_net_from_darknet(str(cfg_path), str(weights_path))
    network.setInput(images.transpose(0, 3, 1, 2).copy())
    opencv = network.forward("bn_0")[0, :3, 0, 0]
    np.testing.assert_allclose(opencv, 0.5 / np.sqrt(variance[:3] + 1e-6), rtol=1e-5)
    ours = keras.ops.convert_to_numpy(load_darknet(cfg_path, weights_path)(images))[0, 0, 0, :3]  # one head
    np.testing.assert_allclose(ours, 0.5 / (np.sqrt(variance[:3]) + 1e-6), rtol=1e-5)
    assert abs(ours[0] - opencv[0]) > 100  # 499.5 vs 353.6 at variance 1e-6


def test_truncated_file_is_an_error(tiny_darknet, tmp_path):
    cfg_path, weights_path, _ = tiny_darknet
    data = weights_path.read_bytes()
    short = tmp_path / "short.weights"
    short.write_bytes(data[:-4])
    expected_bytes = len(data)
    with pytest.raises(WeightsError, match=rf"expected {expected_bytes} bytes .* found {expected_bytes - 4} bytes"
                                           rf".* 4 bytes short and ends inside layer 19 \(\[convolutional\] at line"):
        load_darknet(cfg_path, short)
    ragged = tmp_path / "ragged.weights"
    ragged.write_bytes(data[:-2])
    with pytest.raises(WeightsError, match="not a whole number of float32 values"):
        load_darknet(cfg_path, ragged)


def test_oversized_file_is_an_error(tiny_darknet, tmp_path):
    cfg_path, weights_path, _ = tiny_darknet
    data = weights_path.read_bytes()
    long = tmp_path / "long.weights"
    long.write_bytes(data + b"\0" * 8)
    with pytest.raises(WeightsError, match=rf"expected {len(data)} bytes .* found {len(data) + 8} bytes .* 8 bytes "
                                           rf"left over"):
        load_darknet(cfg_path, long)


def test_cfg_weights_mismatch_is_an_error(tiny_darknet, darknet_dir):
    _, weights_path, _ = tiny_darknet
    with pytest.raises(WeightsError, match=r"expected 35434956 bytes .* for the 13 convolution layers"):
        load_darknet(darknet_dir / "cfg" / "yolov3-tiny.cfg", weights_path)
    with pytest.raises(FileNotFoundError, match="nothing.weights"):
        load_darknet(darknet_dir / "cfg" / "yolov3-tiny.cfg", weights_path.parent / "nothing.weights")


def test_export_round_trip_is_byte_identical_and_runs_in_opencv(read_net_from_darknet, tiny_darknet, tiny_cfg, tmp_path,
                                                                 rng):
    cfg_path, weights_path, _ = tiny_darknet
    model = load_darknet(cfg_path, weights_path)
    path = tmp_path / "mini.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    exported_weights, exported_cfg = save_darknet(loaded, tmp_path / "out" / "exported.weights")
    assert exported_cfg == tmp_path / "out" / "exported.cfg"
    assert exported_weights.read_bytes() == weights_path.read_bytes()
    assert exported_cfg.read_text() == tiny_cfg
    images = rng.random((1, 64, 64, 3), dtype=np.float32)
    assert max(_max_differences(read_net_from_darknet, loaded, exported_cfg, exported_weights, images)) < 1e-4


def test_export_of_a_keras_trained_model_loads_back(tmp_path, rng):
    """A model built in Keras (no darknet header) is written with darknet's 0.2.0 header and reloads exactly."""
    model = build_yolov3_tiny(num_classes=3, class_names=["a", "b", "c"])
    model.get_layer("batchnorm_0").moving_variance.assign(rng.uniform(0.5, 2, 16).astype("float32"))
    weights_path, cfg_path = save_darknet(model, tmp_path / "tiny3.weights")
    assert read_header(weights_path.read_bytes()[:20]) == {"major": 0, "minor": 2, "revision": 0, "seen": 0}
    again = load_darknet(cfg_path, weights_path)
    for name in ("conv_0", "batchnorm_0", "conv_22"):
        for a, b in zip(model.get_layer(name).get_weights(), again.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_skip_mismatched_heads_loads_everything_but_heads(darknet_dir, tmp_path):
    cfg_path = darknet_dir / "cfg" / "yolov3-tiny.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "coco.weights", seed=1)
    coco = load_darknet(cfg_path, weights_path)
    model = build_yolov3_tiny(num_classes=3)
    initial_head = model.get_layer("conv_15").get_weights()
    with pytest.raises(WeightsError, match="bytes left over"):
        load_darknet_weights(model, weights_path)
    report = load_darknet_weights(model, weights_path, skip_mismatched_heads=True)
    assert report["file_num_classes"] == 80
    assert report["skipped_layers"] == ["conv_15", "conv_22"]
    assert len(report["loaded_layers"]) == 11 and "conv_21" in report["loaded_layers"]
    for name in ("conv_0", "batchnorm_14", "conv_21", "batchnorm_21"):
        for a, b in zip(model.get_layer(name).get_weights(), coco.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("conv_15").get_weights(), initial_head):
        np.testing.assert_array_equal(a, b)


def test_backbone_only_file(darknet_dir, tmp_path):
    cfg_path = darknet_dir / "cfg" / "yolov3-tiny.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "full.weights", seed=2)
    layers = convolution_weights(prepare_sections(cfg_path)[0])
    # yolov3-tiny.conv.15 holds layers 0-14: the first 9 convolutions.
    cut = 20 + 4 * sum(layer.count for layer in layers[:9])
    partial = tmp_path / "yolov3-tiny.conv.15"
    partial.write_bytes(weights_path.read_bytes()[:cut])
    full = load_darknet(cfg_path, weights_path)
    model = build_from_cfg(cfg_path)
    report = load_darknet_weights(model, partial, backbone_only=True)
    assert report["loaded_layers"] == [f"conv_{index}" for index in (0, 2, 4, 6, 8, 10, 12, 13, 14)]
    assert report["skipped_layers"] == ["conv_15", "conv_18", "conv_21", "conv_22"]
    for a, b in zip(model.get_layer("batchnorm_14").get_weights(), full.get_layer("batchnorm_14").get_weights()):
        np.testing.assert_array_equal(a, b)
    ragged = tmp_path / "ragged.conv"
    ragged.write_bytes(weights_path.read_bytes()[:cut - 400])
    with pytest.raises(WeightsError, match=r"ends inside layer 14 .* 8 whole convolution layers"):
        load_darknet_weights(model, ragged, backbone_only=True)


def test_names_file(tmp_path, darknet_dir, tiny_darknet):
    names = read_names_file(darknet_dir / "coco.names")
    assert len(names) == 80 and names[0] == "person" and names[-1] == "toothbrush"
    cfg_path, weights_path, _ = tiny_darknet
    (tmp_path / "three.names").write_text("a\nb\nc\n")
    with pytest.raises(WeightsError, match=r"3 class names given, but .*mini.cfg has classes=2"):
        load_darknet(cfg_path, weights_path, class_names=tmp_path / "three.names")


@pytest.mark.slow
def test_darknet53_backbone_file_loads_into_yolov3(darknet_dir, tmp_path):
    """A darknet53.conv.74-sized prefix (162,482,580 bytes) fills the 52 Darknet-53 convolutions of a 3-class
    YOLOv3, i.e. every layer that backbone_layer_names lists."""
    from defi1.yolo.model import backbone_layer_names, build_yolov3

    cfg_path = darknet_dir / "cfg" / "yolov3.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "yolov3.weights", seed=4)
    partial = tmp_path / "darknet53.conv.74"
    partial.write_bytes(weights_path.read_bytes()[:162_482_580])
    model = build_yolov3(num_classes=3)
    report = load_darknet_weights(model, partial, backbone_only=True)
    assert len(report["loaded_layers"]) == 52 and report["loaded_layers"][-1] == "conv_73"
    backbone_convolutions = [name for name in backbone_layer_names(model) if name.startswith("conv_")]
    assert report["loaded_layers"] == backbone_convolutions
    full = load_darknet(cfg_path, weights_path)
    for a, b in zip(model.get_layer("batchnorm_73").get_weights(), full.get_layer("batchnorm_73").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backbone_only_rejects_a_full_file(darknet_dir, tmp_path):
    cfg_path = darknet_dir / "cfg" / "yolov3-tiny.cfg"
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "coco.weights", seed=5)
    with pytest.raises(WeightsError, match=r"more than the .* values of the 9 convolution layers before the first "
                                           r"head: not a backbone-only file"):
        load_darknet_weights(build_yolov3_tiny(num_classes=3), weights_path, backbone_only=True)
