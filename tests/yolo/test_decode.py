"""Decoding and post-processing: hand-set logits to a known box, encode -> decode round trip, NMS, letterbox undone."""

import math

import keras
import numpy as np
import pytest

from defi1.boxes import letterbox_geometry
from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_MASKS
from defi1.yolo.decode import decode_heads, decode_heads_numpy, postprocess
from defi1.yolo.heads import HeadSpec
from defi1.yolo.targets import encode_targets

pytestmark = pytest.mark.backend_agnostic


def logit(probability):
    return math.log(probability / (1 - probability))


def numpy_outputs(*tensors):
    return [keras.ops.convert_to_numpy(tensor) for tensor in tensors]


def test_hand_set_logits_decode_to_a_known_box():
    head = HeadSpec(anchors=[[10, 20]], stride=32, num_classes=2)
    raw = np.full((1, 2, 2, 7), -20.0, np.float32)
    # Cell x = 1, y = 0: centre ((0.5 + 1) * 32, (0.75 + 0) * 32) = (48, 24); size (10 * 2, 20 * 1) = (20, 20).
    raw[0, 0, 1] = [0.0, logit(0.75), math.log(2.0), 0.0, logit(0.8), logit(0.25), logit(0.9)]
    boxes, objectness, classes = numpy_outputs(*decode_heads([raw], [head], input_size=64))
    assert boxes.shape == (1, 4, 4) and objectness.shape == (1, 4) and classes.shape == (1, 4, 2)
    np.testing.assert_allclose(boxes[0, 1], [38, 14, 58, 34], atol=1e-4)
    assert objectness[0, 1] == pytest.approx(0.8, abs=1e-6)
    np.testing.assert_allclose(classes[0, 1], [0.25, 0.9], atol=1e-6)
    # Cell (x=0, y=1), logits -20: centre ((sigmoid(-20) + 0) * 32, (sigmoid(-20) + 1) * 32) ~ (0, 32), size ~ 0.
    np.testing.assert_allclose(boxes[0, 2], [0, 32, 0, 32], atol=1e-5)
    (detection,) = postprocess(boxes, objectness, classes, conf_threshold=0.5)
    np.testing.assert_allclose(detection.boxes, [[38, 14, 58, 34]], atol=1e-4)
    assert detection.scores == pytest.approx([0.72], abs=1e-6)
    assert detection.class_ids.tolist() == [1] and detection.class_names == ["1"]


def test_anchor_order_within_a_cell_and_heads_concatenate_in_order():
    heads = [HeadSpec(anchors=[[50, 50], [100, 40]], stride=32, num_classes=1),
             HeadSpec(anchors=[[8, 8]], stride=16, num_classes=1)]
    first = np.zeros((1, 1, 1, 12), np.float32)
    second = np.zeros((1, 2, 2, 6), np.float32)
    boxes, _, _ = numpy_outputs(*decode_heads([first, second], heads, input_size=32))
    assert boxes.shape == (1, 2 + 4, 4)
    np.testing.assert_allclose(boxes[0, :2], [[-9, -9, 41, 41], [-34, -4, 66, 36]], atol=1e-4)
    # Second head, rows (y, x): (0, 0), (0, 1), (1, 0), (1, 1): centres at 8 + 16 * x.
    np.testing.assert_allclose(boxes[0, 2:, 0] + 4, [8, 24, 8, 24], atol=1e-4)
    np.testing.assert_allclose(boxes[0, 2:, 1] + 4, [8, 8, 24, 24], atol=1e-4)


def test_huge_size_logits_are_clipped_not_infinite():
    head = HeadSpec(anchors=[[10, 10]], stride=32, num_classes=1)
    raw = np.full((1, 1, 1, 6), 1e4, np.float32)
    boxes, objectness, _ = numpy_outputs(*decode_heads([raw], [head], input_size=32))
    assert np.all(np.isfinite(boxes)) and boxes[0, 0, 2] - boxes[0, 0, 0] == pytest.approx(10 * 1000, rel=1e-4)
    assert objectness[0, 0] == 1.0


