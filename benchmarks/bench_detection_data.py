"""Detection data and evaluation benchmark (Part 2): mAP evaluation against pycocotools, dataset generation.

Measures, in one run:

* ``defi1.detection.metrics.evaluate_detections`` (VOC mAP50, VOC07 and COCO mAP50:95 together) against
  pycocotools' ``COCOeval`` (evaluate + accumulate, the reference) on the same seeded random detections, and checks
  that both give the same mAP50:95;
* ``defi1.detection.shapes.generate_shapes_dataset`` (images per second at 256 px);
* ``defi1.detection.check.check_dataset`` on the generated dataset.

    python benchmarks/bench_detection_data.py                 # 500 images, 20 classes, 1,000 shapes images
    python benchmarks/bench_detection_data.py --images 200 --shapes 200
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np


def random_detections(num_images, num_classes, seed):
    """Ground truth and predictions (jittered copies, duplicates, false positives), xyxy pixels."""
    rng = np.random.default_rng(seed)
    ground_truths, predictions = [], []
    for _ in range(num_images):
        count = int(rng.integers(0, 15))
        corners = rng.uniform(0, 500, size=(count, 2))
        gt_boxes = np.concatenate([corners, corners + rng.uniform(8, 200, size=(count, 2))], axis=1)
        gt_classes = rng.integers(0, num_classes, size=count)
        sizes = np.concatenate([gt_boxes[:, 2:] - gt_boxes[:, :2]] * 2, axis=1)
        jittered = np.concatenate([gt_boxes + rng.normal(0, 0.1, size=(count, 4)) * sizes] * 3)
        noise_corners = rng.uniform(0, 500, size=(40, 2))
        noise = np.concatenate([noise_corners, noise_corners + rng.uniform(8, 150, size=(40, 2))], axis=1)
        boxes = np.concatenate([jittered, noise])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        classes = np.concatenate([np.tile(gt_classes, 3), rng.integers(0, num_classes, size=40)])
        ground_truths.append((gt_boxes, gt_classes))
        predictions.append((boxes, rng.uniform(size=len(boxes)), classes))
    return ground_truths, predictions


def pycocotools_evaluate(ground_truths, predictions, num_classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, ((gt_boxes, gt_classes), (boxes, scores, classes)) in enumerate(zip(ground_truths, predictions), 1):
        images.append({"id": image_id, "width": 1000, "height": 1000})
        for box, class_id in zip(gt_boxes, gt_classes):
            width, height = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id) + 1,
                                "bbox": [box[0], box[1], width, height], "area": width * height, "iscrowd": 0})
        for box, score, class_id in zip(boxes, scores, classes):
            results.append({"image_id": image_id, "category_id": int(class_id) + 1, "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": index + 1, "name": str(index)} for index in range(num_classes)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return time.perf_counter() - start, float(evaluation.stats[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="images in the mAP benchmark (default 500)")
    parser.add_argument("--classes", type=int, default=20, help="classes (default 20)")
    parser.add_argument("--shapes", type=int, default=1000, help="shapes images to generate (default 1000)")
    arguments = parser.parse_args(argv)

    from defi1.detection.check import check_dataset
    from defi1.detection.metrics import evaluate_detections
    from defi1.detection.shapes import generate_shapes_dataset
    from defi1.environment import describe

    print(describe())
    ground_truths, predictions = random_detections(arguments.images, arguments.classes, seed=0)
    num_detections = sum(len(prediction[1]) for prediction in predictions)
    reference_seconds, reference_map = pycocotools_evaluate(ground_truths, predictions, arguments.classes)
    start = time.perf_counter()
    metrics = evaluate_detections(ground_truths, predictions, num_classes=arguments.classes)
    seconds = time.perf_counter() - start
    print(f"mAP evaluation, {arguments.images} images, {num_detections} detections, {arguments.classes} classes:")
    print(f"  pycocotools COCOeval (reference): {reference_seconds:.2f} s, mAP50:95 {reference_map:.6f}")
    print(f"  defi1 evaluate_detections:        {seconds:.2f} s, mAP50:95 {metrics['map50_95']:.6f} "
          f"(+ mAP50 {metrics['map50']:.4f}, VOC07 {metrics['map50_voc07']:.4f}); "
          f"{reference_seconds / seconds:.2f}x pycocotools' speed; |difference| "
          f"{abs(metrics['map50_95'] - reference_map):.2e}")
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), time.process_time()
        data_yaml = generate_shapes_dataset(Path(folder) / "shapes", num_images=arguments.shapes, num_val=0, seed=0)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"shapes dataset: {arguments.shapes} images of 256 px in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU "
              f"({arguments.shapes / seconds:.0f} images/s; wall above CPU means other processes share the cores)")
        start = time.perf_counter()
        report = check_dataset(data_yaml)
        seconds = time.perf_counter() - start
        print(f"check_dataset: {report.splits['train'].num_images} images in {seconds:.1f} s "
              f"({report.splits['train'].num_images / seconds:.0f} images/s), {len(report.problems)} problems")


if __name__ == "__main__":
    main()
