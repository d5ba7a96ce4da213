"""mAP against hand computations (VOC) and pycocotools (COCO) as the oracle."""

import contextlib
import io
import json
import math

import numpy as np
import pytest

from defi1.detection.labels import write_dataset_yaml, write_yolo_labels
from defi1.detection.metrics import (average_precision_11_points, average_precision_all_points, evaluate_detections,
                                     evaluate_prediction_files, format_metrics_table, match_detections,
                                     write_metrics)
from defi1.images import write_image

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


def _textbook_case():
    """One class; image 0 has A = (0,0,10,10) and B = (20,20,30,30), image 1 has C = (0,0,10,10).

    Detections by score: d1 0.9 on A (IoU 1, TP); d2 0.8 in image 1 on nothing (FP); d3 0.7 on C (TP); d4 0.6 on A
    again (duplicate, FP); d5 0.5 = (20,20,30,35) on B: IoU 100 / 150 = 0.667 (TP while the threshold <= 0.65).
    """
    ground_truths = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0])),
                     (np.array([[0, 0, 10, 10]]), np.array([0]))]
    predictions = [(np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 35]]), np.array([0.9, 0.6, 0.5]),
                    np.array([0, 0, 0])),
                   (np.array([[50, 50, 60, 60], [0, 0, 10, 10]]), np.array([0.8, 0.7]), np.array([0, 0]))]
    return ground_truths, predictions


def test_textbook_voc_and_coco_values():
    metrics = evaluate_detections(*_textbook_case(), num_classes=1)
    # At IoU 0.5, by score: TP FP TP FP TP. Cumulative TP 1 1 2 2 3, FP 0 1 1 2 2, 3 ground-truth boxes:
    # recall 1/3 1/3 2/3 2/3 1, precision 1 1/2 2/3 1/2 3/5. Envelope 1 2/3 2/3 3/5 3/5.
    # All points: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 0.755556.
    assert metrics["map50"] == pytest.approx((1 + 2 / 3 + 0.6) / 3, abs=1e-12)
    # 11 points: t = 0..0.3 -> 1 (4 points), t = 0.4..0.6 -> 2/3 (3 points), t = 0.7..1 -> 3/5 (4 points):
    # (4 + 2 + 2.4) / 11 = 0.763636.
    assert metrics["map50_voc07"] == pytest.approx(8.4 / 11, abs=1e-12)
    # COCO, 101 recall points: r <= 0.33 -> 1 (34 points), 0.34..0.66 -> 2/3 (33), 0.67..1 -> 3/5 (34): 76.4 / 101
    # for IoU 0.50..0.65 (4 thresholds). From 0.70 d5 is a FP: recall tops at 2/3, so 34 + 33 * 2/3 = 56 / 101
    # for the 6 others. mAP50:95 = (4 * 76.4 + 6 * 56) / 1010 = 0.635248.
    assert metrics["map50_95"] == pytest.approx((4 * 76.4 + 6 * 56) / 1010, abs=1e-12)
    assert metrics["per_class"]["0"]["precision"] == pytest.approx(0.6)
    assert metrics["per_class"]["0"]["recall"] == pytest.approx(1.0)
    assert metrics["num_detections"] == 5 and metrics["num_ground_truth"] == 3


