"""Target encoding: best anchor over all heads, clamped edge cells, packed ground-truth rows (known values)."""

import numpy as np
import pytest

from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_MASKS
from defi1.yolo.heads import HeadSpec
from defi1.yolo.targets import encode_targets

pytestmark = pytest.mark.backend_agnostic


def yolov3_heads(num_classes=3):
    return [HeadSpec(anchors=YOLOV3_ANCHORS[mask], stride=stride, num_classes=num_classes)
            for mask, stride in zip(YOLOV3_MASKS, (32, 16, 8))]


def box_at(centre_x, centre_y, width, height):
    return [centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2]


def test_packed_shapes_and_row_of_one_box():
    heads = yolov3_heads()
    targets = encode_targets([np.array([box_at(100, 200, 116, 90)])], [np.array([2])], input_size=416, heads=heads,
                             max_boxes=5)
    assert [target.shape for target in targets] == [(1, 13 * 13 * 3 + 5, 8), (1, 26 * 26 * 3 + 5, 8),
                                                    (1, 52 * 52 * 3 + 5, 8)]
    assert all(target.dtype == np.float32 for target in targets)
    # 116x90 is anchor 6 exactly: head 0 (mask 6,7,8), local anchor 0, cell x = 100 // 32 = 3, y = 200 // 32 = 6.
    row = (6 * 13 + 3) * 3 + 0
    np.testing.assert_allclose(targets[0][0, row], [100, 200, 116, 90, 1, 0, 0, 1])
    assert targets[0][0, :507, 4].sum() == 1
    assert targets[1][0, :26 * 26 * 3, 4].sum() == 0 and targets[2][0, :52 * 52 * 3, 4].sum() == 0
    # Every head lists the box in its ground-truth rows, whoever is responsible.
    for target, cells in zip(targets, (507, 2028, 8112)):
        np.testing.assert_allclose(target[0, cells], [100, 200, 116, 90, 1, 0, 0, 0])
        assert np.all(target[0, cells + 1:] == 0)


def test_assign_threshold_adds_every_anchor_above_it():
    heads = yolov3_heads()
    box = [np.array([box_at(100, 200, 116, 90)])]
    # Shape IoUs of 116x90 with the anchors: 6 (116x90) 1, 5 (59x119) 5310/12151 = 0.437, 7 (156x198)
    # 10440/30888 = 0.338, 4 (62x45) 2790/10440 = 0.267, the others less.
    targets = encode_targets(box, [np.array([2])], input_size=416, heads=heads, assign_threshold=0.3)
    rows = [np.flatnonzero(target[0, :-100, 4]).tolist() for target in targets]
    assert rows[0] == [(6 * 13 + 3) * 3 + 0, (6 * 13 + 3) * 3 + 1]  # anchors 6 and 7 of head 0
    assert rows[1] == [(12 * 26 + 6) * 3 + 2]  # anchor 5: head 1, cell (100 // 16, 200 // 16)
    assert rows[2] == []
    for target, row in ((targets[0], rows[0][1]), (targets[1], rows[1][0])):
        np.testing.assert_allclose(target[0, row], [100, 200, 116, 90, 1, 0, 0, 1])
    only_best = encode_targets(box, [np.array([2])], input_size=416, heads=heads, assign_threshold=0.5)
    assert [int(target[0, :-100, 4].sum()) for target in only_best] == [1, 0, 0]


def test_best_anchor_is_chosen_across_scales():
    heads = yolov3_heads()
    # Sizes close to anchor 1 (16x30, head 2), anchor 4 (62x45, head 1) and anchor 8 (373x326, head 0).
    boxes = np.array([box_at(20, 20, 15, 31), box_at(208, 208, 60, 47), box_at(208, 208, 360, 330)])
    targets = encode_targets([boxes], [np.array([0, 1, 2])], input_size=416, heads=heads)
    rows = [np.flatnonzero(target[0, :-100, 4]) for target in targets]
    assert rows[0].tolist() == [(6 * 13 + 6) * 3 + 2]  # 208 // 32 = 6, anchor 8 is local 2
    assert rows[1].tolist() == [(13 * 26 + 13) * 3 + 1]  # 208 // 16 = 13, anchor 4 is local 1
    assert rows[2].tolist() == [(2 * 52 + 2) * 3 + 1]  # 20 // 8 = 2, anchor 1 is local 1
    assert targets[0][0, rows[0][0], 7] == 1 and targets[1][0, rows[1][0], 6] == 1 and targets[2][0, rows[2][0], 5] == 1


