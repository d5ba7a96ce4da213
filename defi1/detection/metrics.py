"""Detection metrics: mean average precision as Pascal VOC and COCO define it.

Three numbers, all from the same matching of detections to ground truth:

* ``map50``: VOC2010+ average precision at IoU 0.5, the area under the precision envelope ("all-point
  interpolation");
* ``map50_voc07``: VOC2007's 11-point interpolated AP at IoU 0.5 (mean of the best precision at recall >= 0, 0.1,
  ..., 1);
* ``map50_95``: COCO's AP, 101-point interpolated, averaged over IoU thresholds 0.50, 0.55, ..., 0.95 (the 'all' area
  range, at most ``max_detections`` detections per image and class, 100 by default as COCO's ``maxDets``). It agrees
  with pycocotools (tests use it as the oracle).

Matching follows COCO: detections of one image and class are taken by decreasing score (ties keep the input order),
each is matched to the unmatched ground-truth box of its class with the highest IoU if that IoU is at least the
threshold (ties go to the later box, as pycocotools does); otherwise it is a false positive. Ground-truth boxes
flagged ``difficult`` (Pascal VOC) are ignored as VOC does: they do not count in the recall's denominator, a
detection that can only be matched to one is neither a true nor a false positive, and they are never used up. A
class without ground truth is left out of the means (COCO's rule); its detections still appear in ``per_class``.

``precision`` and ``recall`` are those of all the detections given (at an evaluation threshold as low as 0.005 the
precision is small by design); ``best_f1`` is the operating point users expect: the confidence threshold that
maximises F1 (of the class-mean precision and recall at IoU 0.5, on a grid of 1,001 thresholds), with the
precision and recall there.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from defi1.boxes import box_iou

# Built as pycocotools builds them, so that IoU values on a threshold compare identically.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1)
#: The confidence thresholds at which precision, recall and F1 are compared to find the best-F1 operating point.
CONFIDENCE_GRID = np.linspace(0.0, 1.0, 1001)
_TRUE_POSITIVE, _FALSE_POSITIVE, _IGNORED = 1, 0, -1


def _as_ground_truth(entry, index, num_classes):
    if len(entry) not in (2, 3):
        raise ValueError(f"ground truth of image {index}: expected (boxes, class_ids) or (boxes, class_ids, "
                         f"difficult), got {len(entry)} items")
    boxes = np.asarray(entry[0], dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(entry[1]).reshape(-1).astype(np.int64)
    difficult = (np.asarray(entry[2], dtype=bool).reshape(-1) if len(entry) == 3 and entry[2] is not None
                 else np.zeros(len(boxes), dtype=bool))
    if not len(boxes) == len(class_ids) == len(difficult):
        raise ValueError(f"ground truth of image {index}: {len(boxes)} boxes, {len(class_ids)} class ids, "
                         f"{len(difficult)} difficult flags (expected the same number)")
    _check_classes(class_ids, num_classes, f"ground truth of image {index}")
    return boxes, class_ids, difficult


def _as_predictions(entry, index, num_classes):
    if len(entry) != 3:
        raise ValueError(f"predictions of image {index}: expected (boxes, scores, class_ids), got {len(entry)} items")
    boxes = np.asarray(entry[0], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(entry[1], dtype=np.float64).reshape(-1)
    class_ids = np.asarray(entry[2]).reshape(-1).astype(np.int64)
    if not len(boxes) == len(scores) == len(class_ids):
        raise ValueError(f"predictions of image {index}: {len(boxes)} boxes, {len(scores)} scores, {len(class_ids)} "
                         "class ids (expected the same number)")
    _check_classes(class_ids, num_classes, f"predictions of image {index}")
    if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(boxes))):
        raise ValueError(f"predictions of image {index}: non-finite box or score (NaN or infinity)")
    return boxes, scores, class_ids


def _check_classes(class_ids, num_classes, what):
    if len(class_ids) and (class_ids.min() < 0 or class_ids.max() >= num_classes):
        wrong = int(class_ids.max() if class_ids.max() >= num_classes else class_ids.min())
        raise ValueError(f"{what}: class id {wrong} out of range (expected 0..{num_classes - 1})")


def match_detections(gt_boxes, gt_class_ids, gt_difficult, det_boxes, det_class_ids, iou_thresholds=IOU_THRESHOLDS):
    """Greedy matching of one image's detections, already sorted by decreasing score.

    Args:
        gt_boxes: ``(G, 4)`` xyxy pixels; gt_class_ids ``(G,)``; gt_difficult ``(G,)`` bool.
        det_boxes: ``(K, 4)`` xyxy pixels, by decreasing score; det_class_ids ``(K,)``.
        iou_thresholds: ``(T,)``.
    Returns:
        ``(T, K)`` int8: 1 true positive, 0 false positive, -1 ignored (matched to a difficult box).
    The IoU matrix and the candidate tests are computed for all thresholds at once; the loop over detections is the
    greedy assignment by score that the definition needs.
    """
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1, 1)
    outcome = np.zeros((len(thresholds), len(det_boxes)), dtype=np.int8)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return outcome
    iou = box_iou(det_boxes, gt_boxes)
    iou[det_class_ids[:, None] != gt_class_ids[None, :]] = -1.0
    # pycocotools compares against min(t, 1 - 1e-10).
    thresholds = np.minimum(thresholds, 1 - 1e-10)
    lowest = float(thresholds.min())
    used = np.zeros((len(thresholds), len(gt_boxes)), dtype=bool)
    columns = np.arange(len(gt_boxes))
    rows = np.arange(len(thresholds))
    for detection in range(len(det_boxes)):
        overlaps = iou[detection]
        if overlaps.max() < lowest:
            continue
        reachable = overlaps[None, :] >= thresholds  # (T, G)
        free = reachable & ~used & ~gt_difficult[None, :]
        scored = np.where(free, overlaps[None, :], -np.inf)
        best_value = scored.max(axis=1, keepdims=True)
        # The last column reaching the best IoU (pycocotools replaces the match on equal IoU).
        best = np.where(free & (scored == best_value), columns[None, :], -1).max(axis=1)
        matched = best >= 0
        outcome[matched, detection] = _TRUE_POSITIVE
        used[rows[matched], best[matched]] = True
        on_difficult = ~matched & np.any(reachable & gt_difficult[None, :], axis=1)
        outcome[on_difficult, detection] = _IGNORED
    return outcome


def average_precision_all_points(recall, precision) -> float:
    """VOC2010+ AP: area under the precision envelope. ``recall``, ``precision``: cumulative, ``(K,)``.

    With ``recall = [0.5, 0.5, 1.0]``, ``precision = [1, 0.5, 0.667]`` the envelope is 1 on (0, 0.5] and 0.667 on
    (0.5, 1], so AP = 0.5 * 1 + 0.5 * 0.667.
    """
    recall = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def average_precision_11_points(recall, precision) -> float:
    """VOC2007 AP: mean over ``t = 0, 0.1, ..., 1`` of the best precision at recall ``>= t`` (0 if none)."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    total = 0.0
    for threshold in np.arange(0.0, 1.1, 0.1):
        reached = recall >= threshold
        total += float(precision[reached].max()) if np.any(reached) else 0.0
    return total / 11.0


