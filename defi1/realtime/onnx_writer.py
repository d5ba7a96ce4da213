"""defi1's own ONNX writer for its YOLO models: no ``onnx``, ``tf2onnx`` or ``protobuf`` package needed.

A defi1 YOLO model carries its darknet cfg, so the network is a short list of darknet layers
(:func:`defi1.yolo.model.model_plan`). :func:`write_onnx` writes that list as an ONNX graph (opset 13) with the batch
norm folded into the convolutions (:func:`defi1.yolo.inference.fold_batchnorm`), using only the operators every
ONNX runtime supports: ``Conv`` (bias = folded batch norm), ``LeakyRelu`` / ``Relu`` / ``Sigmoid``, ``MaxPool``
(darknet's padding, padded cells never chosen), ``Resize`` (nearest, darknet's ``[upsample]``), ``Concat``
(``[route]``), ``Add`` (``[shortcut]``) and ``Transpose``.

The graph keeps the defi1 engine contract (:mod:`defi1.realtime.engines`): input ``images``
``(batch, height, width, 3)`` float32 RGB in ``[0, 1]`` (NHWC; height and width fixed at export, batch free),
outputs ``head_0``, ``head_1`` ... ``(batch, height / stride, width / stride, anchors * (5 + classes))`` raw
logits, in the model's output order. OpenCV's DNN module (``cv2.dnn.readNetFromONNX``, in the base install, OpenCV
4 and 5) and ONNX Runtime both run it.

The file is a protobuf message written by hand (:class:`_Protobuf`): field numbers from ONNX's ``onnx.proto``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from defi1.files import AtomicOutput, ensure_output_dir

#: ONNX operator set and IR version written (IR 7 = ONNX 1.8; every runtime of the last years reads it).
OPSET = 13
IR_VERSION = 7
#: Bump when the graph written changes, so that cached exports are written again (:mod:`defi1.realtime.engines`).
WRITER_VERSION = 1
INPUT_NAME = "images"

_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTRIBUTE_FLOAT, _ATTRIBUTE_INT, _ATTRIBUTE_STRING, _ATTRIBUTE_INTS = 1, 2, 3, 7  # AttributeProto.AttributeType


class _Protobuf:
    """The protobuf wire format, as much as ONNX needs: varints, length-delimited fields, 32-bit floats."""

    @staticmethod
    def varint(value: int) -> bytes:
        value &= (1 << 64) - 1  # negative int64 values: two's complement on 10 bytes
        out = bytearray()
        while True:
            low, value = value & 0x7F, value >> 7
            out.append(low | (0x80 if value else 0))
            if not value:
                return bytes(out)

    @classmethod
    def integer(cls, field: int, value: int) -> bytes:
        return cls.varint(field << 3) + cls.varint(int(value))

    @classmethod
    def data(cls, field: int, value) -> bytes:
        value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return cls.varint(field << 3 | 2) + cls.varint(len(value)) + value

    @classmethod
    def message(cls, field: int, *parts: bytes) -> bytes:
        return cls.data(field, b"".join(parts))

    @classmethod
    def float32(cls, field: int, value: float) -> bytes:
        return cls.varint(field << 3 | 5) + struct.pack("<f", float(value))


_pb = _Protobuf


def _attribute(name: str, value) -> bytes:
    """An ``AttributeProto`` (NodeProto field 5): int, float, string or list of ints."""
    if isinstance(value, (list, tuple)):
        body = [_pb.integer(20, _ATTRIBUTE_INTS)] + [_pb.integer(8, item) for item in value]
    elif isinstance(value, float):
        body = [_pb.integer(20, _ATTRIBUTE_FLOAT), _pb.float32(2, value)]
    elif isinstance(value, str):
        body = [_pb.integer(20, _ATTRIBUTE_STRING), _pb.data(4, value)]
    else:
        body = [_pb.integer(20, _ATTRIBUTE_INT), _pb.integer(3, value)]
    return _pb.message(5, _pb.data(1, name), *body)


def _node(op_type: str, inputs, outputs, name: str, **attributes) -> bytes:
    """A ``NodeProto`` (GraphProto field 1)."""
    return _pb.message(1, *[_pb.data(1, item) for item in inputs], *[_pb.data(2, item) for item in outputs],
                       _pb.data(3, name), _pb.data(4, op_type),
                       *[_attribute(key, value) for key, value in attributes.items()])


def _initializer(name: str, array: np.ndarray) -> bytes:
    """A ``TensorProto`` (GraphProto field 5): float32 or int64, little-endian raw data."""
    array = np.asarray(array)
    data_type = _INT64 if array.dtype.kind in "iu" else _FLOAT
    array = np.ascontiguousarray(array, dtype="<i8" if data_type == _INT64 else "<f4")
    return _pb.message(5, *[_pb.integer(1, side) for side in array.shape], _pb.integer(2, data_type),
                       _pb.data(8, name), _pb.data(9, array.tobytes()))


def _value_info(field: int, name: str, shape) -> bytes:
    """A float32 ``ValueInfoProto`` (graph input: field 11, output: field 12); a ``str`` side is symbolic."""
    dimensions = [_pb.message(1, _pb.data(2, side) if isinstance(side, str) else _pb.integer(1, side))
                  for side in shape]
    tensor_type = _pb.message(1, _pb.integer(1, _FLOAT), _pb.message(2, *dimensions))
    return _pb.message(field, _pb.data(1, name), _pb.message(2, tensor_type))


def _maxpool_pads(side: int, size: int, stride: int, padding: int) -> tuple[int, int, int]:
    """Darknet's max-pool geometry on one axis: ``(before, after, output side)``
    (:class:`defi1.yolo.layers.DarknetMaxPool`)."""
    output = (side + padding - size) // stride + 1
    before = padding // 2
    after = max(0, (output - 1) * stride + size - side - before)
    return before, after, output


def onnx_graph_bytes(model, *, input_size=None) -> bytes:
    """The ONNX ``ModelProto`` of a defi1 YOLO model (see the module docstring), as bytes.

    Args:
        model: a YOLO ``keras.Model`` built by :mod:`defi1.yolo.model` (from a cfg, or converted from darknet).
        input_size: ``(width, height)`` or a side, multiples of the network stride (default: the model's).
    Raises:
        ValueError: a model without a darknet cfg, an input size that is not a multiple of the largest stride, or a
            layer or activation the writer does not know.
    """
    import keras

    from defi1.yolo.heads import grid_shape, input_width_height
    from defi1.yolo.inference import fold_batchnorm
    from defi1.yolo.layers import yolo_heads
    from defi1.yolo.model import LEAKY_SLOPE, model_plan

    heads = yolo_heads(model)
    if not heads[0].cfg_text:
        raise ValueError(f"model {model.name}: no darknet cfg recorded in its first YoloHead; the ONNX writer "
                         "needs a model built by defi1.yolo.model")
    width, height = input_width_height(input_size if input_size is not None else heads[0].input_size)
    for head in heads:
        try:
            grid_shape((width, height), head.stride)
        except ValueError as error:
            raise ValueError(f"ONNX {error}") from None
    folded = fold_batchnorm(model)
    nodes, initializers = [], []
    nodes.append(_node("Transpose", [INPUT_NAME], ["input_nchw"], "input_nchw", perm=[0, 3, 1, 2]))
    names, sides = {-1: "input_nchw"}, {-1: (height, width)}
    outputs = []
    for plan in model_plan(model):
        section, index, kind = plan.section, plan.index, plan.type
        previous = plan.inputs[0] if plan.inputs else index - 1
        source, (side_h, side_w) = names[previous], sides[previous]
        name = f"layer_{index}"
        if kind == "convolutional":
            layer = folded.get_layer(f"conv_{index}")
            kernel, bias = (keras.ops.convert_to_numpy(weight) for weight in layer.weights)
            size, stride = int(kernel.shape[0]), int(layer.strides[0])
            padding = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
            initializers += [_initializer(f"{name}_weight", kernel.transpose(3, 2, 0, 1)),
                             _initializer(f"{name}_bias", bias)]
            activation = section.options.get("activation", "logistic")
            convolution_output = name if activation == "linear" else f"{name}_conv"
            nodes.append(_node("Conv", [source, f"{name}_weight", f"{name}_bias"], [convolution_output],
                               convolution_output, kernel_shape=[size, size], strides=[stride, stride],
                               pads=[padding] * 4))
            operators = {"leaky": ("LeakyRelu", {"alpha": float(LEAKY_SLOPE)}), "relu": ("Relu", {}),
                         "logistic": ("Sigmoid", {})}
            if activation in operators:
                op_type, attributes = operators[activation]
                nodes.append(_node(op_type, [convolution_output], [name], name, **attributes))
            elif activation != "linear":
                raise ValueError(f"layer {index}: activation {activation!r} not supported by the ONNX writer")
            sides[index] = ((side_h + 2 * padding - size) // stride + 1, (side_w + 2 * padding - size) // stride + 1)
        elif kind == "maxpool":
            size, stride = section.get_int("size", 1), section.get_int("stride", 1)
            padding = section.get_int("padding", size - 1)
            top, bottom, out_h = _maxpool_pads(side_h, size, stride, padding)
            left, right, out_w = _maxpool_pads(side_w, size, stride, padding)
            nodes.append(_node("MaxPool", [source], [name], name, kernel_shape=[size, size], strides=[stride, stride],
                               pads=[top, left, bottom, right]))
            sides[index] = (out_h, out_w)
        elif kind == "upsample":
            factor = section.get_int("stride", 2)
            initializers.append(_initializer(f"{name}_scales", np.array([1, 1, factor, factor], np.float32)))
            nodes.append(_node("Resize", [source, "", f"{name}_scales"], [name], name, mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
            sides[index] = (side_h * factor, side_w * factor)
        elif kind == "route":
            if len(plan.inputs) == 1:
                names[index], sides[index] = source, sides[previous]
                continue
            nodes.append(_node("Concat", [names[target] for target in plan.inputs], [name], name, axis=1))
            sides[index] = sides[previous]
        elif kind == "shortcut":
            nodes.append(_node("Add", [names[target] for target in plan.inputs], [name], name))
            sides[index] = sides[previous]
        elif kind == "yolo":
            head = f"head_{len(outputs)}"
            nodes.append(_node("Transpose", [source], [head], head, perm=[0, 2, 3, 1]))
            outputs.append(_value_info(12, head, ["batch", side_h, side_w, plan.channels]))
            names[index], sides[index] = head, sides[previous]
            continue
        else:
            raise ValueError(f"layer {index}: [{kind}] not supported by the ONNX writer")
        names[index] = name
    graph = [*nodes, _pb.data(2, model.name or "yolo"), *initializers,
             _value_info(11, INPUT_NAME, ["batch", height, width, 3]), *outputs]
    return b"".join([_pb.integer(1, IR_VERSION), _pb.data(2, "defi1"), _pb.data(3, str(WRITER_VERSION)),
                     _pb.message(7, *graph), _pb.message(8, _pb.data(1, ""), _pb.integer(2, OPSET))])


def write_onnx(model, out_path, *, input_size=None) -> Path:
    """Write :func:`onnx_graph_bytes` to ``out_path`` atomically (:class:`defi1.files.AtomicOutput`); returns it."""
    out_path = Path(out_path)
    ensure_output_dir(out_path.parent)
    data = onnx_graph_bytes(model, input_size=input_size)
    with AtomicOutput(out_path) as temporary:
        Path(temporary).write_bytes(data)
    return out_path