def test_grid_mismatch_with_input_size_is_an_error():
    head = HeadSpec(anchors=[[10, 10]], stride=32, num_classes=1)
    with pytest.raises(ValueError, match="2x2 grid, expected 3x3"):
        decode_heads([np.zeros((1, 2, 2, 6), np.float32)], [head], input_size=96)


def targets_to_logits(target, head, input_size, confident=12.0):
    """Invert the encoding: the raw logits that a perfect network would output for these targets."""
    grid = input_size // head.stride
    num_anchors = head.num_anchors
    cells = target[:, :grid * grid * num_anchors].reshape(len(target), grid, grid, num_anchors, -1)
    raw = np.zeros(cells.shape, np.float64)
    cell_x = np.arange(grid)[None, None, :, None]
    cell_y = np.arange(grid)[None, :, None, None]
    responsible = cells[..., 4] == 1
    offset_x = np.clip(cells[..., 0] / head.stride - cell_x, 1e-6, 1 - 1e-6)
    offset_y = np.clip(cells[..., 1] / head.stride - cell_y, 1e-6, 1 - 1e-6)
    raw[..., 0] = np.log(offset_x / (1 - offset_x))
    raw[..., 1] = np.log(offset_y / (1 - offset_y))
    anchors = head.anchors[None, None, None]
    raw[..., 2:4] = np.where(responsible[..., None], np.log(np.maximum(cells[..., 2:4], 1e-9) / anchors), 0.0)
    raw[..., 4] = np.where(responsible, confident, -confident)
    raw[..., 5:] = np.where(cells[..., 5:] == 1, confident, -confident)
    return raw.reshape(len(target), grid, grid, -1).astype(np.float32)


def test_encode_then_decode_gives_the_boxes_back():
    heads = [HeadSpec(anchors=YOLOV3_ANCHORS[mask], stride=stride, num_classes=3)
             for mask, stride in zip(YOLOV3_MASKS, (32, 16, 8))]
    boxes_list = [np.array([[10, 20, 40, 70], [100, 100, 300, 280], [200, 30, 216, 45]]),
                  np.array([[0, 0, 416, 416]]), np.zeros((0, 4))]
    class_ids_list = [np.array([0, 2, 1]), np.array([1]), np.zeros(0, int)]
    targets = encode_targets(boxes_list, class_ids_list, input_size=416, heads=heads)
    raw = [targets_to_logits(target, head, 416) for target, head in zip(targets, heads)]
    detections = postprocess(*decode_heads(raw, heads, input_size=416), conf_threshold=0.5)
    for detection, boxes, class_ids in zip(detections, boxes_list, class_ids_list):
        order = np.lexsort((detection.boxes[:, 1], detection.boxes[:, 0]))
        expected = np.lexsort((boxes[:, 1], boxes[:, 0]))
        np.testing.assert_allclose(detection.boxes[order], boxes[expected], atol=1e-3)
        assert detection.class_ids[order].tolist() == class_ids[expected].tolist()
        assert np.all(detection.scores > 0.99)