def interpolated_precision_101(recall, precision) -> np.ndarray:
    """COCO's interpolated precision at the 101 recall thresholds ``0, 0.01, ..., 1`` (0 beyond the last recall)."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.maximum.accumulate(np.asarray(precision, dtype=np.float64)[::-1])[::-1]
    positions = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    reached = positions < len(recall)
    values = np.zeros(len(RECALL_THRESHOLDS))
    values[reached] = precision[positions[reached]]
    return values


def precision_recall_at_confidences(scores, outcome, num_positives, confidences=CONFIDENCE_GRID):
    """Precision and recall of one class's detections kept at each threshold of ``confidences``.

    Args:
        scores: ``(K,)`` scores sorted in decreasing order. outcome: ``(K,)`` 1 for a true positive, 0 for a false
            one (ignored detections removed). num_positives: ground-truth boxes of the class.
    Returns:
        ``(precision, recall)``, each ``(len(confidences),)``; a threshold keeping no detection has precision 1 and
        recall 0 (the convention of the precision-recall curve's left end), a class without any detection precision
        0 everywhere (as Ultralytics reports them).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return np.zeros(len(confidences)), np.zeros(len(confidences))
    true_positives = np.cumsum(np.asarray(outcome) == _TRUE_POSITIVE)
    kept = np.searchsorted(-scores, -np.asarray(confidences, dtype=np.float64), side="right")  # scores >= c
    precision = np.ones(len(kept))
    recall = np.zeros(len(kept))
    some = kept > 0
    precision[some] = true_positives[kept[some] - 1] / kept[some]
    recall[some] = true_positives[kept[some] - 1] / max(int(num_positives), 1)
    return precision, recall


def best_f1_point(precisions, recalls, confidences=CONFIDENCE_GRID) -> dict:
    """The operating point of the highest F1 of the class-mean precision and recall (the highest confidence
    threshold among equals: the same detections, fewer kept below it).

    Args:
        precisions, recalls: ``(num_classes, len(confidences))`` from :func:`precision_recall_at_confidences`.
    Returns:
        ``{"confidence", "precision", "recall", "f1"}`` (NaN when there is no class).
    """
    if len(precisions) == 0:
        return {"confidence": math.nan, "precision": math.nan, "recall": math.nan, "f1": math.nan}
    precision = np.mean(precisions, axis=0)
    recall = np.mean(recalls, axis=0)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-16)
    # The highest threshold reaching the best F1; with no true positive at all, the lowest (every detection kept).
    best = len(f1) - 1 - int(np.argmax(f1[::-1])) if f1.max() > 0 else 0
    return {"confidence": float(confidences[best]), "precision": float(precision[best]),
            "recall": float(recall[best]), "f1": float(f1[best])}


