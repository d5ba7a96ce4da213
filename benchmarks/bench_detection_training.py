"""Detection training benchmark (Part 2): tiny-YOLOv3 from scratch on a generated shapes dataset, on the CPU, for a
fixed wall-clock budget; reports the test split's mAP50 and mAP50:95 and the training throughput.

    python benchmarks/bench_detection_training.py                       # 1,000 images, 20 minutes
    python benchmarks/bench_detection_training.py --minutes 5 --images 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images in all (80 %% train, 10 %% val, 10 %% test)")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--input-size", type=int, default=160)
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--epochs", type=int, default=200, help="upper bound; the time budget usually stops first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--assign-threshold", type=float, default=0.213,
                        help="darknet iou_thresh: extra responsible anchors (1.0: YOLOv3's best anchor only)")
    parser.add_argument("--ema", type=float, default=0.99, help="weights moving average momentum (0: off)")
    parser.add_argument("--schedule", choices=("cosine", "plateau"), default="cosine")
    parser.add_argument("--scale-jitter", type=float, default=0.1, help="random scale in 1 +- this (library: 0.25)")
    parser.add_argument("--aspect-jitter", type=float, default=0.1, help="library default: 0.3")
    parser.add_argument("--translate", type=float, default=0.05, help="library default: 0.1")
    parser.add_argument("--jit-compile", choices=("on", "off"), default="on",
                        help="XLA for the training step (on: ~15 %% faster on this CPU for tiny-YOLOv3)")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    arguments = parser.parse_args(argv)

    from defi1.detection.augment import AugmentationSettings
    from defi1.detection.evaluation import evaluate_model
    from defi1.detection.shapes import ShapesSettings, generate_shapes_dataset
    from defi1.detection.training import TrainingSettings, train_detector
    from defi1.environment import describe

    print(describe())
    with tempfile.TemporaryDirectory() as temporary:
        out_dir = Path(arguments.out or temporary)
        held_out = max(1, arguments.images // 10)
        data_yaml = generate_shapes_dataset(out_dir / "shapes", num_images=arguments.images - 2 * held_out,
                                            num_val=held_out, num_test=held_out, seed=0,
                                            image_size=arguments.image_size, overwrite=True,
                                            settings=ShapesSettings(image_size=arguments.image_size, max_objects=4,
                                                                    min_size=0.12))
        started = time.perf_counter()
        result = train_detector(TrainingSettings(
            data=data_yaml, model="yolov3-tiny", input_size=arguments.input_size, epochs=arguments.epochs,
            batch_size=arguments.batch_size, learning_rate=arguments.learning_rate, anchors="kmeans",
            batchnorm_momentum=0.95, early_stopping_patience=0, reduce_lr_patience=3,
            learning_rate_schedule=arguments.schedule, warmup_epochs=1.0,
            ema_momentum=arguments.ema or None, assign_threshold=arguments.assign_threshold,
            jit_compile=arguments.jit_compile == "on",
            augmentation=AugmentationSettings(scale_range=(1 - arguments.scale_jitter, 1 + arguments.scale_jitter),
                                              aspect_jitter=arguments.aspect_jitter, translate=arguments.translate),
            max_time_s=arguments.minutes * 60, out_dir=out_dir / "training", verbose=2))
        training_time = time.perf_counter() - started
        metrics = evaluate_model(result.best_model_path, data_yaml, "test", out_dir=out_dir / "evaluation")
        train_images = arguments.images - 2 * held_out
        print(f"tiny-YOLOv3 from scratch, {train_images} train / {held_out} val / {held_out} test shapes images, "
              f"input {arguments.input_size}, batch {arguments.batch_size}, {arguments.schedule} learning rate "
              f"{arguments.learning_rate:g}, EMA {arguments.ema or 'off'}, assign threshold "
              f"{arguments.assign_threshold:g}, XLA {arguments.jit_compile}, scale jitter {arguments.scale_jitter:g}, "
              f"aspect jitter {arguments.aspect_jitter:g}, translate {arguments.translate:g}")
        print(f"training: {result.epochs_completed} epochs in {training_time / 60:.1f} min "
              f"({train_images * result.epochs_completed / training_time:.1f} images/s with validation)")
        print(f"test map50 {metrics['map50']:.3f}  map50_95 {metrics['map50_95']:.3f}  "
              f"map50_voc07 {metrics['map50_voc07']:.3f}")


if __name__ == "__main__":
    main()