def test_postprocess_applies_per_class_nms_threshold_and_max_detections():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60], [70, 70, 80, 80]]],
                     np.float32)
    objectness = np.array([[0.9, 0.8, 0.7, 0.6, 0.2]], np.float32)
    classes = np.array([[[1, 0], [1, 0], [0, 1], [1, 0], [1, 0]]], np.float32)
    (detection,) = postprocess(boxes, objectness, classes, conf_threshold=0.25, iou_threshold=0.5,
                               class_names=["cat", "dog"])
    # Box 1 overlaps box 0 (IoU 81 / 119 = 0.68) in the same class: suppressed. Box 2 is another class: kept.
    # Box 4 scores 0.2 < 0.25: dropped.
    np.testing.assert_allclose(detection.boxes, [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(detection.scores, [0.9, 0.7, 0.6], atol=1e-6)
    assert detection.class_ids.tolist() == [0, 1, 0] and detection.class_names == ["cat", "dog", "cat"]
    (limited,) = postprocess(boxes, objectness, classes, conf_threshold=0.25, iou_threshold=0.5, max_detections=2)
    np.testing.assert_allclose(limited.scores, [0.9, 0.7], atol=1e-6)
    (loose,) = postprocess(boxes, objectness, classes, conf_threshold=0.25, iou_threshold=0.7)
    assert len(loose) == 4


def test_multi_label_scores_each_class_above_threshold():
    boxes = np.array([[[0, 0, 10, 10]]], np.float32)
    (single,) = postprocess(boxes, np.array([[1.0]]), np.array([[[0.6, 0.9]]]), conf_threshold=0.5)
    (multi,) = postprocess(boxes, np.array([[1.0]]), np.array([[[0.6, 0.9]]]), conf_threshold=0.5, multi_label=True)
    assert single.class_ids.tolist() == [1]
    assert multi.class_ids.tolist() == [1, 0] and multi.scores == pytest.approx([0.9, 0.6])


def test_postprocess_undoes_the_letterbox_per_image():
    # Image 0: 200 x 100 into 64 x 64 -> scale 0.32, 64 x 32 at pad_y 16. Image 1: 50 x 100 -> scale 0.64, 32 x 64
    # at pad_x 16.
    letterboxes = [letterbox_geometry(200, 100, 64, 64), letterbox_geometry(50, 100, 64, 64)]
    boxes = np.array([[[16, 24, 48, 40]], [[20, 0, 36, 64]]], np.float32)
    detections = postprocess(boxes, np.ones((2, 1)), np.ones((2, 1, 1)), letterboxes=letterboxes,
                             image_sizes=[(200, 100), (50, 100)], conf_threshold=0.5)
    np.testing.assert_allclose(detections[0].boxes, [[50, 25, 150, 75]], atol=1e-4)
    np.testing.assert_allclose(detections[1].boxes, [[6.25, 0, 31.25, 100]], atol=1e-4)
    assert detections[0].image_size == (200, 100) and detections[1].image_size == (50, 100)
    # Boxes reaching into the padding are clipped to the image.
    (clipped,) = postprocess(np.array([[[0, 0, 64, 64]]], np.float32), np.ones((1, 1)), np.ones((1, 1, 1)),
                             letterboxes=letterboxes[:1], image_sizes=[(200, 100)], conf_threshold=0.5)
    np.testing.assert_allclose(clipped.boxes, [[0, 0, 200, 100]], atol=1e-4)
    # A box entirely in the padding (network rows 0 to 16 of image 0) is dropped.
    (dropped,) = postprocess(np.array([[[10, 2, 30, 14], [10, 20, 30, 30]]], np.float32), np.ones((1, 2)),
                             np.ones((1, 2, 1)), letterboxes=letterboxes[:1], image_sizes=[(200, 100)],
                             conf_threshold=0.5)
    np.testing.assert_allclose(dropped.boxes, [[31.25, 12.5, 93.75, 43.75]], atol=1e-4)


def test_empty_predictions_give_empty_detections():
    (detection,) = postprocess(np.zeros((1, 3, 4)), np.zeros((1, 3)), np.zeros((1, 3, 2)), conf_threshold=0.25)
    assert len(detection) == 0 and detection.boxes.shape == (0, 4) and detection.class_ids.dtype == np.int64


def test_numpy_decode_equals_keras_decode():
    rng = np.random.default_rng(3)
    heads = [HeadSpec(anchors=YOLOV3_ANCHORS[mask], stride=stride, num_classes=3)
             for mask, stride in zip(YOLOV3_MASKS, (32, 16, 8))]
    # 96 wide x 64 high: grids 2x3, 4x6, 8x12; logits up to +-30 and one huge size logit (clipped, not infinite).
    raw = [rng.normal(0, 10, (2, 64 // head.stride, 96 // head.stride, 3 * 8)).astype(np.float32) for head in heads]
    raw[0][1, 0, 0, 2] = 1e4
    expected = numpy_outputs(*decode_heads(raw, heads, input_size=(96, 64)))
    found = decode_heads_numpy(raw, heads, input_size=(96, 64))
    assert found[0].shape == (2, (6 + 24 + 96) * 3, 4)
    for values, reference in zip(found, expected):
        assert values.dtype == np.float32
        np.testing.assert_allclose(values, reference, rtol=1e-5, atol=1e-3)
    # The huge logit: 1000 anchors wide (anchor 0 of the stride-32 head is 116 x 90), centred in its cell.
    assert found[0][1, 0, 2] - found[0][1, 0, 0] == pytest.approx(116 * 1000, rel=1e-5)
    # The hand-set box of the first test, decoded on the host.
    head = HeadSpec(anchors=[[10, 20]], stride=32, num_classes=2)
    single = np.full((1, 2, 2, 7), -20.0, np.float32)
    single[0, 0, 1] = [0.0, logit(0.75), math.log(2.0), 0.0, logit(0.8), logit(0.25), logit(0.9)]
    boxes, objectness, classes = decode_heads_numpy([single], [head], input_size=64)
    np.testing.assert_allclose(boxes[0, 1], [38, 14, 58, 34], atol=1e-4)
    assert objectness[0, 1] == pytest.approx(0.8, abs=1e-6)
    np.testing.assert_allclose(classes[0, 1], [0.25, 0.9], atol=1e-6)


def test_numpy_decode_checks_grid_and_channels():
    head = HeadSpec(anchors=[[10, 10]], stride=32, num_classes=1)
    with pytest.raises(ValueError, match="2x2 grid, expected 3x3"):
        decode_heads_numpy([np.zeros((1, 2, 2, 6), np.float32)], [head], input_size=96)
    with pytest.raises(ValueError, match="7 channels, expected 1 anchors x \\(5 \\+ 1 classes\\)"):
        decode_heads_numpy([np.zeros((1, 2, 2, 7), np.float32)], [head])
    with pytest.raises(ValueError, match="1 head outputs for 2 heads"):
        decode_heads_numpy([np.zeros((1, 2, 2, 6), np.float32)], [head, head])


def test_numpy_decode_of_the_rows_above_an_objectness_gives_the_same_detections():
    rng = np.random.default_rng(5)
    heads = [HeadSpec(anchors=YOLOV3_ANCHORS[mask], stride=stride, num_classes=3)
             for mask, stride in zip(YOLOV3_MASKS[:2], (32, 16))]
    raw = [rng.normal(0, 3, (2, 128 // head.stride, 128 // head.stride, 3 * 8)).astype(np.float32) for head in heads]
    full = decode_heads_numpy(raw, heads, input_size=128)
    threshold = 0.9
    # Rows kept: above the threshold in at least one of the two images, counted by hand from the logits.
    above = np.concatenate([(1 / (1 + np.exp(-head_raw.reshape(2, -1, 8)[..., 4])) > threshold).any(axis=0)
                            for head_raw in raw])
    assert 0 < above.sum() < len(above)
    filtered = decode_heads_numpy(raw, heads, input_size=128, min_objectness=threshold)
    for values, reference in zip(filtered, full):
        np.testing.assert_array_equal(values, reference[:, above])
    for conf_threshold in (threshold, 0.95):
        expected = postprocess(*full, conf_threshold=conf_threshold)
        found = postprocess(*filtered, conf_threshold=conf_threshold)
        for detection, reference in zip(found, expected):
            assert len(reference) > 0
            np.testing.assert_array_equal(detection.boxes, reference.boxes)
            np.testing.assert_array_equal(detection.scores, reference.scores)
            np.testing.assert_array_equal(detection.class_ids, reference.class_ids)
