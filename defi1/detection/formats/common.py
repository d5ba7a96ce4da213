"""What every annotation format becomes when read, the one check of its objects, and a loaded dataset.

Every reader returns a list of :class:`ImageAnnotation` (image file, size, objects with class name,
``[x_min, y_min, x_max, y_max]`` box in pixels and ``difficult`` flag) and records what it could not read as
:class:`~defi1.detection.problems.Problem` s; :func:`check_objects` then checks the objects of every format the same
way (unknown class, no area, outside the image, annotated twice). :class:`DatasetIndex` is what the one dataset
loader (:mod:`defi1.detection.formats.loader`) returns: the samples of each split, ready to read.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.boxes import box_area, clip_boxes, duplicate_boxes
from defi1.detection.labels import SPLITS, load_dataset_yaml
from defi1.detection.problems import DUPLICATE_IOU, Problem, duplicate_message
from defi1.errors import ConfigError, DataError, ImageReadError
from defi1.files import read_names_file
from defi1.images import image_size

FORMATS = ("yolo", "voc", "keras-yolo3", "labelme", "coco")
#: Split names that annotation tools use for folders and files, and the split each stands for.
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


@dataclass
class ObjectAnnotation:
    """One object: ``class_name``, ``box`` ``[x_min, y_min, x_max, y_max]`` in pixels, ``difficult``, and where it
    is in its annotation file (``location``, e.g. ``"object 13"``; ``line`` for text files)."""

    class_name: str
    box: tuple
    difficult: bool = False
    location: str | None = None
    line: int | None = None


@dataclass
class ImageAnnotation:
    """One image: its file, size in pixels, objects, ``relative_path`` (where it goes in an output dataset, e.g.
    ``train/x.jpg`` for a YOLO split) and the ``annotation_path`` it was read from."""

    image_path: Path
    width: int
    height: int
    objects: list = field(default_factory=list)
    relative_path: Path | None = None
    annotation_path: Path | None = None

    @property
    def output_path(self) -> Path:
        """``relative_path`` when it stays inside the output folder, else the image's file name."""
        relative = self.relative_path
        if relative is None or relative.is_absolute() or ".." in relative.parts:
            return Path(self.image_path.name)
        return relative

    @property
    def split(self) -> str | None:
        """The split its ``relative_path`` starts with (``train/x.jpg``), else ``None``."""
        parts = self.output_path.parts
        return parts[0] if len(parts) > 1 and parts[0] in SPLITS else None


@dataclass
class DatasetIndex:
    """A detection dataset ready to read: its class ``names``, its samples per split, and what was found wrong
    while loading it (``problems``: images left out, objects dropped, split folders missing).

    ``format``: the annotation format; ``source``: what was given; ``root``: the dataset folder; ``sources``: for
    each split its image folders or list files (YOLO) or annotation files (other formats).
    """

    format: str
    source: Path
    root: Path
    names: list | None
    splits: dict
    sources: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.names or [])

    def has_split(self, split: str) -> bool:
        return split in self.splits

    def samples(self, split: str) -> list:
        """The samples of ``split`` (``"all"`` for a dataset without splits: every sample). ConfigError when the
        dataset has no such split."""
        if split == "all" and "all" not in self.splits:
            return [sample for samples in self.splits.values() for sample in samples]
        if split not in self.splits:
            available = ", ".join(self.splits) or "none"
            raise ConfigError(f"{self.source}: no '{split}' split in this dataset (it has: {available}); split it "
                              "with 'defi1 data split'")
        return list(self.splits[split])

    def require_samples(self, split: str) -> list:
        """:meth:`samples`, and FileNotFoundError naming the split's folders or files when it has none."""
        samples = self.samples(split)
        if not samples:
            where = ", ".join(str(path) for path in self.sources.get(split, ())) or str(self.source)
            raise FileNotFoundError(f"{where}: no images in the {split!r} split of {self.source}")
        return samples

    def without(self, image_paths) -> DatasetIndex:
        """A copy without the samples of ``image_paths``."""
        left_out = {Path(path) for path in image_paths}
        splits = {split: [sample for sample in samples if sample.image_path not in left_out]
                  for split, samples in self.splits.items()}
        return DatasetIndex(self.format, self.source, self.root, self.names, splits, dict(self.sources),
                            list(self.problems))


def split_of_name(name) -> str | None:
    """The split a folder or file name stands for (``valid`` -> ``val``, ``instances_train2017`` -> ``train``),
    ``None`` when it names none."""
    text = Path(str(name)).stem.lower().lstrip("_")
    if text in SPLIT_ALIASES:
        return SPLIT_ALIASES[text]
    for word in text.replace("-", "_").split("_"):
        for alias, split in SPLIT_ALIASES.items():
            if word == alias or (word.startswith(alias) and word[len(alias):].isdigit()):
                return split
    return None


