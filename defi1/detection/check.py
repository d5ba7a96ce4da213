"""``defi1 data check``: what a detection dataset holds and every problem in it.

:func:`check_dataset` reads a dataset YAML (or a folder with ``images/`` and ``labels/``), counts images and objects
per class and split, summarises box sizes, and lists each problem with the file (and line) it comes from:

* ``malformed_label`` (error): the label file cannot be read (wrong number of values, not numbers);
* ``class_out_of_range`` (error): the line is refused (``read_yolo_labels`` raises with ``num_classes``);
* ``negative_size`` (error): the line is refused;
* ``unreadable_image`` (error): the image is skipped;
* ``label_without_image`` (error): the label file is never read;
* ``duplicate_across_splits`` (error): the same image (content hash) is in two splits, evaluation leaks;
* ``missing_split`` (error): a split of the YAML has no folder;
* ``box_outside_image`` (warning): the box is clipped to the image;
* ``zero_area_box`` (warning): the box is dropped (also when it is empty once clipped);
* ``background_image`` (info): an image without label file, trained on as having no object.

``--strict`` makes the command fail on any error or warning (not on background images, which are legitimate).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.detection.labels import (SPLITS, find_dataset_yaml, label_path_for, list_samples, load_dataset_yaml,
                                    parse_label_file, validate_label_rows)
from defi1.errors import DataError, ImageReadError
from defi1.images import image_size, is_image_path, read_image

SEVERITIES = {"malformed_label": "error", "class_out_of_range": "error", "unreadable_image": "error",
              "label_without_image": "error", "duplicate_across_splits": "error", "negative_size": "error",
              "missing_split": "error", "box_outside_image": "warning", "zero_area_box": "warning",
              "background_image": "info"}


@dataclass(frozen=True)
class Problem:
    """One problem: its ``kind`` (see the module's table), the ``path`` (and 1-based ``line``) and a message."""

    kind: str
    path: Path
    message: str
    line: int | None = None
    split: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITIES[self.kind]

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else str(self.path)
        return f"{self.severity}: {where}: {self.message}"


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
    """The result of :func:`check_dataset`: ``splits`` (name -> :class:`SplitSummary`), ``problems``, ``names``."""

    root: Path
    names: list | None
    splits: dict
    problems: list

    @property
    def ok(self) -> bool:
        """True when there is no error and no warning (background images are fine)."""
        return not any(problem.severity in ("error", "warning") for problem in self.problems)

    def problems_of(self, kind: str) -> list:
        return [problem for problem in self.problems if problem.kind == kind]

    def counts(self) -> dict:
        """Number of problems per kind."""
        result = {}
        for problem in self.problems:
            result[problem.kind] = result.get(problem.kind, 0) + 1
        return result

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
        return {"root": str(self.root), "names": self.names, "ok": self.ok,
                "splits": {name: {"folder": str(summary.folder), "images": summary.num_images,
                                  "backgrounds": summary.num_backgrounds,
                                  "instances_per_class": summary.instances_per_class,
                                  "images_per_class": summary.images_per_class}
                           for name, summary in self.splits.items()},
                "box_sizes": self.box_size_summary(), "problem_counts": self.counts(),
                "problems": [{"kind": problem.kind, "severity": problem.severity, "path": str(problem.path),
                              "line": problem.line, "split": problem.split, "message": problem.message}
                             for problem in self.problems]}

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
        counts = self.counts()
        lines.append("")
        if not counts:
            lines.append("no problem found")
        else:
            lines.append("problems: " + ", ".join(f"{count} {kind} ({SEVERITIES[kind]})"
                                                  for kind, count in sorted(counts.items())))
            shown = {}
            for problem in self.problems:
                shown[problem.kind] = shown.get(problem.kind, 0) + 1
                if shown[problem.kind] <= max_problems:
                    lines.append(f"  {problem}")
                elif shown[problem.kind] == max_problems + 1:
                    lines.append(f"  ... {counts[problem.kind] - max_problems} more {problem.kind}")
        return "\n".join(lines)


def _resolve_splits(data):
    """``(root, names, {split: image folder})`` for a YAML file or a folder (its YAML if it has exactly one,
    else ``images/<split>`` subfolders, else ``images/`` as one split named "all")."""
    data = Path(data)
    if data.is_file():
        config = load_dataset_yaml(data)
        return config.root, config.names, {split: getattr(config, split) for split in SPLITS
                                           if getattr(config, split) is not None}
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such dataset YAML file or folder")
    data_yaml = find_dataset_yaml(data)
    if data_yaml is not None:
        return _resolve_splits(data_yaml)
    images = data / "images"
    if not images.is_dir():
        raise DataError(f"{data}: expected a dataset YAML or a folder with images/ and labels/ subfolders")
    splits = {split: images / split for split in SPLITS if (images / split).is_dir()}
    return data, None, splits or {"all": images}


def _file_hash(path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_dataset(data, *, names=None, decode_images: bool = True, progress: bool = False) -> CheckReport:
    """Check a detection dataset.

    Args:
        data: a dataset YAML, or a folder (see :func:`_resolve_splits`).
        names: class names, when the dataset has no YAML (enables the class range check).
        decode_images: decode every image (finds truncated files); False only reads the headers.
        progress: tqdm progress bar.
    Returns:
        a :class:`CheckReport`. Only a missing dataset or an unreadable YAML raise.
    """
    root, yaml_names, split_folders = _resolve_splits(data)
    names = list(names) if names is not None else yaml_names
    num_classes = len(names) if names is not None else None
    problems, summaries, hashes = [], {}, {}
    all_samples = [(split, folder, sample) for split, folder in split_folders.items()
                   for sample in (list_samples(folder) if folder.is_dir() else [])]
    for split, folder in split_folders.items():
        summaries[split] = SplitSummary(name=split, folder=folder)
        if not folder.is_dir():
            problems.append(Problem("missing_split", folder, "split folder does not exist", split=split))
    sizes = {split: [] for split in split_folders}
    iterator = all_samples
    if progress:
        from tqdm import tqdm

        iterator = tqdm(all_samples, desc="check", unit="image")
    for split, folder, sample in iterator:
        summary = summaries[split]
        try:
            if decode_images:
                height, width = read_image(sample.image_path).shape[:2]
            else:
                width, height = image_size(sample.image_path)
        except (ImageReadError, OSError) as error:
            problems.append(Problem("unreadable_image", sample.image_path, f"cannot be read, skipped ({error})",
                                    split=split))
            continue
        summary.num_images += 1
        hashes.setdefault(_file_hash(sample.image_path), []).append((split, sample.image_path))
        if not sample.label_path.is_file():
            summary.num_backgrounds += 1
            problems.append(Problem("background_image", sample.image_path,
                                    f"no label file {sample.label_path.name}: a background image (no object)",
                                    split=split))
            continue
        try:
            rows = parse_label_file(sample.label_path)
            keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=(width, height))
        except DataError as error:
            located = re.match(r".*?, line (\d+): (.*)$", str(error), flags=re.S)
            line, message = (int(located.group(1)), located.group(2)) if located else (None, str(error))
            problems.append(Problem("malformed_label", sample.label_path, message, line=line, split=split))
            continue
        for kind, line_number, message in issues:
            problems.append(Problem(kind, sample.label_path, message, line=line_number, split=split))
        class_ids = rows.class_ids[keep]
        if len(class_ids) == 0:
            summary.num_backgrounds += 1
        for class_id, count in zip(*np.unique(class_ids, return_counts=True)):
            summary.instances_per_class[int(class_id)] = summary.instances_per_class.get(int(class_id), 0) + int(count)
            summary.images_per_class[int(class_id)] = summary.images_per_class.get(int(class_id), 0) + 1
        sizes[split].append(clipped[keep][:, 2:] * np.array([width, height]))
    for split, folder in split_folders.items():
        summaries[split].box_sizes = np.concatenate(sizes[split]) if sizes[split] else np.zeros((0, 2))
        summaries[split].instances_per_class = dict(sorted(summaries[split].instances_per_class.items()))
        summaries[split].images_per_class = dict(sorted(summaries[split].images_per_class.items()))
        problems.extend(_labels_without_images(folder, split))
    for copies in hashes.values():
        if len({split for split, _ in copies}) > 1:
            first_split, first_path = copies[0]
            for split, path in copies[1:]:
                if split != first_split:
                    problems.append(Problem("duplicate_across_splits", path,
                                            f"same content as {first_path} ({first_split} split)", split=split))
    return CheckReport(root=Path(root), names=names, splits=summaries, problems=problems)


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
