"""``defi1 data check`` on BCCD (364 photographs, 640 × 480 JPEG, Pascal VOC): the full check (every pixel decoded, the
reference) against ``--headers-only`` (headers and the end marker of each file), and the image reading alone: the
header read of ``defi1.images.image_size`` now against the former one (the image's EXIF transpose, which copies, so
decodes, every image), and against full decoding. Rounds alternate; medians are reported with their ratios to the
full check measured in the same run.

    python benchmarks/bench_check.py [--data ../shared/datasets/bccd/BCCD] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def former_header_size(path):
    """What ``image_size`` did before issue 12: open, EXIF-transpose (a copy of the pixels), read the size."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "bccd" / "BCCD"))
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    from defi1.detection.check import check_dataset
    from defi1.images import image_size, read_image

    data = Path(arguments.data)
    images = sorted((data / "JPEGImages").glob("*.jpg"))
    cases = {
        "data check (every pixel decoded; reference)": lambda: check_dataset(data, decode_images=True),
        "data check --headers-only": lambda: check_dataset(data, decode_images=False),
        "image reading alone: decode every image": lambda: [read_image(path) for path in images],
        "image reading alone: former header read (EXIF transpose copy)": lambda: [former_header_size(path)
                                                                                 for path in images],
        "image reading alone: header read now": lambda: [image_size(path) for path in images],
    }
    times = {name: [] for name in cases}
    for name, case in cases.items():  # warm-up: file cache, imports
        case()
    for _ in range(arguments.rounds):
        for name, case in cases.items():
            start = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - start)
    reference = statistics.median(times[next(iter(cases))])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
          f" load average {', '.join(f'{value:.1f}' for value in os.getloadavg())}; {len(images)} images; "
          f"median of {arguments.rounds} rounds")
    print("| case | median | ratio to the full check |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} s | {median / reference:.3f} |")


if __name__ == "__main__":
    main()
