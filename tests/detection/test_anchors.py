"""Anchors of a dataset (defi1.detection.anchors): box sizes at the letterbox scale, the anchor report."""

import numpy as np
import pytest
from PIL import Image

from defi1.boxes import wh_iou
from defi1.detection.anchors import dataset_anchors, dataset_box_sizes
from defi1.detection.labels import write_dataset_yaml
from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_TINY_ANCHORS, kmeans_anchors


def test_dataset_box_sizes_follow_the_letterbox_scale(tmp_path):
    for split, (width, height) in (("train", (200, 100)), ("val", (100, 400))):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (width, height)).save(tmp_path / "images" / split / "a.png")
        (tmp_path / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.5 0.25\n1 0.2 0.2 0.1 0.1\n")
    Image.new("RGB", (50, 50)).save(tmp_path / "images" / "train" / "background.png")
    yaml_path = write_dataset_yaml(tmp_path / "data.yaml", names=["a", "b"])
    # train image 200x100 at 416: scale 2.08; box 0.5x0.25 -> 100x25 px -> 208x52.
    np.testing.assert_allclose(dataset_box_sizes(yaml_path, input_size=416, split="train"),
                               [[208, 52], [41.6, 20.8]])
    # val image 100x400 at 416: scale 1.04; box 0.5x0.25 -> 50x100 px -> 52x104.
    np.testing.assert_allclose(dataset_box_sizes(yaml_path, input_size=416, split="all"),
                               [[208, 52], [41.6, 20.8], [52, 104], [10.4, 41.6]])


def test_anchor_report_compares_kmeans_with_the_scaled_coco_anchors(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "train" / "a.png")
    # At 320: scale 1.6, boxes 0.5 x 0.25 -> 160 x 40 px and 0.1 x 0.1 -> 32 x 16 px.
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.25\n0 0.2 0.2 0.1 0.1\n")
    data = write_dataset_yaml(tmp_path / "data.yaml", names=["a"])
    report = dataset_anchors(data, 2, input_size=320, seed=0)
    np.testing.assert_allclose(report.sizes, [[160, 40], [32, 16]])
    np.testing.assert_allclose(report.anchors, [[32, 16], [160, 40]])
    assert report.mean_iou == pytest.approx(1.0)
    # The reference: each box's best IoU with the COCO anchors scaled from 416 to 320, averaged.
    for name, defaults in (("yolov3", YOLOV3_ANCHORS), ("yolov3-tiny", YOLOV3_TINY_ANCHORS)):
        expected = wh_iou(report.sizes, defaults * 320 / 416).max(axis=1).mean()
        assert report.coco_mean_iou[name] == pytest.approx(expected)
    assert report.lines()[:3] == ["2 boxes (train) at input 320, k = 2, seed 0", "anchors = 32,16,  160,40",
                                  "mean IoU: 1.0000"]
    assert report.lines()[3] == f"mean IoU of the yolov3 COCO anchors: {report.coco_mean_iou['yolov3']:.4f}"
    assert np.array_equal(report.anchors, kmeans_anchors(report.sizes, 2, seed=0)[0])
