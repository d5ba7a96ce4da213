"""Tests of defi1.realtime.onnx_writer: the hand-written protobuf is a valid ONNX model that computes the Keras
model's heads (ONNX Runtime and OpenCV's DNN module), and models it cannot write are refused by name."""

import importlib.util

import numpy as np
import pytest

from defi1.realtime.export import keras_outputs
from defi1.realtime.onnx_writer import _Protobuf, onnx_graph_bytes, write_onnx


def test_protobuf_varints_of_known_values():
    assert _Protobuf.varint(1) == b"\x01" and _Protobuf.varint(300) == b"\xac\x02"  # protobuf's documented example
    assert _Protobuf.varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes
    assert _Protobuf.data(2, "ab") == b"\x12\x02ab"


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="the onnx package is not installed")
def test_written_model_passes_the_onnx_checker(mini_model, tmp_path):
    import onnx

    model = onnx.load(str(write_onnx(mini_model, tmp_path / "mini.onnx")))
    onnx.checker.check_model(model, full_check=True)
    assert [item.name for item in model.graph.input] == ["images"]
    assert [item.name for item in model.graph.output] == ["head_0", "head_1"]
    assert {node.op_type for node in model.graph.node} == {"Transpose", "Conv", "LeakyRelu", "MaxPool", "Resize",
                                                           "Concat", "Add"}


@pytest.mark.parametrize("runtime", ["opencv", "onnxruntime"])
def test_written_model_computes_the_keras_heads(mini_model, tmp_path, runtime):
    if runtime == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    path = write_onnx(mini_model, tmp_path / "mini.onnx", input_size=96)  # another size than the model's 64
    batch = np.random.default_rng(1).random((1, 96, 96, 3), dtype=np.float32)
    if runtime == "opencv":
        import cv2

        net = cv2.dnn.readNetFromONNX(str(path))
        net.setInput(batch)
        found = net.forward(["head_0", "head_1"])
    else:
        import onnxruntime

        found = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": batch})
    for reference, heads in zip(keras_outputs(mini_model, batch), found, strict=True):
        assert heads.shape == reference.shape
        assert np.abs(heads - reference).max() < 1e-4


def test_a_model_without_a_darknet_cfg_is_refused():
    import keras

    from defi1.yolo.layers import YoloHead

    inputs = keras.Input((None, None, 3))
    outputs = YoloHead(anchors=[[10, 10]], num_classes=1, stride=32)(keras.layers.Conv2D(6, 32, strides=32)(inputs))
    with pytest.raises(ValueError, match="no darknet cfg recorded"):
        onnx_graph_bytes(keras.Model(inputs, [outputs], name="plain"))