def evaluate_detections(ground_truths, predictions, *, num_classes: int, class_names=None,
                        max_detections: int | None = 100) -> dict:
    """mAP and per-class AP, precision and recall of detections against ground truth.

    Args:
        ground_truths: one entry per image, ``(boxes (N, 4) xyxy pixels, class_ids (N,))`` or with a third item
            ``difficult (N,) bool``.
        predictions: one entry per image (same order), ``(boxes (K, 4) xyxy pixels, scores (K,), class_ids (K,))``.
        num_classes: number of classes. class_names: their names (default ``"0"``, ``"1"``, ...).
        max_detections: at most this many detections per image and class, the highest scores (COCO's maxDets;
            ``None`` for no limit).
    Returns:
        a dict: ``map50``, ``map50_voc07``, ``map50_95``, ``precision``, ``recall`` (means over classes with ground
        truth; NaN when no class has any), ``best_f1`` (:func:`best_f1_point`: ``confidence``, ``precision``,
        ``recall``, ``f1`` at the confidence threshold of the best F1), ``num_images``, ``num_ground_truth``, ``num_detections``, ``per_class``
        (name -> ``ap50``, ``ap50_voc07``, ``ap50_95``, ``precision``, ``recall`` at IoU 0.5 over all detections,
        ``num_ground_truth``, ``num_detections``; APs are None for a class without ground truth), and
        ``pr_curves`` (name -> COCO's 101-point interpolated precision at IoU 0.5, recall ``0, 0.01, ..., 1``).
    """
    if len(ground_truths) != len(predictions):
        raise ValueError(f"{len(ground_truths)} ground-truth entries but {len(predictions)} prediction entries "
                         "(expected one of each per image)")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    class_names = [str(index) for index in range(num_classes)] if class_names is None else list(class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    scores_per_class = [[] for _ in range(num_classes)]
    outcomes_per_class = [[] for _ in range(num_classes)]
    positives = np.zeros(num_classes, dtype=np.int64)
    total_ground_truth = 0
    for index, (truth, prediction) in enumerate(zip(ground_truths, predictions)):
        gt_boxes, gt_class_ids, gt_difficult = _as_ground_truth(truth, index, num_classes)
        det_boxes, det_scores, det_class_ids = _as_predictions(prediction, index, num_classes)
        positives += np.bincount(gt_class_ids[~gt_difficult], minlength=num_classes)
        total_ground_truth += len(gt_boxes)
        order = np.argsort(-det_scores, kind="stable")
        if max_detections is not None and len(order):
            # Rank of each detection among its class in this image; keep the first max_detections of each class.
            sorted_classes = det_class_ids[order]
            by_class = np.argsort(sorted_classes, kind="stable")
            class_starts = np.searchsorted(sorted_classes[by_class], sorted_classes[by_class], side="left")
            rank = np.empty(len(order), dtype=np.int64)
            rank[by_class] = np.arange(len(order)) - class_starts
            order = order[rank < max_detections]
        outcome = match_detections(gt_boxes, gt_class_ids, gt_difficult, det_boxes[order], det_class_ids[order])
        for class_id in np.unique(det_class_ids[order]):
            selected = det_class_ids[order] == class_id
            scores_per_class[class_id].append(det_scores[order][selected])
            outcomes_per_class[class_id].append(outcome[:, selected])
    per_class, curves = {}, {}
    ap50, ap50_voc07, ap50_95, precisions, recalls = [], [], [], [], []
    curves_at_confidences = ([], [])
    total_detections = 0
    for class_id, name in enumerate(class_names):
        scores = np.concatenate(scores_per_class[class_id]) if scores_per_class[class_id] else np.zeros(0)
        outcome = (np.concatenate(outcomes_per_class[class_id], axis=1) if outcomes_per_class[class_id]
                   else np.zeros((len(IOU_THRESHOLDS), 0), dtype=np.int8))
        outcome = outcome[:, np.argsort(-scores, kind="stable")]
        total_detections += len(scores)
        entry = {"ap50": None, "ap50_voc07": None, "ap50_95": None, "precision": None, "recall": None,
                 "num_ground_truth": int(positives[class_id]), "num_detections": int(len(scores))}
        if positives[class_id] == 0:
            if len(scores):
                entry["precision"] = 0.0
            per_class[name] = entry
            continue
        class_ap_coco = []
        for threshold_index in range(len(IOU_THRESHOLDS)):
            row = outcome[threshold_index]
            row = row[row != _IGNORED]
            true_positives = np.cumsum(row == _TRUE_POSITIVE).astype(np.float64)
            false_positives = np.cumsum(row == _FALSE_POSITIVE).astype(np.float64)
            recall = true_positives / positives[class_id]
            # pycocotools divides by tp + fp + eps; VOC by max(tp + fp, eps) (exactly 1 for a perfect detector).
            coco_precision = true_positives / (true_positives + false_positives + np.spacing(1))
            precision = true_positives / np.maximum(true_positives + false_positives, np.finfo(np.float64).eps)
            interpolated = interpolated_precision_101(recall, coco_precision)
            class_ap_coco.append(float(np.mean(interpolated)))
            if threshold_index == 0:
                kept_scores = np.sort(scores)[::-1][outcome[0] != _IGNORED]
                for values, collected in zip(precision_recall_at_confidences(kept_scores, row, positives[class_id]),
                                             curves_at_confidences):
                    collected.append(values)
                entry["ap50"] = average_precision_all_points(recall, precision)
                entry["ap50_voc07"] = average_precision_11_points(recall, precision)
                entry["precision"] = float(precision[-1]) if len(row) else 0.0
                entry["recall"] = float(recall[-1]) if len(row) else 0.0
                curves[name] = interpolated.tolist()
        entry["ap50_95"] = float(np.mean(class_ap_coco))
        per_class[name] = entry
        ap50.append(entry["ap50"])
        ap50_voc07.append(entry["ap50_voc07"])
        ap50_95.append(entry["ap50_95"])
        precisions.append(entry["precision"])
        recalls.append(entry["recall"])

    def mean(values):
        return float(np.mean(values)) if values else math.nan

    return {"map50": mean(ap50), "map50_voc07": mean(ap50_voc07), "map50_95": mean(ap50_95),
            "precision": mean(precisions), "recall": mean(recalls),
            "best_f1": best_f1_point(*curves_at_confidences), "num_images": len(ground_truths),
            "num_ground_truth": int(total_ground_truth), "num_detections": int(total_detections),
            "per_class": per_class, "pr_curves": curves}


def read_prediction_file(path, image_size):
    """One prediction file as written by ``defi1 detect predict --save-txt``: lines ``class cx cy w h confidence``
    normalised. Returns ``(boxes (K, 4) xyxy pixels, scores (K,), class_ids (K,))`` for an image of ``image_size``
    ``(width, height)``; DataError naming the file and line for a malformed line."""
    from defi1.detection.labels import parse_label_file, pixels_from_labels

    rows = parse_label_file(path, with_confidence=True)
    return pixels_from_labels(rows.boxes, image_size), rows.confidences, rows.class_ids


def find_prediction_file(pred_dir, sample, split_dir=None) -> Path | None:
    """Where the prediction file of a sample is: ``pred_dir/<path inside its split>.txt`` (the path relative to
    ``split_dir`` when given, else the sample's ``relative_path``), else ``pred_dir/labels/<stem>.txt``, else
    ``pred_dir/<stem>.txt``; None when there is none."""
    pred_dir = Path(pred_dir)
    relative = (Path(sample.image_path).relative_to(split_dir) if split_dir is not None
                else sample.relative_path).with_suffix(".txt")
    for candidate in (pred_dir / relative, pred_dir / "labels" / relative, pred_dir / relative.name,
                      pred_dir / "labels" / relative.name):
        if candidate.is_file():
            return candidate
    return None


def evaluate_prediction_files(pred_dir, data_yaml, split: str = "val", *, max_detections: int | None = 100,
                              progress: bool = False) -> dict:
    """Evaluate a folder of prediction files against a dataset split.

    ``pred_dir`` holds one ``.txt`` per image (``class cx cy w h confidence`` normalised, see
    :func:`find_prediction_file` for where each is looked for); an image without a file has no detection. Difficult
    flags (``.difficult`` sidecars) are honoured. Returns :func:`evaluate_detections`' dict plus ``split``,
    ``data`` (the YAML path) and ``images_without_predictions``.
    """
    from defi1.detection.formats.loader import load_dataset
    from defi1.detection.labels import load_ground_truth
    from defi1.images import image_size

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: no such prediction folder")
    config = load_dataset(data_yaml)
    if not config.names:
        from defi1.errors import ConfigError

        raise ConfigError(f"{data_yaml}: the dataset does not name its classes (give it a dataset YAML with names)")
    samples = config.require_samples(split)
    ground_truths, predictions, missing = [], [], 0
    iterator = samples
    if progress:
        from tqdm import tqdm

        iterator = tqdm(samples, desc=f"evaluate {split}", unit="image")
    for sample in iterator:
        size = image_size(sample.image_path)
        ground_truths.append(load_ground_truth(sample, size, num_classes=config.num_classes, with_difficult=True))
        prediction_path = find_prediction_file(pred_dir, sample)
        if prediction_path is None:
            missing += 1
            predictions.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)))
            continue
        boxes, scores, class_ids = read_prediction_file(prediction_path, size)
        if len(class_ids) and class_ids.max() >= config.num_classes:
            from defi1.errors import DataError

            raise DataError(f"{prediction_path}: class {int(class_ids.max())} out of range (the dataset has "
                            f"{config.num_classes} classes)")
        predictions.append((boxes, scores, class_ids))
    metrics = evaluate_detections(ground_truths, predictions, num_classes=config.num_classes,
                                  class_names=config.names, max_detections=max_detections)
    metrics.update({"split": split, "data": str(data_yaml), "images_without_predictions": missing})
    return metrics


