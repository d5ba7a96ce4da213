"""Benchmark of Part 1: batch generator throughput and the demo's accuracies and wall time.

1. ``ImagePathDataset`` throughput (images/s) at 224×224 with 1 and 2 workers, as a ratio to plain decoding of the
   same JPEG files (``defi1.images.read_image`` in a loop) measured in the same run. The generator also resizes and
   applies MobileNetV2's ``preprocess_input``, so a ratio near 1 means its overhead is small.
2. ``run_classification_demo`` (full, or ``--smoke``): test accuracy of each model and wall time.

Usage: ``python benchmarks/bench_classification.py [--images 256] [--skip-demo] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def write_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` random-texture 320×240 JPEG files (decoded and resized to 224×224 by the generator)."""
    from defi1.images import write_image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    paths = []
    for index in range(count):
        image = np.kron(np.roll(base, index, axis=1), np.ones((4, 4, 1), dtype=np.uint8))
        paths.append(write_image(folder / f"image_{index:04d}.jpg", image, quality=90))
    return paths


def plain_decoding(paths) -> float:
    from defi1.images import read_image

    started = time.perf_counter()
    for path in paths:
        read_image(path)
    return len(paths) / (time.perf_counter() - started)


def generator_throughput(paths, *, workers, batch_size=32, epochs=2) -> float:
    """Images/s through ``ImagePathDataset`` as ``model.fit`` consumes it (Keras's PyDataset adapter and workers)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from defi1.classification.generator import ImagePathDataset

    dataset = ImagePathDataset(paths, np.zeros(len(paths), dtype=np.int64), batch_size=batch_size,
                               image_size=(224, 224), preprocessing="mobilenet_v2", shuffle=True, workers=workers)
    adapter = PyDatasetAdapter(dataset, shuffle=False)
    images = 0
    started = time.perf_counter()
    for _ in range(epochs):
        adapter.on_epoch_begin()
        for batch_images, _labels in adapter.get_numpy_iterator():
            images += len(batch_images)
        adapter.on_epoch_end()
    return images / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="run the demo with its smoke settings")
    arguments = parser.parse_args(argv)

    from defi1.environment import describe

    print("machine:", json.dumps(describe()))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(Path(folder), arguments.images)
        plain_decoding(paths[:16])  # warm the file cache
        # best of 3 rounds, interleaved, so that load from other processes affects both sides alike
        rounds = [(plain_decoding(paths), generator_throughput(paths, workers=1),
                   generator_throughput(paths, workers=2)) for _ in range(3)]
        reference, *rates = (max(values) for values in zip(*rounds))
        print(f"plain decoding (read_image, 320x240 JPEG): {reference:.1f} images/s (best of 3)")
        for workers, rate in zip((1, 2), rates):
            print(f"ImagePathDataset 224x224 + preprocess_input, workers={workers}: {rate:.1f} images/s "
                  f"(ratio to plain decoding {rate / reference:.2f})")
    if not arguments.skip_demo:
        from defi1.classification.demo import run_classification_demo

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            summary = run_classification_demo(folder, smoke=arguments.smoke)
            wall = time.perf_counter() - started
        for name, row in summary["models"].items():
            print(f"demo {name}: train {row['train_accuracy']:.4f}, val {row['val_accuracy']:.4f}, "
                  f"test {row['test_accuracy']:.4f} ({row['epochs']} epochs, {row['seconds']} s)")
        print(f"demo chosen: {summary['chosen_model']}, test accuracy {summary['test_accuracy']:.4f}; "
              f"wall time {wall:.1f} s{' (smoke)' if arguments.smoke else ''}")


if __name__ == "__main__":
    main()
