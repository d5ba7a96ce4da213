"""YOLO maths benchmark: target encoding and post-processing at YOLOv3's 416 × 416 (three heads, 10647 predictions).

Each figure comes with a reference measured in the same run:

* ``encode_targets`` (vectorised over all boxes of a batch) against a per-box Python loop that assigns the same
  anchors and cells (the way many ports write it); both outputs are checked equal first;
* ``postprocess`` (score threshold, NMS class by class, letterbox undone) against the same candidates through ONE
  class-offset NMS pass (``defi1.boxes.non_max_suppression(..., class_ids=...)``), at the mAP-evaluation setting
  (threshold 0.001, every class above it, up to 3000 candidates) and at the display setting (0.25).

    python benchmarks/bench_yolo_maths.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def reference_encode(boxes_list, class_ids_list, *, input_size, heads, max_boxes):
    """Per-box loop encoding (the reference): same assignment rules as defi1.yolo.targets.encode_targets."""
    from defi1.boxes import cxcywh_from_xyxy, wh_iou

    all_anchors = np.concatenate([head.anchors for head in heads])
    owners = [(position, local) for position, head in enumerate(heads) for local in range(head.num_anchors)]
    num_classes = heads[0].num_classes
    outputs = []
    for head in heads:
        grid = input_size // head.stride
        outputs.append(np.zeros((len(boxes_list), grid * grid * head.num_anchors + max_boxes, 5 + num_classes),
                                np.float32))
    for image, (boxes, class_ids) in enumerate(zip(boxes_list, class_ids_list)):
        listed = 0
        for box, class_id in zip(boxes, class_ids):
            centre_x, centre_y, width, height = cxcywh_from_xyxy(box[None])[0]
            if width <= 0 or height <= 0:
                continue
            best = int(np.argmax(wh_iou([[width, height]], all_anchors)[0]))
            position, local = owners[best]
            head = heads[position]
            grid = input_size // head.stride
            cell_x = min(int(centre_x // head.stride), grid - 1)
            cell_y = min(int(centre_y // head.stride), grid - 1)
            row = (cell_y * grid + cell_x) * head.num_anchors + local
            outputs[position][image, row, :5] = [centre_x, centre_y, width, height, 1]
            outputs[position][image, row, 5:] = 0
            outputs[position][image, row, 5 + class_id] = 1
            if listed < max_boxes:
                for output, other in zip(outputs, heads):
                    cells = (input_size // other.stride) ** 2 * other.num_anchors
                    output[image, cells + listed, :5] = [centre_x, centre_y, width, height, 1]
                listed += 1
    return outputs


def timed(function, repeats):
    """Median wall time of ``repeats`` calls after one warm-up call, and the last result."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def offset_nms_postprocess(boxes, objectness, classes, *, conf_threshold, iou_threshold, max_detections,
                           max_candidates):
    """Reference post-processing: the same candidates, one NMS pass with classes offset apart."""
    from defi1.boxes import non_max_suppression

    results = []
    for index in range(len(boxes)):
        scores = objectness[index, :, None] * classes[index]
        candidate, class_ids = np.nonzero(scores > conf_threshold)
        candidate_scores = scores[candidate, class_ids]
        top = np.argsort(-candidate_scores, kind="stable")[:max_candidates]
        kept = non_max_suppression(boxes[index, candidate[top]], candidate_scores[top], iou_threshold,
                                   class_ids=class_ids[top], max_detections=max_detections)
        results.append(len(kept))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--boxes-per-image", type=int, default=20)
    arguments = parser.parse_args()

    from keras import ops

    from defi1.environment import describe
    from defi1.yolo.anchors import YOLOV3_ANCHORS, YOLOV3_MASKS
    from defi1.yolo.decode import decode_heads, postprocess
    from defi1.yolo.heads import HeadSpec
    from defi1.yolo.targets import encode_targets

    print(json.dumps(describe(), indent=2))
    rng = np.random.default_rng(0)
    heads = [HeadSpec(anchors=YOLOV3_ANCHORS[mask], stride=stride, num_classes=80)
             for mask, stride in zip(YOLOV3_MASKS, (32, 16, 8))]

    # Target encoding.
    boxes_list, class_ids_list = [], []
    for _ in range(arguments.batch_size):
        sizes = rng.uniform(8, 300, size=(arguments.boxes_per_image, 2))
        centres = rng.uniform(0, 416, size=(arguments.boxes_per_image, 2))
        boxes_list.append(np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1))
        class_ids_list.append(rng.integers(0, 80, arguments.boxes_per_image))
    fast_time, fast = timed(lambda: encode_targets(boxes_list, class_ids_list, input_size=416, heads=heads,
                                                   max_boxes=100), arguments.repeats)
    slow_time, slow = timed(lambda: reference_encode(boxes_list, class_ids_list, input_size=416, heads=heads,
                                                     max_boxes=100), arguments.repeats)
    for fast_output, slow_output in zip(fast, slow):
        np.testing.assert_allclose(fast_output, slow_output, atol=1e-4)
    print(f"encode_targets, batch {arguments.batch_size} x {arguments.boxes_per_image} boxes, YOLOv3 416: "
          f"{fast_time * 1e3:.1f} ms vectorised vs {slow_time * 1e3:.1f} ms per-box loop "
          f"(x{slow_time / fast_time:.1f} faster)")

    # Post-processing of random head outputs, objectness prior ~1 % as in a trained network.
    raw = []
    for head, grid in zip(heads, (13, 26, 52)):
        output = rng.normal(0, 1, size=(8, grid, grid, 3, 85)).astype(np.float32)
        output[..., 4] += np.log(0.01 / 0.99)
        raw.append(output.reshape(8, grid, grid, 255))
    decode_time, decoded = timed(lambda: [ops.convert_to_numpy(tensor) for tensor in decode_heads(raw, heads,
                                                                                                   input_size=416)],
                                 arguments.repeats)
    print(f"decode_heads, batch 8, YOLOv3 416 (10647 x 8 predictions): {decode_time * 1e3:.1f} ms "
          f"({decode_time / 8 * 1e3:.2f} ms per image)")
    boxes, objectness, classes = decoded
    for label, threshold, multi_label in (("mAP setting (conf 0.001, multi-label)", 0.001, True),
                                          ("display setting (conf 0.25)", 0.25, False)):
        ours_time, ours = timed(lambda: postprocess(boxes, objectness, classes, conf_threshold=threshold,
                                                    iou_threshold=0.45, max_detections=100,
                                                    multi_label=multi_label), arguments.repeats)
        reference_time, _ = timed(lambda: offset_nms_postprocess(boxes, objectness, classes,
                                                                 conf_threshold=threshold, iou_threshold=0.45,
                                                                 max_detections=100, max_candidates=3000),
                                  arguments.repeats)
        detections = np.mean([len(detection) for detection in ours])
        print(f"postprocess, {label}, batch 8: {ours_time / 8 * 1e3:.2f} ms per image ({detections:.0f} detections)"
              f" vs one offset NMS pass {reference_time / 8 * 1e3:.2f} ms (x{reference_time / ours_time:.1f})")


if __name__ == "__main__":
    main()