def format_metrics_table(metrics: dict) -> str:
    """A readable table of per-class and overall metrics (what ``write_metrics`` prints)."""
    def number(value):
        return "    -" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"

    width = max([len("all")] + [len(name) for name in metrics.get("per_class", {})])
    lines = [f"{'class':<{width}}  {'images':>6} {'boxes':>6} {'dets':>6}  {'P':>5} {'R':>5}  {'mAP50':>5} "
             f"{'VOC07':>5} {'50-95':>5}"]
    lines.append(f"{'all':<{width}}  {metrics.get('num_images', 0):>6} {metrics.get('num_ground_truth', 0):>6} "
                 f"{metrics.get('num_detections', 0):>6}  {number(metrics['precision'])} {number(metrics['recall'])}  "
                 f"{number(metrics['map50'])} {number(metrics['map50_voc07'])} {number(metrics['map50_95'])}")
    for name, entry in metrics.get("per_class", {}).items():
        lines.append(f"{name:<{width}}  {'':>6} {entry['num_ground_truth']:>6} {entry['num_detections']:>6}  "
                     f"{number(entry['precision'])} {number(entry['recall'])}  {number(entry['ap50'])} "
                     f"{number(entry['ap50_voc07'])} {number(entry['ap50_95'])}")
    best = metrics.get("best_f1")
    if best and best.get("f1") is not None and not math.isnan(best["f1"]):
        lines.append(f"at confidence {best['confidence']:.3f} (best F1 {best['f1']:.3f}): precision "
                     f"{best['precision']:.3f}, recall {best['recall']:.3f} (P and R above: all detections, "
                     f"confidence >= the evaluation threshold)")
    return "\n".join(lines)


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_metrics(out_dir, metrics: dict, *, print_table: bool = True) -> Path:
    """Write ``out_dir/metrics.json`` (atomically; NaN written as null) and print the table. Returns the JSON path."""
    from defi1.files import atomic_write_json, ensure_output_dir

    path = atomic_write_json(ensure_output_dir(out_dir) / "metrics.json", _json_ready(metrics))
    if print_table:
        print(format_metrics_table(metrics))
    return path