def read_names(names) -> list | None:
    """Class names from a list, a dataset YAML, or a text file with one name a line (``coco.names``)."""
    if names is None or isinstance(names, (list, tuple)):
        return None if names is None else [str(name) for name in names]
    path = Path(names)
    if path.suffix in (".yaml", ".yml"):
        return load_dataset_yaml(path).names
    return read_names_file(path)


def find_image(candidates):
    """The first existing file among ``candidates`` (``None`` entries ignored), else ``None``."""
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate)
    return None


def image_not_found(path, candidates, *, line=None, location=None) -> Problem:
    """The ``missing_image`` problem of an annotation whose image is in none of ``candidates``."""
    looked = ", ".join(str(candidate) for candidate in candidates if candidate is not None)
    return Problem("missing_image", Path(path), f"image not found (looked for {looked})", line=line,
                   location=location, image_path=Path(path))


def read_size(image_path, annotation_path, problems, *, width=0, height=0, line=None):
    """``(width, height)``: the size the annotation declares, else the image's own; ``None`` (and an
    ``unreadable_image`` problem) when it must be read and cannot be."""
    if width > 0 and height > 0:
        return int(width), int(height)
    try:
        return image_size(image_path)
    except (ImageReadError, OSError) as error:
        problems.append(Problem("unreadable_image", Path(image_path), f"cannot be read, skipped ({error})",
                                line=line, image_path=Path(image_path)))
        return None


def check_objects(annotations, names, problems) -> list:
    """Check every object of ``annotations`` in place, the same way for every format, and return them.

    An object whose class is not in ``names`` (``unknown_class``) or whose box has no area as written, or none left
    inside the image (``zero_area_box``), is dropped; a box extending outside the image is clipped to it
    (``box_outside_image``); a box repeating an earlier one of its class (IoU >= 0.9, ``duplicate_box``) is kept and
    reported. Each finding is appended to ``problems`` with the annotation file and the object's place in it.
    """
    known = set(names) if names is not None else None
    for annotation in annotations:
        kept = []
        for item in annotation.objects:
            box = np.asarray(item.box, dtype=np.float64)
            inside = clip_boxes(box, annotation.width, annotation.height)[0]

            def report(kind, message, item=item):
                problems.append(Problem(kind, annotation.annotation_path or annotation.image_path, message,
                                        line=item.line, location=item.location, split=annotation.split))

            if known is not None and item.class_name not in known:
                report("unknown_class", f"class {item.class_name!r} not in the class names ({', '.join(names)}): "
                                        "dropped")
            elif not (box[2] > box[0] and box[3] > box[1]):
                report("zero_area_box", f"box {_rounded(box)} has no area (expected x_min < x_max and "
                                        "y_min < y_max): dropped")
            elif box_area(inside)[0] <= 0:
                report("zero_area_box", f"box {_rounded(box)} lies outside the {annotation.width}x"
                                        f"{annotation.height} image: dropped")
            else:
                if np.any(np.abs(inside - box) > 1e-6):
                    report("box_outside_image", f"box {_rounded(box)} extends outside the {annotation.width}x"
                                                f"{annotation.height} image (clipped)")
                    item.box = tuple(float(value) for value in inside)
                kept.append(item)
        annotation.objects = kept
        boxes = np.array([item.box for item in kept], dtype=np.float64).reshape(-1, 4)
        for index, earlier, iou in duplicate_boxes(boxes, [item.class_name for item in kept], min_iou=DUPLICATE_IOU):
            item, first = kept[index], kept[earlier]
            first_place = first.location or (f"line {first.line}" if first.line is not None else "an earlier box")
            problems.append(Problem("duplicate_box", annotation.annotation_path or annotation.image_path,
                                    duplicate_message(first_place, iou), line=item.line, location=item.location,
                                    split=annotation.split))
    return annotations


def _rounded(box):
    return [round(float(value), 2) for value in box]


def copy_file(source, target):
    """Copy ``source`` to ``target`` (folders made), unless they are the same file."""
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def raise_for(problems, *, source, kinds=None):
    """Raise one DataError naming the first problems (of ``kinds``, default all) and how many there are."""
    chosen = [problem for problem in problems if kinds is None or problem.kind in kinds]
    if not chosen:
        return
    listed = "; ".join(f"{problem.where}: {problem.message}" for problem in chosen[:5])
    more = f"; and {len(chosen) - 5} more (defi1 data check {source} lists them all)" if len(chosen) > 5 else ""
    raise DataError(f"{listed}{more}" if len(chosen) == 1 else f"{len(chosen)} problem(s) in {source}: {listed}{more}")
