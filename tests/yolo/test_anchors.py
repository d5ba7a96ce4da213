"""Anchors: darknet's defaults, k-means under 1 - IoU on known clusters."""

import re

import numpy as np
import pytest

from defi1.boxes import wh_iou
from defi1.yolo.anchors import (YOLOV3_ANCHORS, YOLOV3_MASKS, YOLOV3_TINY_ANCHORS, YOLOV3_TINY_MASKS, format_anchors,
                                kmeans_anchors)


def cfg_yolo_sections(path):
    text = path.read_text()
    masks = [[int(value) for value in match.split(",")] for match in re.findall(r"^mask\s*=\s*([\d,\s]+)$", text, re.M)]
    anchors = re.findall(r"^anchors\s*=\s*(.+)$", text, re.M)[0]
    values = [float(value) for value in anchors.split(",")]
    return np.array(values).reshape(-1, 2), masks


def test_defaults_match_darknet_cfgs(darknet_dir):
    anchors, masks = cfg_yolo_sections(darknet_dir / "cfg" / "yolov3.cfg")
    np.testing.assert_array_equal(anchors, YOLOV3_ANCHORS)
    assert masks == YOLOV3_MASKS
    anchors, masks = cfg_yolo_sections(darknet_dir / "cfg" / "yolov3-tiny.cfg")
    np.testing.assert_array_equal(anchors, YOLOV3_TINY_ANCHORS)
    assert masks == YOLOV3_TINY_MASKS


@pytest.mark.backend_agnostic
def test_format_anchors_is_darknet_syntax():
    assert format_anchors(YOLOV3_TINY_ANCHORS) == "10,14,  23,27,  37,58,  81,82,  135,169,  344,319"


@pytest.mark.backend_agnostic
def test_kmeans_recovers_three_known_clusters(rng):
    centres = np.array([[300.0, 200.0], [20.0, 40.0], [80.0, 80.0]])
    sizes = np.concatenate([centre * rng.uniform(0.95, 1.05, size=(200, 2)) for centre in centres])
    anchors, mean_iou = kmeans_anchors(sizes, 3, seed=0)
    # Sorted by area; each anchor is the mean of its cluster (within the 5 % jitter).
    np.testing.assert_allclose(anchors, centres[[1, 2, 0]], rtol=0.02)
    assert mean_iou == pytest.approx(np.mean(np.max(wh_iou(sizes, anchors), axis=1)))
    assert 0.9 < mean_iou <= 1.0


@pytest.mark.backend_agnostic
def test_kmeans_known_values_and_reproducibility(rng):
    # Identical boxes: one anchor equal to them, IoU exactly 1.
    anchors, mean_iou = kmeans_anchors(np.tile([[30.0, 60.0]], (10, 1)), 1)
    np.testing.assert_allclose(anchors, [[30, 60]])
    assert mean_iou == pytest.approx(1.0)
    # Two boxes, two anchors: each box is its own anchor.
    anchors, mean_iou = kmeans_anchors([[100, 50], [10, 10]], 2)
    np.testing.assert_allclose(anchors, [[10, 10], [100, 50]])
    assert mean_iou == pytest.approx(1.0)
    sizes = rng.uniform(5, 400, size=(300, 2))
    first = kmeans_anchors(sizes, 9, seed=3)
    second = kmeans_anchors(sizes, 9, seed=3)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
    areas = first[0][:, 0] * first[0][:, 1]
    assert np.all(np.diff(areas) >= 0)


@pytest.mark.backend_agnostic
def test_kmeans_beats_the_coco_anchors_on_its_own_data(rng):
    # Boxes of one narrow shape family: anchors fitted to them match them better than COCO's generic nine.
    sizes = np.stack([rng.uniform(10, 60, 500), rng.uniform(100, 200, 500)], axis=1)
    _, mean_iou = kmeans_anchors(sizes, 9, seed=0)
    coco_iou = np.mean(np.max(wh_iou(sizes, YOLOV3_ANCHORS), axis=1))
    assert mean_iou > coco_iou + 0.1


@pytest.mark.backend_agnostic
def test_kmeans_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        kmeans_anchors(np.zeros((4, 3)), 2)
    with pytest.raises(ValueError, match="at least k=3 boxes of positive size, got 2"):
        kmeans_anchors([[10, 10], [0, 5], [20, 20]], 3)
