"""Box utilities of defi1.boxes: hand-computed intersections and IoU, the overlap rule, conversions, NMS on constructed
boxes, letterbox and its inverse."""

import numpy as np
import pytest

from defi1.boxes import (box_area, box_intersection, box_iou, clip_boxes, cxcywh_from_xyxy, letterbox_geometry,
                         letterbox_image, non_max_suppression, overlaps_too_much, wh_iou, xyxy_from_cxcywh)

pytestmark = pytest.mark.backend_agnostic


def test_iou_of_hand_computed_boxes():
    boxes_a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    boxes_b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [2, 2, 4, 4], [10, 0, 20, 10], [20, 20, 30, 30]])
    iou = box_iou(boxes_a, boxes_b)
    assert iou.shape == (2, 5)
    # overlap 5x5 = 25, union 100 + 100 - 25 = 175; identical; contained 4 / 100; touching edge; disjoint.
    np.testing.assert_allclose(iou[0], [25 / 175, 1.0, 0.04, 0.0, 0.0])
    np.testing.assert_allclose(iou[1], iou[0])
    # Non-integer, non-square: [0, 0, 4, 2] vs [1, 1, 5, 4]: overlap 3 x 1 = 3, union 8 + 12 - 3 = 17.
    assert box_iou([[0, 0, 4, 2]], [[1, 1, 5, 4]])[0, 0] == pytest.approx(3 / 17)
    # Zero-area boxes: IoU 0, never NaN.
    assert box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0] == 0.0
    assert box_iou(np.zeros((0, 4)), boxes_b).shape == (0, 5)


def test_wh_iou_and_area():
    # [10, 20] vs [20, 10] sharing a centre: overlap 10 x 10 = 100, union 200 + 200 - 100 = 300.
    np.testing.assert_allclose(wh_iou([[10, 20]], [[20, 10], [10, 20], [5, 10]]), [[1 / 3, 1.0, 0.25]])
    np.testing.assert_allclose(box_area([[0, 0, 4, 3], [5, 5, 2, 8]]), [12, 0])


def test_conversions_both_ways_on_the_course_example():
    # The course's box (6, 21)-(293, 202) of a 300 x 208 image is "0 0.498333 0.536058 0.956667 0.870192".
    centre_size = cxcywh_from_xyxy([[6, 21, 293, 202]])
    np.testing.assert_allclose(centre_size, [[149.5, 111.5, 287, 181]])
    np.testing.assert_allclose(centre_size / [300, 208, 300, 208], [[0.498333, 0.536058, 0.956667, 0.870192]],
                               atol=5e-7)
    np.testing.assert_allclose(xyxy_from_cxcywh(centre_size), [[6, 21, 293, 202]])


def test_clip_boxes():
    np.testing.assert_allclose(clip_boxes([[-5, 10, 120, 90]], 100, 80), [[0, 10, 100, 80]])


def test_nms_on_constructed_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10], [21, 21, 31, 31]])
    scores = np.array([0.6, 0.9, 0.5, 0.3, 0.7])
    # Box 1 (0.9) suppresses box 0 (IoU 90 / 110 = 0.82) and box 3 (same as 0); box 4 (0.7) suppresses box 2
    # (IoU 81 / 119 = 0.68).
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [1, 4]
    # With a threshold above 0.82 nothing at IoU 0.82 or 0.68 is suppressed, but box 3 duplicates box 0 (IoU 1).
    assert non_max_suppression(boxes, scores, 0.85).tolist() == [1, 4, 0, 2]
    # Per class: boxes of different classes never suppress each other.
    class_ids = np.array([0, 1, 0, 0, 1])
    assert non_max_suppression(boxes, scores, 0.5, class_ids=class_ids).tolist() == [1, 4, 0, 2]
    assert non_max_suppression(boxes, scores, 0.5, class_ids=class_ids, max_detections=3).tolist() == [1, 4, 0]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_with_zero_max_detections_keeps_nothing():
    assert non_max_suppression([[0, 0, 1, 1]], [0.9], 0.5, max_detections=0).tolist() == []


@pytest.mark.parametrize("size, target, expected", [
    # 200 x 100 into 416: scale 2.08, 416 x 208, padded 104 above and below.
    ((200, 100), (416, 416), (2.08, 0, 104, 416, 208)),
    # 100 x 300 into 416: scale 1.38667, width round(138.67) = 139, pad (416 - 139) // 2 = 138.
    ((100, 300), (416, 416), (416 / 300, 138, 0, 139, 416)),
    # 640 x 480 into a non-square 416 x 256: scale min(0.65, 0.533) = 0.533, 341 x 256, pad_x (416 - 341) // 2.
    ((640, 480), (416, 256), (256 / 480, 37, 0, 341, 256)),
])
def test_letterbox_geometry_on_non_square_images(size, target, expected):
    geometry = letterbox_geometry(*size, *target)
    scale, pad_x, pad_y, resized_width, resized_height = expected
    assert geometry.scale == pytest.approx(scale)
    assert (geometry.pad_x, geometry.pad_y, geometry.resized_width, geometry.resized_height) == (
        pad_x, pad_y, resized_width, resized_height)
    boxes = np.array([[0, 0, size[0], size[1]], [10.5, 20.25, 60, 90]])
    network = geometry.to_network(boxes)
    np.testing.assert_allclose(network[0], [pad_x, pad_y, pad_x + size[0] * scale, pad_y + size[1] * scale])
    np.testing.assert_allclose(geometry.to_image(network), boxes, atol=1e-9)


