"""Detection input pipeline benchmark (Part 2): images per second of ``DetectionDataset`` batches (read, letterbox,
augmentation, target encoding) at 416 px, as a ratio to plain JPEG decoding of the same files in the same run.

    python benchmarks/bench_detection_pipeline.py                  # 160 JPEG shapes images of 416 px
    python benchmarks/bench_detection_pipeline.py --images 64 --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def jpeg_dataset(folder, *, num_images, image_size, seed):
    """A shapes dataset re-encoded as JPEG (the format of real datasets); returns its YAML."""
    from defi1.detection.labels import list_samples, write_dataset_yaml
    from defi1.detection.shapes import SHAPE_NAMES, generate_shapes_dataset
    from defi1.images import read_image, write_image

    source = generate_shapes_dataset(Path(folder) / "png", num_images=num_images, num_val=1, seed=seed,
                                     image_size=image_size)
    root = Path(folder) / "jpeg"
    for sample in list_samples(Path(source).parent / "images" / "train"):
        write_image(root / "images" / "train" / f"{sample.image_path.stem}.jpg", read_image(sample.image_path),
                    quality=90)
        if sample.label_path.is_file():
            (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
            shutil.copy(sample.label_path, root / "labels" / "train" / sample.label_path.name)
    return write_dataset_yaml(root / "data.yaml", names=list(SHAPE_NAMES), train="images/train", val="images/train")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--image-size", type=int, default=416)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="also measure PyDataset with this many threads")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the files; the best is kept")
    arguments = parser.parse_args(argv)

    from defi1.detection.dataset import DetectionDataset
    from defi1.detection.labels import list_samples
    from defi1.environment import describe
    from defi1.images import read_image
    from defi1.yolo.anchors import YOLOV3_TINY_ANCHORS
    from defi1.yolo.heads import HeadSpec

    print(describe())
    heads = [HeadSpec(anchors=YOLOV3_TINY_ANCHORS[3:], stride=32, num_classes=5),
             HeadSpec(anchors=YOLOV3_TINY_ANCHORS[:3], stride=16, num_classes=5)]
    with tempfile.TemporaryDirectory() as folder:
        data_yaml = jpeg_dataset(folder, num_images=arguments.images, image_size=arguments.image_size, seed=0)
        samples = list_samples(Path(data_yaml).parent / "images" / "train")

        def decode_only():
            for sample in samples:
                read_image(sample.image_path)

        def pipeline(workers):
            dataset = DetectionDataset(samples, heads=heads, input_size=arguments.input_size,
                                       batch_size=arguments.batch_size, augment=True, workers=workers)
            if workers <= 1:
                for index in range(len(dataset)):
                    dataset[index]
                return
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:  # what PyDataset's thread workers do
                list(pool.map(dataset.__getitem__, range(len(dataset))))

        def best_rate(function, *args):
            times = []
            for _ in range(arguments.repeats):
                started = time.perf_counter()
                function(*args)
                times.append(time.perf_counter() - started)
            return len(samples) / min(times)

        decode_rate = best_rate(decode_only)
        pipeline_rate = best_rate(pipeline, 1)
        print(f"{len(samples)} JPEG images of {arguments.image_size} px, input {arguments.input_size}, "
              f"batch {arguments.batch_size}, best of {arguments.repeats}")
        print(f"JPEG decoding only (reference): {decode_rate:8.1f} images/s")
        print(f"DetectionDataset, 1 worker    : {pipeline_rate:8.1f} images/s  ratio {pipeline_rate / decode_rate:.2f}")
        if arguments.workers > 1:
            threaded = best_rate(pipeline, arguments.workers)
            print(f"DetectionDataset, {arguments.workers} threads   : {threaded:8.1f} images/s  "
                  f"ratio {threaded / decode_rate:.2f}")


if __name__ == "__main__":
    main()
