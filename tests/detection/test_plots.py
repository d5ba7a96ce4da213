"""Figures: the course's IoU examples, PR curves and the detection gallery."""

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from defi1.boxes import box_iou
from defi1.detection.labels import write_dataset_yaml, write_yolo_labels
from defi1.detection.metrics import evaluate_detections
from defi1.detection.plots import (IOU_EXAMPLES, draw_detection_gallery, draw_iou_examples,
                                   gallery_from_prediction_files, plot_pr_curves, save_gallery, save_pr_curves)
from defi1.images import read_image, write_image


def test_iou_examples_match_the_course(tmp_path):
    ious = [round(float(box_iou([first], [second])[0, 0]), 4) for _, first, second in IOU_EXAMPLES]
    assert ious == [0.4034, 0.7330, 0.9264]
    figure, examples = draw_iou_examples(tmp_path / "iou.png")
    assert [label for label, *_ in examples] == ["poor", "good", "excellent"]
    assert [axis.get_title() for axis in figure.axes] == ["poor: IoU = 0.4034", "good: IoU = 0.7330",
                                                          "excellent: IoU = 0.9264"]
    # Each panel holds its two boxes at the right place.
    first_axis_boxes = [(patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height())
                        for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    assert first_axis_boxes == [(40, 40, 160, 120), (88, 60, 162, 122)]
    assert read_image(tmp_path / "iou.png").shape[2] == 3


def test_pr_curves_plot_the_interpolated_precision(tmp_path):
    ground_truths = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1]))]
    predictions = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]), np.array([0.9, 0.8, 0.7]),
                    np.array([0, 1, 1]))]
    metrics = evaluate_detections(ground_truths, predictions, num_classes=2, class_names=["a", "b"])
    figure = plot_pr_curves(metrics, tmp_path / "pr.png")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a (AP50 1.000)", "b (AP50 0.500)", "all classes (mAP50 0.750)"]
    # Class b: a false positive then a true positive: precision 1/2 at recall 1, everywhere on the curve.
    np.testing.assert_allclose(lines[1].get_ydata(), 0.5, atol=1e-12)
    assert (tmp_path / "pr.png").stat().st_size > 1000


def test_gallery_draws_truth_and_predictions_above_threshold(tmp_path):
    images = [np.zeros((40, 50, 3), np.uint8), np.zeros((30, 30, 3), np.uint8)]
    truths = [(np.array([[1, 1, 20, 20]]), np.array([0])), (np.zeros((0, 4)), np.zeros(0, int))]
    predictions = [(np.array([[2, 2, 21, 21], [5, 5, 9, 9]]), np.array([0.9, 0.1]), np.array([0, 0])), None]
    figure = draw_detection_gallery(images, truths, predictions, tmp_path / "g.png", class_names=["cat"])
    patches = [patch for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    assert len(patches) == 2  # the ground truth and the 0.9 prediction; the 0.1 one is below the threshold
    assert [text.get_text() for text in figure.axes[0].texts] == ["cat 0.90"]
    with pytest.raises(ValueError, match="needs at least one image"):
        draw_detection_gallery([], [], [])


def test_gallery_from_prediction_files(tmp_path):
    write_image(tmp_path / "images/val/a.png", np.zeros((50, 100, 3), np.uint8))
    write_yolo_labels(tmp_path / "labels/val/a.txt", [0], [[0.2, 0.4, 0.2, 0.4]])
    data_yaml = write_dataset_yaml(tmp_path / "data.yaml", names=["x"], train=None, val="images/val")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred/a.txt").write_text("0 0.2 0.4 0.2 0.4 0.8\n")
    figure = gallery_from_prediction_files(tmp_path / "pred", data_yaml, tmp_path / "gallery.png")
    rectangles = [(patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height())
                  for patch in figure.axes[0].patches if isinstance(patch, Rectangle)]
    np.testing.assert_allclose(rectangles, [(10, 10, 20, 20), (10, 10, 20, 20)])
    assert (tmp_path / "gallery.png").is_file()


def test_save_functions_write_pngs_of_the_expected_size(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((40, 60, 3), np.uint8))
    path = save_gallery([tmp_path / "a.png"], [(np.array([[1, 1, 20, 20]]), np.array([0]))],
                        [(np.array([[2, 2, 21, 21]]), np.array([0.9]), np.array([0]))], tmp_path / "g.png",
                        class_names=["cat"])
    assert path == tmp_path / "g.png" and read_image(path).shape[0] > 100
    metrics = evaluate_detections([(np.array([[0, 0, 10, 10]]), np.array([0]))],
                                  [(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([0]))], num_classes=1)
    assert save_pr_curves(metrics, tmp_path / "pr.png") == tmp_path / "pr.png"
    assert read_image(tmp_path / "pr.png").shape[1] > 300