def test_best_anchor_matches_brute_force_iou(rng):
    heads = yolov3_heads()
    sizes = rng.uniform(4, 400, size=(50, 2))
    centres = rng.uniform(0, 416, size=(50, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    targets = encode_targets([boxes], [np.zeros(50, int)], input_size=416, heads=heads)
    holders = {}
    for index, ((width, height), (centre_x, centre_y)) in enumerate(zip(sizes, centres)):
        ious = [min(width, aw) * min(height, ah) / (width * height + aw * ah - min(width, aw) * min(height, ah))
                for aw, ah in YOLOV3_ANCHORS]
        best = int(np.argmax(ious))
        head = [best in mask for mask in YOLOV3_MASKS].index(True)
        stride, grid = (32, 16, 8)[head], (13, 26, 52)[head]
        row = (int(centre_y // stride) * grid + int(centre_x // stride)) * 3 + YOLOV3_MASKS[head].index(best)
        holders[head, row] = index  # a later box on the same cell and anchor replaces an earlier one
    for (head, row), index in holders.items():
        np.testing.assert_allclose(targets[head][0, row, :5], [*centres[index], *sizes[index], 1], rtol=1e-5)
    assert sum(int(target[0, :-100, 4].sum()) for target in targets) == len(holders)


def test_centre_on_right_and_bottom_edge_goes_to_last_cell():
    head = HeadSpec(anchors=[[16, 16]], stride=32, num_classes=1)
    box = np.array([[400, 400, 432, 432]])  # centre exactly (416, 416), the corner of the input
    (target,) = encode_targets([box], [np.array([0])], input_size=416, heads=[head], max_boxes=1)
    rows = np.flatnonzero(target[0, :-1, 4])
    assert rows.tolist() == [12 * 13 + 12]
    np.testing.assert_allclose(target[0, rows[0], :4], [416, 416, 32, 32])


def test_non_square_input_uses_width_and_height():
    head = HeadSpec(anchors=[[10, 10]], stride=32, num_classes=1)
    # input (width 64, height 32): grid 1 row x 2 columns; a centre at x=50 is in column 1.
    (target,) = encode_targets([np.array([box_at(50, 16, 10, 10)])], [[0]], input_size=(64, 32), heads=[head],
                               max_boxes=1)
    assert target.shape == (1, 2 + 1, 6)
    assert target[0, :2, 4].tolist() == [0, 1]


def test_images_of_a_batch_keep_their_own_boxes():
    head = HeadSpec(anchors=[[10, 10], [40, 40]], stride=32, num_classes=2)
    boxes_list = [np.zeros((0, 4)), np.array([box_at(10, 10, 40, 40), box_at(50, 50, 10, 10)]),
                  np.array([box_at(60, 20, 11, 9)])]
    targets = encode_targets(boxes_list, [np.zeros(0, int), np.array([1, 0]), np.array([1])], input_size=64,
                             heads=[head], max_boxes=3)[0]
    assert targets.shape == (3, 2 * 2 * 2 + 3, 7)
    assert np.all(targets[0] == 0)
    # image 1: box 0 at cell (0, 0) anchor 1; box 1 at cell (1, 1) anchor 0 -> rows 1 and (1*2+1)*2 = 6.
    assert np.flatnonzero(targets[1, :8, 4]).tolist() == [1, 6]
    np.testing.assert_allclose(targets[1, 8:10, :5], [[10, 10, 40, 40, 1], [50, 50, 10, 10, 1]])
    assert np.all(targets[1, 10] == 0)
    # image 2: cell (x=1, y=0) anchor 0 -> row 2.
    assert np.flatnonzero(targets[2, :8, 4]).tolist() == [2]
    np.testing.assert_allclose(targets[2, 2], [60, 20, 11, 9, 1, 0, 1])


def test_degenerate_and_outside_boxes_are_dropped():
    head = HeadSpec(anchors=[[10, 10]], stride=32, num_classes=1)
    boxes = np.array([[10, 10, 10, 30], [10, 10, 30, 10], [-50, -50, -10, -10], [5, 5, 25, 25]])
    (target,) = encode_targets([boxes], [np.zeros(4, int)], input_size=64, heads=[head], max_boxes=4)
    assert target[0, :4, 4].sum() == 1
    np.testing.assert_allclose(target[0, 4:, :5], [[15, 15, 20, 20, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0],
                                                   [0, 0, 0, 0, 0]])


def test_more_boxes_than_max_boxes_lists_the_first_ones():
    head = HeadSpec(anchors=[[8, 8]], stride=8, num_classes=1)
    boxes = np.array([box_at(4 + 8 * index, 4, 8, 8) for index in range(4)])
    (target,) = encode_targets([boxes], [np.zeros(4, int)], input_size=32, heads=[head], max_boxes=2)
    assert target[0, :16, 4].sum() == 4  # every box still has its cell target
    np.testing.assert_allclose(target[0, 16:, 0], [4, 12])


def test_bad_input_raises_clear_errors():
    head = HeadSpec(anchors=[[8, 8]], stride=8, num_classes=2)
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 2\)"):
        encode_targets([np.array([box_at(4, 4, 4, 4)])], [np.array([2])], input_size=32, heads=[head])
    with pytest.raises(ValueError, match="not a multiple of the head stride"):
        encode_targets([np.zeros((0, 4))], [np.zeros(0)], input_size=30, heads=[head])
    with pytest.raises(ValueError, match="1 boxes but 2 class ids"):
        encode_targets([np.array([box_at(4, 4, 4, 4)])], [np.array([0, 1])], input_size=32, heads=[head])
    with pytest.raises(ValueError, match="positive size"):
        HeadSpec(anchors=[[0, 8]], stride=8, num_classes=1)
