"""``defi1 data check``: what a detection dataset holds and every problem in it; and the same check before training.

:func:`check_dataset` loads a dataset of any form the one loader reads (:func:`defi1.detection.formats.load_dataset`:
a dataset YAML in every Ultralytics/Roboflow form, a YOLO folder, Pascal VOC, COCO, LabelMe), counts images and
objects per class and split, summarises box sizes, and lists each problem with the file and its line (label files)
or object (other formats): the kinds, their severities and what training does with each are in
:mod:`defi1.detection.problems`. ``defi1 data check`` exits with status 1 when it finds an error (warnings alone:
0), and with ``--strict`` on warnings too.

:func:`check_before_training` is the check ``defi1 detect train`` runs before its first epoch (headers only, plus
the end of each JPEG and PNG file: a truncated image is found without decoding every pixel).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.detection.formats.common import DatasetIndex
from defi1.detection.formats.loader import load_dataset
from defi1.detection.label_rows import check_label_file
from defi1.detection.labels import REFUSED_KINDS, label_path_for, pixels_from_labels
from defi1.detection.problems import SEVERITIES, Problem, count_by_kind, format_problems, summary_line
from defi1.errors import ConfigError, DataError, ImageReadError
from defi1.images import is_image_path, verify_image

__all__ = ["SEVERITIES", "CheckReport", "Problem", "SplitSummary", "check_before_training", "check_dataset"]


@dataclass
class SplitSummary:
    """Counts of one split. ``box_sizes``: ``(N, 2)`` widths and heights of its valid boxes, in pixels."""

    name: str
    folder: Path
    num_images: int = 0
    num_backgrounds: int = 0
    instances_per_class: dict = field(default_factory=dict)
    images_per_class: dict = field(default_factory=dict)
    box_sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`: ``splits`` (name -> :class:`SplitSummary`), ``problems``, ``names``, the
    loaded dataset (``index``) and ``left_out``: the images training cannot use, each with the problem why (their
    image or annotation file cannot be read, or their label file holds a line training refuses)."""

    root: Path
    names: list | None
    splits: dict
    problems: list
    index: DatasetIndex | None = None
    left_out: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there is no error and no warning (background images are fine)."""
        return not any(problem.severity in ("error", "warning") for problem in self.problems)

    @property
    def has_errors(self) -> bool:
        """True when some problem is an error (what makes ``defi1 data check`` exit with status 1)."""
        return any(problem.severity == "error" for problem in self.problems)

    def problems_of(self, kind: str) -> list:
        return [problem for problem in self.problems if problem.kind == kind]

    def counts(self) -> dict:
        """Number of problems per kind."""
        return count_by_kind(self.problems)

    def box_size_summary(self) -> dict:
        """Percentiles (0, 25, 50, 75, 100) of box width and height in pixels, and the COCO size buckets (small
        < 32², medium < 96², large), over every split."""
        sizes = np.concatenate([summary.box_sizes for summary in self.splits.values()] + [np.zeros((0, 2))])
        if len(sizes) == 0:
            return {"count": 0}
        areas = sizes[:, 0] * sizes[:, 1]
        percentiles = [0, 25, 50, 75, 100]
        return {"count": int(len(sizes)),
                "width_percentiles": np.percentile(sizes[:, 0], percentiles).round(1).tolist(),
                "height_percentiles": np.percentile(sizes[:, 1], percentiles).round(1).tolist(),
                "small": int(np.sum(areas < 32 ** 2)), "medium": int(np.sum((areas >= 32 ** 2) & (areas < 96 ** 2))),
                "large": int(np.sum(areas >= 96 ** 2))}

    def to_dict(self) -> dict:
        return {"root": str(self.root), "names": self.names, "ok": self.ok, "has_errors": self.has_errors,
                "splits": {name: {"folder": str(summary.folder), "images": summary.num_images,
                                  "backgrounds": summary.num_backgrounds,
                                  "instances_per_class": summary.instances_per_class,
                                  "images_per_class": summary.images_per_class}
                           for name, summary in self.splits.items()},
                "box_sizes": self.box_size_summary(), "problem_counts": self.counts(),
                "problems": [problem.to_dict() for problem in self.problems]}

    def format(self, *, max_problems: int = 50) -> str:
        """A readable report: a class × split table, box sizes, then the problems (the first ``max_problems`` of
        each kind)."""
        names = self.names or []
        # Every named class (a class with no object shows as 0: worth seeing), plus any unnamed id found.
        class_ids = sorted(set(range(len(names))) | {class_id for summary in self.splits.values()
                                                     for class_id in summary.instances_per_class})
        label_of = {class_id: names[class_id] if class_id < len(names) else f"class {class_id}" for class_id in
                    class_ids}
        width = max([11] + [len(label) for label in label_of.values()])
        header = f"{'class':<{width}}" + "".join(f"  {name:>12}" for name in self.splits)
        lines = [f"Dataset {self.root}", "", "objects (images) per class and split:", header]
        for class_id in class_ids:
            cells = []
            for summary in self.splits.values():
                cell = f"{summary.instances_per_class.get(class_id, 0)} ({summary.images_per_class.get(class_id, 0)})"
                cells.append(f"  {cell:>12}")
            lines.append(f"{label_of[class_id]:<{width}}" + "".join(cells))
        lines.append(f"{'images':<{width}}" + "".join(f"  {s.num_images:>12}" for s in self.splits.values()))
        lines.append(f"{'backgrounds':<{width}}" + "".join(f"  {s.num_backgrounds:>12}" for s in self.splits.values()))
        sizes = self.box_size_summary()
        lines.append("")
        if sizes["count"]:
            lines.append(f"box sizes ({sizes['count']} boxes), pixels, min/25%/median/75%/max: width "
                         f"{sizes['width_percentiles']}, height {sizes['height_percentiles']}; COCO buckets: "
                         f"{sizes['small']} small, {sizes['medium']} medium, {sizes['large']} large")
        else:
            lines.append("no box")
        lines.append("")
        if not self.problems:
            lines.append("no problem found")
        else:
            lines.append("problems: " + summary_line(self.problems))
            lines += format_problems(self.problems, max_per_kind=max_problems)
        return "\n".join(lines)


def _file_hash(path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_dataset(data, *, names=None, decode_images: bool = True, progress: bool = False,
                  find_copies: bool = True, source_format=None) -> CheckReport:
    """Check a detection dataset.

    Args:
        data: a dataset YAML, COCO JSON or dataset folder (:func:`defi1.detection.formats.load_dataset`).
        names: class names, when the dataset does not give them (enables the class range check).
        decode_images: decode every image (finds any damage); False reads the headers and the end of each JPEG and
            PNG file (finds truncated files; :func:`defi1.images.verify_image`).
        progress: tqdm progress bar.
        find_copies: hash every image to find the same image in two splits (reads every byte).
        source_format: the annotation format, when it cannot be told from ``data``.
    Returns:
        a :class:`CheckReport`. Only a missing dataset, or a YAML or annotation file unreadable as a whole, raise.
    """
    index = load_dataset(data, names=names, source_format=source_format)
    names = index.names
    problems = list(index.problems)
    left_out = {problem.image_path: problem for problem in problems if problem.image_path is not None}
    summaries = {split: SplitSummary(name=split, folder=(index.sources.get(split) or (index.root,))[0])
                 for split in index.splits}
    sizes, hashes = {split: [] for split in index.splits}, {}
    items = [(split, sample) for split, samples in index.splits.items() for sample in samples]
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="check", unit="image")
    for split, sample in items:
        summary = summaries[split]
        try:
            width, height = verify_image(sample.image_path, decode_pixels=decode_images)
        except (ImageReadError, OSError) as error:
            problem = Problem("unreadable_image", sample.image_path, f"cannot be read, skipped ({error})",
                              split=split, image_path=sample.image_path)
            problems.append(problem)
            left_out[sample.image_path] = problem
            continue
        summary.num_images += 1
        if find_copies:
            hashes.setdefault(_file_hash(sample.image_path), []).append((split, sample.image_path))
        class_ids, boxes = _objects(sample, split, (width, height), names, problems, left_out)
        if class_ids is None:
            continue
        if len(class_ids) == 0:
            summary.num_backgrounds += 1
        for class_id, count in zip(*np.unique(class_ids, return_counts=True)):
            summary.instances_per_class[int(class_id)] = summary.instances_per_class.get(int(class_id), 0) + int(count)
            summary.images_per_class[int(class_id)] = summary.images_per_class.get(int(class_id), 0) + 1
        sizes[split].append(boxes[:, 2:] - boxes[:, :2])
    for split, summary in summaries.items():
        summary.box_sizes = np.concatenate(sizes[split]) if sizes[split] else np.zeros((0, 2))
        summary.instances_per_class = dict(sorted(summary.instances_per_class.items()))
        summary.images_per_class = dict(sorted(summary.images_per_class.items()))
        if index.format == "yolo":
            for folder in index.sources.get(split, ()):
                problems.extend(_labels_without_images(folder, split))
    problems.extend(_copies_across_splits(hashes))
    return CheckReport(root=Path(index.root), names=names, splits=summaries, problems=problems, index=index,
                       left_out=left_out)


def _objects(sample, split, image_size, names, problems, left_out):
    """``(class_ids (N,), boxes (N, 4) xyxy pixels)`` of a readable sample, its label file's problems recorded;
    ``(None, None)`` when its label file has no line to read (a background image, reported as such)."""
    if sample.objects is not None:
        if len(sample.objects.class_ids) == 0:
            problems.append(Problem("background_image", sample.label_path, "no object: a background image",
                                    split=split))
        return sample.objects.class_ids, np.asarray(sample.objects.boxes, dtype=np.float64).reshape(-1, 4)
    if not sample.label_path.is_file():
        problems.append(Problem("background_image", sample.image_path, f"no label file {sample.label_path.name}: a "
                                "background image (no object)", split=split))
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    checked = check_label_file(sample.label_path, num_classes=len(names) if names is not None else None,
                               image_size=image_size, split=split, image_path=sample.image_path)
    problems.extend(checked.problems)
    refused = next((problem for problem in checked.problems
                    if problem.kind in REFUSED_KINDS or problem.image_path is not None), None)
    if refused is not None:
        left_out.setdefault(sample.image_path, refused)
    return checked.class_ids, pixels_from_labels(checked.boxes, image_size)


def _copies_across_splits(hashes) -> list:
    problems = []
    for copies in hashes.values():
        first_split, first_path = copies[0]
        for split, path in copies[1:]:
            if split != first_split:
                problems.append(Problem("duplicate_across_splits", path,
                                        f"same content as {first_path} ({first_split} split)", split=split))
    return problems


def _labels_without_images(images_folder, split):
    """Label files under the labels folder of ``images_folder`` that no image of that folder maps to."""
    images_folder = Path(images_folder)
    labels_folder = label_path_for(images_folder / "x.jpg").parent
    if labels_folder == images_folder or not labels_folder.is_dir():
        return []
    expected = set()
    for folder, _, files in os.walk(images_folder):
        expected.update(label_path_for(Path(folder) / name) for name in files if is_image_path(name))
    problems = []
    for folder, subfolders, files in os.walk(labels_folder):
        subfolders.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(".txt") and name != "classes.txt" and path not in expected:  # labelImg's class list
                problems.append(Problem("label_without_image", path, "no image with this name in "
                                        f"{images_folder}", split=split))
    return problems


def check_before_training(data, *, splits=("train", "val"), log=print) -> DatasetIndex:
    """The check ``defi1 detect train`` runs once before its first epoch: :func:`check_dataset` on headers (and the
    end of JPEG and PNG files), without hashing images. Returns the dataset without the images training cannot use.

    Every image whose file, or annotation, cannot be read (damaged, truncated, too large, a label line training
    refuses) is left out, listed in ``log`` and counted, as Ultralytics does: a few bad photographs among hundreds
    should not stop a run, and found here they cannot stop it in the middle of an epoch. It stops (DataError
    listing the problems) only when a split of ``splits`` that the dataset has is left with no image.
    """
    report = check_dataset(data, decode_images=False, find_copies=False)
    index = report.index
    if not index.names:
        raise ConfigError(f"{data}: the dataset does not name its classes (give it a dataset YAML with names)")
    if not index.has_split("train"):
        index.samples("train")  # ConfigError naming the splits the dataset has
    serious = [problem for problem in report.problems if problem.severity in ("error", "warning")]
    if serious:
        log(f"data check: {summary_line(serious)} (defi1 data check --data {data} lists them all)")
    if report.left_out:
        for problem in list(report.left_out.values())[:20]:
            log(f"  left out: {problem.where}: {problem.message}")
        more = f" ({len(report.left_out) - 20} more not listed)" if len(report.left_out) > 20 else ""
        log(f"{len(report.left_out)} image(s) left out of training{more}")
        index = index.without(report.left_out)
    for split in splits:
        if index.has_split(split) and not index.samples(split):
            reasons = [problem for problem in report.problems if problem.split == split and problem.severity == "error"]
            listed = "; ".join(f"{problem.where}: {problem.message}" for problem in reasons[:5])
            raise DataError(f"{data}: no usable image in the {split!r} split" + (f" ({listed})" if listed else ""))
    return index
