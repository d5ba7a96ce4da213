"""What the validation mAP costs each epoch of detection training (issue 11): ValidationMap (the detections of
`detect evaluate` on the validation split, scored by defi1.detection.metrics) against the training steps of one epoch
of the same model, measured in the same run.

    python benchmarks/bench_validation_map.py                      # tiny-YOLOv3, 160 px, 40 val / 240 train images
    python benchmarks/bench_validation_map.py --input-size 416 --val-images 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=160)
    parser.add_argument("--val-images", type=int, default=40)
    parser.add_argument("--train-images", type=int, default=240, help="the epoch the cost is compared with")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args(argv)

    import keras
    import numpy as np

    from defi1.detection.dataset import DetectionDataset
    from defi1.detection.formats.loader import load_dataset
    from defi1.detection.shapes import ShapesSettings, generate_shapes_dataset
    from defi1.detection.training_callbacks import ValidationMap
    from defi1.environment import describe
    from defi1.yolo.heads import head_specs
    from defi1.yolo.loss import yolo_losses
    from defi1.yolo.model import build_yolov3_tiny

    print(describe())
    print("load average before:", open("/proc/loadavg").read().split()[:3])
    with tempfile.TemporaryDirectory() as temporary:
        size = arguments.input_size
        data_yaml = generate_shapes_dataset(Path(temporary) / "shapes", num_images=arguments.train_images,
                                            num_val=arguments.val_images, seed=0, image_size=size,
                                            settings=ShapesSettings(image_size=size, max_objects=3, min_size=0.12))
        index = load_dataset(data_yaml)
        model = build_yolov3_tiny(num_classes=len(index.names), input_size=size, class_names=list(index.names))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=yolo_losses(model, max_boxes=100),
                      jit_compile=False)
        train = DetectionDataset(index.samples("train"), heads=head_specs(model), input_size=size,
                                 batch_size=arguments.batch_size, augment=True)
        images, targets = train[0]
        model.train_on_batch(images, targets)  # traced once
        started = time.perf_counter()
        for batch in range(len(train)):
            images, targets = train[batch]
            model.train_on_batch(images, targets)
        epoch_seconds = time.perf_counter() - started
        measure = ValidationMap(index.samples("val"), list(index.names), input_size=size,
                                batch_size=arguments.batch_size)
        measure.set_model(model)
        measure.evaluate()  # traces predict_on_batch
        seconds = []
        for _ in range(arguments.repeats):
            started = time.perf_counter()
            metrics = measure.evaluate()
            seconds.append(time.perf_counter() - started)
    cost = float(np.median(seconds))
    print(f"tiny-YOLOv3 at {size} px, batch {arguments.batch_size}: one training epoch of {arguments.train_images} "
          f"images {epoch_seconds:.1f} s (data loading included); validation mAP on {arguments.val_images} images "
          f"{cost:.2f} s (median of {arguments.repeats}; {metrics['num_detections']} detections scored), "
          f"{cost / epoch_seconds:.1%} of the epoch")
    print("load average after:", open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