def test_ap_functions_on_hand_values():
    # recall 0.5 0.5 1, precision 1 0.5 2/3: envelope 1 on (0, 0.5], 2/3 on (0.5, 1] -> 0.5 + 1/3.
    assert average_precision_all_points([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 1 / 3)
    # 11 points: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 2/3 (5 points): (6 + 10/3) / 11.
    assert average_precision_11_points([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx((6 + 10 / 3) / 11)
    # No detection: AP 0.
    assert average_precision_all_points([], []) == 0.0


def test_matching_prefers_best_free_box_and_ignores_difficult():
    gt_boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [40, 40, 50, 50]], dtype=float)
    det_boxes = np.array([[1, 0, 11, 10], [1, 0, 11, 10], [40, 40, 50, 50], [40, 40, 50, 50]], dtype=float)
    outcome = match_detections(gt_boxes, np.array([0, 0, 0]), np.array([False, False, True]), det_boxes,
                               np.array([0, 0, 0, 0]), iou_thresholds=[0.5])
    # The first two each take one of the two equally overlapping boxes (IoU 9/11), the last two are on a difficult
    # box: ignored, not false positives, and the difficult box is never used up.
    assert outcome.tolist() == [[1, 1, -1, -1]]
    # Another class never matches.
    outcome = match_detections(gt_boxes, np.array([0, 0, 0]), np.zeros(3, bool), det_boxes[:1], np.array([1]),
                               iou_thresholds=[0.5])
    assert outcome.tolist() == [[0]]


def test_difficult_objects_do_not_count():
    ground_truths = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]), np.array([False, True]))]
    # Only the non-difficult object is found: recall is 1 over the single counted box, AP 1.
    predictions = [(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([0]))]
    metrics = evaluate_detections(ground_truths, predictions, num_classes=1)
    assert metrics["map50"] == 1.0 and metrics["per_class"]["0"]["recall"] == 1.0
    # Detecting the difficult one too changes nothing (ignored, not a false positive).
    predictions = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0.9, 0.95]), np.array([0, 0]))]
    assert evaluate_detections(ground_truths, predictions, num_classes=1)["map50"] == 1.0


def test_class_without_ground_truth_is_excluded_from_the_mean():
    ground_truths = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    predictions = [(np.array([[0, 0, 10, 10], [30, 30, 40, 40]]), np.array([0.9, 0.8]), np.array([0, 2]))]
    metrics = evaluate_detections(ground_truths, predictions, num_classes=3, class_names=["a", "b", "c"])
    # COCO divides by tp + fp + eps, hence approx for map50_95 (pycocotools gives 0.9999999999999998 too).
    assert metrics["map50"] == 1.0 and metrics["map50_95"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["per_class"]["c"]["ap50"] is None and metrics["per_class"]["c"]["num_detections"] == 1
    empty = evaluate_detections([(np.zeros((0, 4)), np.zeros(0))], [(np.zeros((0, 4)), np.zeros(0), np.zeros(0))],
                                num_classes=2)
    assert math.isnan(empty["map50"])


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="one of each per image"):
        evaluate_detections([], [(np.zeros((0, 4)), [], [])], num_classes=1)
    with pytest.raises(ValueError, match="image 0: non-finite box or score"):
        evaluate_detections([(np.zeros((0, 4)), [])], [(np.zeros((1, 4)), [np.nan], [0])], num_classes=1)
    with pytest.raises(ValueError, match="class id 3 out of range"):
        evaluate_detections([(np.zeros((1, 4)), [3])], [(np.zeros((0, 4)), [], [])], num_classes=2)