def test_letterbox_image_places_the_resized_image_on_grey():
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 255
    canvas, geometry = letterbox_image(image, 64)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8
    assert (geometry.resized_width, geometry.resized_height, geometry.pad_y) == (64, 32, 16)
    assert np.all(canvas[:16] == 128) and np.all(canvas[48:] == 128)
    assert np.all(canvas[16:48] == [255, 0, 0])
    with pytest.raises(ValueError, match="cannot letterbox an image of size 0x10"):
        letterbox_geometry(0, 10, 64)


def test_non_max_suppression_equals_the_greedy_iou_matrix_reference():
    """Oracle: greedy NMS over the full box_iou matrix (the textbook algorithm) on random boxes, with classes,
    max_detections, zero-area boxes and tied scores."""
    import numpy as np

    from defi1.boxes import box_iou, non_max_suppression

    def reference(boxes, scores, threshold, class_ids, max_detections):
        if class_ids is not None:
            boxes = boxes + (boxes.max() - boxes.min() + 1.0) * class_ids[:, None]
        order = np.argsort(-scores, kind="stable")
        iou = box_iou(boxes[order], boxes[order])
        suppressed, kept = np.zeros(len(order), bool), []
        for position in range(len(order)):
            if suppressed[position]:
                continue
            kept.append(position)
            if max_detections is not None and len(kept) >= max_detections:
                break
            suppressed |= iou[position] > threshold
        return order[np.asarray(kept, dtype=np.int64)]

    rng = np.random.default_rng(0)
    for trial in range(60):
        count = int(rng.integers(1, 200))
        corner = rng.uniform(0, 100, (count, 2))
        size = rng.uniform(0, 40, (count, 2)) * (rng.random((count, 1)) > 0.05)
        boxes = np.concatenate([corner, corner + size], axis=1)
        scores = rng.random(count).round(2)
        class_ids = rng.integers(0, 3, count) if trial % 2 else None
        max_detections = None if trial % 3 else int(rng.integers(1, 20))
        threshold = float(rng.choice([0.0, 0.3, 0.45, 0.7, 1.0]))
        np.testing.assert_array_equal(
            non_max_suppression(boxes, scores, threshold, class_ids=class_ids, max_detections=max_detections),
            reference(boxes, scores, threshold, class_ids, max_detections))


def test_intersection_of_hand_computed_boxes():
    # [0, 0, 10, 10] and [5, 5, 15, 20]: overlap [5, 5, 10, 10], area 25; [20, 20, 30, 30] does not overlap.
    np.testing.assert_array_equal(box_intersection([[0, 0, 10, 10]], [[5, 5, 15, 20], [20, 20, 30, 30]]), [[25, 0]])
    assert box_intersection(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_overlaps_too_much_by_iou_or_by_hiding_a_smaller_box():
    earlier = [[0, 0, 10, 10]]
    assert not overlaps_too_much(np.array([20, 20, 30, 30]), earlier, max_iou=0.3)
    # [5, 0, 15, 10]: IoU 50 / 150 = 0.33 > 0.3, and half of the earlier box hidden (not more): too much by IoU.
    assert overlaps_too_much(np.array([5, 0, 15, 10]), earlier, max_iou=0.3)
    assert not overlaps_too_much(np.array([5, 0, 15, 10]), earlier, max_iou=0.4)
    # A large box over a small one: IoU 64 / 436 = 0.15, but 64 of the small box's 100 pixels (> half) hidden.
    assert overlaps_too_much(np.array([2, 2, 22, 22]), earlier, max_iou=0.3)
    assert not overlaps_too_much(np.array([2, 2, 22, 22]), earlier, max_iou=0.3, max_hidden_fraction=0.7)
    assert not overlaps_too_much(np.array([0, 0, 10, 10]), [], max_iou=0.0)  # nothing drawn yet


@pytest.mark.parametrize("per_class", [False, True])
def test_opencv_nms_keeps_the_same_boxes_as_the_numpy_reference(per_class):
    import cv2

    if not hasattr(getattr(cv2, "dnn", None), "NMSBoxesBatched"):
        pytest.skip("this OpenCV has no cv2.dnn.NMSBoxesBatched")
    generator = np.random.default_rng(5)
    for trial in range(20):
        count = int(generator.integers(1, 400))
        corners = generator.uniform(0, 400, (count, 2))
        boxes = np.column_stack([corners, corners + generator.uniform(5, 120, (count, 2))])
        scores = generator.uniform(0.25, 1.0, count)
        class_ids = generator.integers(0, 5, count) if per_class else None
        for threshold, limit in ((0.45, None), (0.3, 20), (0.7, 100)):
            reference = non_max_suppression(boxes, scores, threshold, class_ids, limit, implementation="numpy")
            fast = non_max_suppression(boxes, scores, threshold, class_ids, limit, implementation="opencv")
            assert fast.tolist() == reference.tolist(), (trial, threshold, limit)
