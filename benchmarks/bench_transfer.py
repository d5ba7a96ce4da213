"""Transfer-learning benchmark (Part 2 on real photographs): tiny-YOLOv3 fine-tuned from darknet's released COCO
weights on BCCD (364 microscope photographs hand-annotated with labelImg, 3 classes), with BCCD's own train / val /
test lists, for a fixed wall-clock budget on the CPU; reports the test split's map50, map50-95 and per-class AP.

Training goes through the library's public function (:func:`defi1.detection.training.train_detector`, what
``defi1 detect train --weights ...`` calls) with the library's defaults for the chosen weights; every setting can be
changed for an ablation with a flag or ``--set FIELD=VALUE`` (any :class:`TrainingSettings` field; ``aug.FIELD=VALUE``
for an :class:`AugmentationSettings` field). ``--weights none`` trains the same network from random weights in the
same budget, to show what pretraining buys.

    python benchmarks/bench_transfer.py                                  # released tiny weights, 30 minutes
    python benchmarks/bench_transfer.py --weights none                   # from scratch, same budget
    python benchmarks/bench_transfer.py --minutes 7 --input-size 320 --set freeze_epochs=0 --label "no freeze"
    python benchmarks/bench_transfer.py --minutes 7 --set aug.scale_range="(0.5, 1.5)" --results rows.md

The last line printed is a markdown table row (also appended to ``--results``), with the machine's load average at
the start and end of the run: the machine may be shared, and a loaded machine reaches fewer epochs in a budget.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import random
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BCCD_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "bccd" / "BCCD"
FETCH_WEIGHTS = PROJECT_ROOT.parent / "shared" / "darknet" / "fetch-released-tiny-weights.sh"


def released_tiny_weights() -> Path:
    """Darknet's released ``yolov3-tiny.weights`` through ``../shared/darknet/fetch-released-tiny-weights.sh``."""
    if not FETCH_WEIGHTS.is_file():
        raise FileNotFoundError(f"{FETCH_WEIGHTS}: not found (pass --weights PATH)")
    completed = subprocess.run(["bash", str(FETCH_WEIGHTS)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise FileNotFoundError(f"{FETCH_WEIGHTS} could not fetch the weights: {completed.stderr.strip()}")
    return Path(completed.stdout.strip().splitlines()[-1])


def bccd_dataset(source: Path, out_dir: Path, *, train_images: int | None = None, seed: int = 0) -> Path:
    """BCCD converted to the YOLO layout in ``out_dir`` (``defi1 data convert --from voc``: the ImageSets splits are
    kept), once; returns the dataset YAML. ``train_images``: a YAML whose train split lists that many training images
    drawn at random (``seed``), val and test unchanged."""
    from defi1.detection.formats.convert import convert_dataset
    from defi1.detection.labels import load_dataset_yaml, write_dataset_yaml

    data_yaml = out_dir / "data.yaml"
    if not data_yaml.is_file():
        convert_dataset(source, out_dir, source_format="voc", target_format="yolo", problems=[], overwrite=True)
    if train_images is None:
        return data_yaml
    images = sorted(path.name for path in (out_dir / "images" / "train").iterdir())
    chosen = sorted(random.Random(seed).sample(images, min(train_images, len(images))))
    listing = out_dir / f"train_{len(chosen)}_seed{seed}.txt"
    listing.write_text("".join(f"images/train/{name}\n" for name in chosen))
    return write_dataset_yaml(out_dir / f"data_train{len(chosen)}_seed{seed}.yaml",
                              names=list(load_dataset_yaml(data_yaml).names), train=listing.name,
                              val="images/val", test="images/test")


def parse_assignments(assignments) -> tuple[dict, dict]:
    """``["key=value", "aug.key=value"]`` as ``(TrainingSettings fields, AugmentationSettings fields)``; values are
    Python literals (``0.5``, ``(0.5, 1.5)``, ``None``, ``'cosine'``), or text when they are not."""
    from defi1.detection.augment import AugmentationSettings
    from defi1.detection.training import TrainingSettings

    training_fields = {field.name for field in dataclasses.fields(TrainingSettings)}
    augmentation_fields = {field.name for field in dataclasses.fields(AugmentationSettings)}
    training, augmentation = {}, {}
    for assignment in assignments:
        key, separator, text = assignment.partition("=")
        if not separator:
            raise ValueError(f"--set {assignment}: expected KEY=VALUE")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        key = key.strip()
        if key.startswith("aug."):
            if key[4:] not in augmentation_fields:
                raise ValueError(f"--set {assignment}: no augmentation setting {key[4:]!r}")
            augmentation[key[4:]] = value
        elif key in training_fields:
            training[key] = value
        else:
            raise ValueError(f"--set {assignment}: no training setting {key!r}")
    return training, augmentation


def _ap(entry, key):
    value = entry.get(key)
    return "-" if value is None else f"{value:.3f}"


def markdown_row(*, label, weights, settings, minutes, epochs, frozen, metrics, load_start, load_end, train_images):
    per_class = " | ".join(f"{_ap(entry, 'ap50')} / {_ap(entry, 'ap50_95')}"
                           for entry in metrics["per_class"].values())
    return (f"| {datetime.date.today().isoformat()} | {label} | {weights} | {settings.input_size} | {train_images} | "
            f"{minutes:g} | {epochs} ({frozen} frozen) | **{metrics['map50']:.3f}** | **{metrics['map50_95']:.3f}** | "
            f"{per_class} | {load_start} → {load_end} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(BCCD_DIR), help="BCCD's VOC folder (Annotations, ImageSets, JPEGImages)")
    parser.add_argument("--weights", default="released",
                        help="'released' (darknet's yolov3-tiny.weights, fetched), a weights file, or 'none'")
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget (30)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs, both stages (default: the library's)")
    parser.add_argument("--input-size", type=int, default=None, help="network input side (default: the library's)")
    parser.add_argument("--freeze-epochs", type=int, default=None, help="stage 1 epochs (default: the library's)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--fine-tune-learning-rate", type=float, default=None)
    parser.add_argument("--anchors", choices=("default", "kmeans"), default=None)
    parser.add_argument("--train-images", type=int, default=None, help="train on this many of the 205 (random)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any TrainingSettings field, or aug.FIELD for AugmentationSettings (repeatable)")
    parser.add_argument("--label", default=None, help="the run's name in the table row")
    parser.add_argument("--results", default=None, help="append the markdown row to this file")
    parser.add_argument("--out", default=None, help="work folder, kept (default: a temporary folder)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "defi1-bench-transfer"),
                        help="where BCCD is converted once")
    arguments = parser.parse_args(argv)

    from defi1.detection.augment import AugmentationSettings
    from defi1.detection.evaluation import evaluate_model
    from defi1.detection.training import TrainingSettings, train_detector
    from defi1.environment import describe, load_average

    for key, value in describe().items():
        print(f"{key}: {value}")
    load_start = load_average()
    print(f"load average at start: {load_start}")
    weights = None if arguments.weights.lower() == "none" else (
        released_tiny_weights() if arguments.weights == "released" else Path(arguments.weights))
    training_overrides, augmentation_overrides = parse_assignments(arguments.set)
    for flag, field in (("epochs", "epochs"), ("input_size", "input_size"), ("freeze_epochs", "freeze_epochs"),
                        ("learning_rate", "learning_rate"), ("fine_tune_learning_rate", "fine_tune_learning_rate")):
        if getattr(arguments, flag) is not None:
            training_overrides[field] = getattr(arguments, flag)
    if arguments.anchors is not None:
        training_overrides["anchors"] = None if arguments.anchors == "default" else "kmeans"
    if augmentation_overrides:
        training_overrides["augmentation"] = AugmentationSettings(**augmentation_overrides)

    with tempfile.TemporaryDirectory() as temporary:
        out_dir = Path(arguments.out or temporary)
        data_yaml = bccd_dataset(Path(arguments.data), Path(arguments.cache) / "bccd",
                                 train_images=arguments.train_images)
        settings = TrainingSettings(data=data_yaml, model="yolov3-tiny", weights=weights,
                                    out_dir=out_dir / "training", max_time_s=arguments.minutes * 60, verbose=2)
        settings = dataclasses.replace(settings, **training_overrides)
        print("settings:", {key: value for key, value in settings.record().items() if key not in ("data", "out_dir")})
        started = time.perf_counter()
        result = train_detector(settings)
        training_time = time.perf_counter() - started
        metrics = evaluate_model(result.best_model_path, data_yaml, "test", out_dir=out_dir / "evaluation")
    load_end = load_average()
    train_images = arguments.train_images or 205
    frozen = min(settings.resolved_freeze_epochs(), result.epochs_completed)
    print(f"training: {result.epochs_completed} epochs ({frozen} frozen) in {training_time / 60:.1f} min; "
          f"load average at end: {load_end}")
    print(f"test map50 {metrics['map50']:.3f}  map50_95 {metrics['map50_95']:.3f}  "
          f"map50_voc07 {metrics['map50_voc07']:.3f}  "
          + "  ".join(f"{name} {_ap(entry, 'ap50')}/{_ap(entry, 'ap50_95')}"
                      for name, entry in metrics["per_class"].items()))
    label = arguments.label or (" ".join(arguments.set) or "library defaults")
    row = markdown_row(label=label, weights="none" if weights is None else Path(weights).name, settings=settings,
                       minutes=arguments.minutes, epochs=result.epochs_completed, frozen=frozen, metrics=metrics,
                       load_start=load_start, load_end=load_end, train_images=train_images)
    print(row)
    if arguments.results:
        with open(arguments.results, "a", encoding="utf-8") as results:
            results.write(row + "\n")
    return metrics


if __name__ == "__main__":
    main()
