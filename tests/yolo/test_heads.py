"""Tests of defi1.yolo.heads: what each YOLO head tells the stages after the network, and its grid."""

import numpy as np
import pytest

from defi1.yolo.anchors import YOLOV3_TINY_ANCHORS, YOLOV3_TINY_MASKS
from defi1.yolo.heads import HeadSpec, grid_shape, head_spec, head_specs, input_width_height

pytestmark = pytest.mark.backend_agnostic


def test_head_spec_normalises_and_checks_its_fields():
    spec = HeadSpec(anchors=[10, 14, 23, 27], stride="16", num_classes=3.0, ignore_threshold="0.7",
                    class_names=["a", "b", "c"])
    np.testing.assert_array_equal(spec.anchors, [[10, 14], [23, 27]])
    assert spec.anchors.dtype == np.float64 and spec.num_anchors == 2
    assert (spec.stride, spec.num_classes, spec.ignore_threshold, spec.class_names) == (16, 3, 0.7, ("a", "b", "c"))
    assert head_spec(spec) is spec
    with pytest.raises(ValueError, match="at least one anchor of positive size"):
        HeadSpec(anchors=np.zeros((0, 2)), stride=8, num_classes=1)
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        HeadSpec(anchors=[[8, 8]], stride=0, num_classes=1)
    with pytest.raises(ValueError, match="at least one class, got num_classes=0"):
        HeadSpec(anchors=[[8, 8]], stride=8, num_classes=0)


def test_grid_shape_and_input_sides():
    assert input_width_height(416) == (416, 416) and input_width_height((320, 256)) == (320, 256)
    assert grid_shape(416, 32) == (13, 13)
    assert grid_shape((320, 256), 16) == (16, 20)  # (rows, columns) = (height / stride, width / stride)
    with pytest.raises(ValueError, match="input size 100x100 is not a multiple of the head stride 32"):
        grid_shape(100, 32)


def test_head_specs_read_the_yolo_head_layers():
    import keras

    from defi1.yolo.layers import YoloHead

    inputs = keras.Input((None, None, 3))
    outputs = []
    for index, (mask, stride) in enumerate(zip(YOLOV3_TINY_MASKS, (32, 16))):
        features = keras.layers.Conv2D(3 * 7, 1, strides=stride)(inputs)
        outputs.append(YoloHead(anchors=YOLOV3_TINY_ANCHORS[mask].tolist(), num_classes=2, stride=stride,
                                head_index=index, ignore_threshold=0.7, class_names=["a", "b"])(features))
    specs = head_specs(keras.Model(inputs, outputs))
    assert [spec.stride for spec in specs] == [32, 16]
    np.testing.assert_allclose(specs[1].anchors, [[10, 14], [23, 27], [37, 58]])
    assert specs[0].ignore_threshold == 0.7 and specs[0].class_names == ("a", "b") and specs[0].num_classes == 2