def _pycocotools_map(ground_truths, predictions, num_classes):
    """mAP50:95 and per-class AP from pycocotools on the same boxes (xyxy converted to COCO's xywh)."""
    pytest.importorskip("pycocotools", reason="pycocotools (the test extra) is the oracle")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, ((gt_boxes, gt_classes), (boxes, scores, classes)) in enumerate(zip(ground_truths, predictions), 1):
        images.append({"id": image_id, "width": 1000, "height": 1000})
        for box, class_id in zip(np.asarray(gt_boxes, float), gt_classes):
            width, height = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id) + 1,
                                "bbox": [box[0], box[1], width, height], "area": width * height, "iscrowd": 0})
        for box, score, class_id in zip(np.asarray(boxes, float), scores, classes):
            results.append({"image_id": image_id, "category_id": int(class_id) + 1, "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    truth = COCO()
    truth.dataset = {"images": images, "annotations": annotations,
                     "categories": [{"id": index + 1, "name": str(index)} for index in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        detections = truth.loadRes(results)
        evaluation = COCOeval(truth, detections, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, 2]  # (T, R, K), area 'all', maxDets 100
    per_class = [float(np.mean(precision[:, :, k])) if np.all(precision[:, :, k] > -1) else None
                 for k in range(num_classes)]
    return float(evaluation.stats[0]), per_class


def _random_case(rng, num_images=12, num_classes=3, tie_scores=False):
    ground_truths, predictions = [], []
    for image in range(num_images):
        count = 0 if image % 5 == 4 else int(rng.integers(1, 6))
        corners = rng.uniform(0, 400, size=(count, 2))
        sizes = rng.uniform(10, 120, size=(count, 2))
        gt_boxes = np.concatenate([corners, corners + sizes], axis=1)
        gt_classes = rng.integers(0, num_classes, size=count)
        # Jittered copies (various IoUs), duplicates, wrong classes and random false positives.
        keep = rng.uniform(size=count) < 0.8
        jitter = rng.normal(0, 0.12, size=(count, 4)) * np.concatenate([sizes, sizes], axis=1)
        boxes = [(gt_boxes + jitter)[keep]]
        classes = [np.where(rng.uniform(size=count) < 0.9, gt_classes, rng.integers(0, num_classes, size=count))[keep]]
        duplicates = rng.uniform(size=count) < 0.3
        boxes.append(gt_boxes[duplicates] + rng.normal(0, 4, size=(int(duplicates.sum()), 4)))
        classes.append(gt_classes[duplicates])
        extra = int(rng.integers(0, 4))
        extra_corners = rng.uniform(0, 400, size=(extra, 2))
        boxes.append(np.concatenate([extra_corners, extra_corners + rng.uniform(10, 100, size=(extra, 2))], axis=1))
        classes.append(rng.integers(0, num_classes, size=extra))
        boxes = np.concatenate(boxes)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.uniform(size=len(boxes))
        if tie_scores:
            scores = np.round(scores, 1)
        ground_truths.append((gt_boxes, gt_classes))
        predictions.append((boxes, scores, np.concatenate(classes)))
    return ground_truths, predictions


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_map50_95_agrees_with_pycocotools(seed):
    rng = np.random.default_rng(seed)
    ground_truths, predictions = _random_case(rng, tie_scores=seed % 2 == 1)
    expected, expected_per_class = _pycocotools_map(ground_truths, predictions, 3)
    metrics = evaluate_detections(ground_truths, predictions, num_classes=3)
    assert metrics["map50_95"] == pytest.approx(expected, abs=1e-6)
    for class_id in range(3):
        actual = metrics["per_class"][str(class_id)]["ap50_95"]
        if expected_per_class[class_id] is None:
            assert actual is None
        else:
            assert actual == pytest.approx(expected_per_class[class_id], abs=1e-6)


def test_pycocotools_agreement_textbook_empty_images_and_max_detections(rng):
    ground_truths, predictions = _textbook_case()
    # An empty image with a false positive, and a class (2) without any ground truth.
    ground_truths = ground_truths + [(np.zeros((0, 4)), np.zeros(0, int))]
    predictions = predictions + [(np.array([[5, 5, 50, 50]]), np.array([0.95]), np.array([2]))]
    expected, _ = _pycocotools_map(ground_truths, predictions, 3)
    assert evaluate_detections(ground_truths, predictions, num_classes=3)["map50_95"] == pytest.approx(expected,
                                                                                                     abs=1e-12)
    # 130 detections of one class in one image: COCO keeps the 100 best.
    gt_boxes = np.array([[0, 0, 20, 20], [100, 100, 130, 130]], dtype=float)
    boxes = np.concatenate([rng.uniform(200, 300, size=(130, 2))] * 2, axis=1) + [0, 0, 15, 15]
    boxes[-1] = gt_boxes[1]
    scores = np.linspace(0.9, 0.1, 130)
    case = ([(gt_boxes, np.array([0, 0]))], [(boxes, scores, np.zeros(130, int))])
    expected, _ = _pycocotools_map(*case, 1)
    assert evaluate_detections(*case, num_classes=1)["map50_95"] == pytest.approx(expected, abs=1e-12)
    assert evaluate_detections(*case, num_classes=1)["map50_95"] == 0.0


def _write_tiny_dataset(root):
    """Two 100×50 images; a.png has one box (10,10)-(30,30) of class 1, b.png is a background image."""
    write_image(root / "images" / "val" / "a.png", np.zeros((50, 100, 3), np.uint8))
    write_image(root / "images" / "val" / "b.png", np.zeros((50, 100, 3), np.uint8))
    write_yolo_labels(root / "labels" / "val" / "a.txt", [1], [[0.2, 0.4, 0.2, 0.4]])
    return write_dataset_yaml(root / "data.yaml", names=["x", "y"], train=None, val="images/val")


def test_evaluate_prediction_files(tmp_path):
    data_yaml = _write_tiny_dataset(tmp_path / "data")
    predictions = tmp_path / "pred"
    predictions.mkdir()
    # A perfect detection, then a worse duplicate; b.png gets a false positive of class 0 (class without GT).
    (predictions / "a.txt").write_text("1 0.2 0.4 0.2 0.4 0.9\n1 0.25 0.4 0.2 0.4 0.3\n")
    (predictions / "b.txt").write_text("0 0.5 0.5 0.2 0.2 0.8\n")
    metrics = evaluate_prediction_files(predictions, data_yaml, "val")
    assert metrics["map50"] == 1.0 and metrics["per_class"]["y"]["precision"] == 0.5
    assert metrics["per_class"]["x"]["ap50"] is None and metrics["images_without_predictions"] == 0
    # The duplicate at (15,10)-(35,30) has IoU 15*20 / (2*400 - 300) = 0.6 with the box: a TP at 0.5 if alone.
    (predictions / "a.txt").write_text("1 0.25 0.4 0.2 0.4 0.9\n")
    (predictions / "b.txt").unlink()
    metrics = evaluate_prediction_files(predictions, data_yaml, "val")
    assert metrics["map50"] == 1.0 and metrics["images_without_predictions"] == 1
    # IoU 0.6: TP for 0.50 and 0.55, FP from 0.60 on (0.6 computed in floats may fall either side).
    assert metrics["map50_95"] in (pytest.approx(0.2), pytest.approx(0.3))
    (predictions / "a.txt").write_text("1 0.25 0.4 0.2 0.4\n")
    with pytest.raises(ValueError, match=r"a\.txt, line 1: 5 values, expected 6"):
        evaluate_prediction_files(predictions, data_yaml, "val")


def test_write_metrics(tmp_path, capsys):
    metrics = evaluate_detections(*_textbook_case(), num_classes=1, class_names=["dog"])
    metrics["extra_nan"] = float("nan")
    path = write_metrics(tmp_path / "out", metrics)
    written = json.loads(path.read_text())
    assert written["map50"] == pytest.approx(metrics["map50"]) and written["extra_nan"] is None
    printed = capsys.readouterr().out
    assert "dog" in printed and "0.756" in printed
    assert format_metrics_table(metrics).splitlines()[1].startswith("all")


def test_precision_and_recall_at_the_best_f1_confidence():
    """Issue 11: P and R as users expect them, at the confidence threshold that maximises F1. Two objects, three
    detections: 0.9 hits, 0.6 misses, 0.3 hits. Kept at >= 0.3: P 2/3, R 1, F1 0.8; at >= 0.6: P 1/2, R 1/2; at >= 0.9:
    P 1, R 1/2, F1 2/3. Best: threshold 0.3 (the highest reaching F1 0.8)."""
    from defi1.detection.metrics import format_metrics_table

    truth = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]))]
    detections = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]), np.array([0.9, 0.6, 0.3]),
                   np.array([0, 0, 0]))]
    metrics = evaluate_detections(truth, detections, num_classes=1)
    assert metrics["best_f1"] == pytest.approx({"confidence": 0.3, "precision": 2 / 3, "recall": 1.0, "f1": 0.8})
    assert "at confidence 0.300 (best F1 0.800): precision 0.667, recall 1.000" in format_metrics_table(metrics)
    # Two classes: the means of the per-class curves. Class 1 has one object and one detection at 0.5 that hits:
    # at >= 0.3: mean P (2/3 + 1) / 2, mean R 1: F1 = 2 * (5/6) / (5/6 + 1) = 10/11.
    truth = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10]]), np.array([0, 0, 1]))]
    detections = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30], [40, 0, 50, 10]]),
                   np.array([0.9, 0.6, 0.3, 0.5]), np.array([0, 0, 0, 1]))]
    best = evaluate_detections(truth, detections, num_classes=2)["best_f1"]
    assert best == pytest.approx({"confidence": 0.3, "precision": 5 / 6, "recall": 1.0, "f1": 10 / 11})
    # No true positive: no operating point to choose; reported with every detection kept (precision 0, not the
    # empty curve's convention of 1).
    missed = [(np.array([[50, 50, 60, 60]]), np.array([0.9]), np.array([0]))]
    nothing = evaluate_detections(truth[:1], missed, num_classes=2)["best_f1"]
    assert nothing == {"confidence": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
