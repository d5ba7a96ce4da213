"""YOLO-format detection labels and dataset YAML files: the working format of Part 2.

A dataset is laid out as the course (and Ultralytics) do::

    <root>/images/<split>/x.jpg   <->   <root>/labels/<split>/x.txt
    <root>/data.yaml                    path, train, val, test, names

Each label file holds one line per object, ``class cx cy w h``: the class index and the box centre and size
normalised to ``[0, 1]`` by the image width and height. An image without a label file is a background image (no
object). The course's example: the box ``(6, 21)-(293, 202)`` of a 300×208 image is ``0 0.498333 0.536058 0.956667
0.870192``.

YOLO labels cannot hold Pascal VOC's ``difficult`` flag; defi1 keeps it in a sidecar file beside the label,
``x.difficult``, holding one ``0``/``1`` per line of ``x.txt`` (written only when some box is difficult). The
converters (:mod:`defi1.detection.formats`) write and read it, so VOC -> YOLO -> VOC keeps the flag, and the
evaluation (:mod:`defi1.detection.metrics`) ignores detections of difficult objects as VOC does.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defi1.boxes import cxcywh_from_xyxy, xyxy_from_cxcywh
from defi1.errors import ConfigError, DataError
from defi1.files import atomic_write_text, ensure_output_dir
from defi1.images import is_image_path

DIFFICULT_SUFFIX = ".difficult"
SPLITS = ("train", "val", "test")
# Coordinates a little outside [0, 1] (rounding by annotation tools) are clipped; beyond this they are an error.
_PIXEL_COORDINATE_LIMIT = 1.5


@dataclass(frozen=True)
class LabelRows:
    """The parsed lines of one label file, before any validation of the geometry.

    ``class_ids`` ``(N,)`` int64, ``boxes`` ``(N, 4)`` ``[cx, cy, w, h]`` as written (normalised), ``line_numbers``
    ``(N,)`` the 1-based line of each row, ``confidences`` ``(N,)`` or ``None`` (prediction files only).
    """

    path: Path
    class_ids: np.ndarray
    boxes: np.ndarray
    line_numbers: np.ndarray
    confidences: np.ndarray | None = None


def parse_label_file(path, *, with_confidence=False) -> LabelRows:
    """Parse a YOLO label file (``class cx cy w h``) or prediction file (``class cx cy w h confidence``).

    Blank lines and lines starting with ``#`` are skipped. Raises :class:`FileNotFoundError` if the file is missing
    and :class:`defi1.errors.DataError` naming the file and line for a line that is not five (six with confidence)
    numbers, a class that is not a non-negative integer, or a value that is not finite. Geometry is not checked here.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such label file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text file (expected YOLO label lines 'class cx cy w h')") from error
    expected = 6 if with_confidence else 5
    layout = "class cx cy w h confidence" if with_confidence else "class cx cy w h"
    class_ids, rows, line_numbers = [], [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != expected:
            raise DataError(f"{path}, line {line_number}: {len(fields)} values, expected {expected} ({layout}): "
                            f"{line.strip()!r}")
        try:
            values = [float(field) for field in fields]
        except ValueError as error:
            raise DataError(f"{path}, line {line_number}: not a number ({error}), expected {layout}") from error
        if not all(math.isfinite(value) for value in values):
            raise DataError(f"{path}, line {line_number}: non-finite value, expected {layout}: {line.strip()!r}")
        if values[0] < 0 or values[0] != int(values[0]):
            raise DataError(f"{path}, line {line_number}: class {fields[0]!r} is not a non-negative integer")
        class_ids.append(int(values[0]))
        rows.append(values[1:])
        line_numbers.append(line_number)
    values = np.asarray(rows, dtype=np.float64).reshape(-1, expected - 1)
    return LabelRows(path=path, class_ids=np.asarray(class_ids, dtype=np.int64), boxes=values[:, :4].copy(),
                     line_numbers=np.asarray(line_numbers, dtype=np.int64),
                     confidences=values[:, 4].copy() if with_confidence else None)


def validate_label_rows(rows: LabelRows, *, num_classes=None, image_size=None):
    """Check and clean parsed rows. Returns ``(keep (N,) bool, clipped_boxes (N, 4) cxcywh, issues)``.

    ``issues`` is a list of ``(kind, line_number, message)`` with kind ``"class_out_of_range"`` (row dropped),
    ``"negative_size"`` (row dropped), ``"box_outside_image"`` (clipped to the image, kept) or ``"zero_area_box"``
    (dropped; also a box that becomes empty once clipped). ``image_size`` ``(width, height)`` only adds pixel values
    to the messages. Coordinates beyond ±0.5 outside the image look like pixel coordinates: DataError.
    """
    boxes = rows.boxes
    keep = np.ones(len(boxes), dtype=bool)
    issues = []
    width, height = image_size if image_size is not None else (None, None)
    far_outside = np.any(np.abs(boxes) > _PIXEL_COORDINATE_LIMIT, axis=1)
    if np.any(far_outside):
        index = int(np.argmax(far_outside))
        raise DataError(f"{rows.path}, line {rows.line_numbers[index]}: coordinates {boxes[index].tolist()} are not "
                        "normalised (expected cx cy w h divided by the image width and height, in [0, 1])")
    if num_classes is not None:
        out_of_range = rows.class_ids >= num_classes
        for index in np.flatnonzero(out_of_range):
            issues.append(("class_out_of_range", int(rows.line_numbers[index]),
                           f"class {rows.class_ids[index]} out of range (expected 0..{num_classes - 1})"))
        keep &= ~out_of_range
    negative = np.any(boxes[:, 2:] < 0, axis=1)
    for index in np.flatnonzero(negative):
        issues.append(("negative_size", int(rows.line_numbers[index]),
                       f"negative width or height {boxes[index, 2:].tolist()}"))
    keep &= ~negative
    corners = xyxy_from_cxcywh(boxes)
    clipped_corners = np.clip(corners, 0.0, 1.0)
    outside = np.any(np.abs(clipped_corners - corners) > 1e-6, axis=1) & keep
    for index in np.flatnonzero(outside):
        extent = corners[index]
        if width is not None:
            extent = extent * np.array([width, height, width, height])
        issues.append(("box_outside_image", int(rows.line_numbers[index]),
                       f"box {np.round(extent, 4).tolist()} extends outside the image (clipped)"))
    clipped = np.where(outside[:, None], cxcywh_from_xyxy(clipped_corners), boxes)
    empty = (np.prod(clipped[:, 2:], axis=1) <= 0) & keep
    for index in np.flatnonzero(empty):
        issues.append(("zero_area_box", int(rows.line_numbers[index]),
                       f"box {boxes[index].tolist()} has zero area inside the image (dropped)"))
    keep &= ~empty
    return keep, clipped, issues


def read_yolo_labels(path, *, num_classes=None, image_size=None, strict=False):
    """Read a YOLO label file.

    Args:
        path: the ``.txt`` file, lines ``class cx cy w h`` normalised.
        num_classes: when given, a class id ``>= num_classes`` is an error (DataError naming the file and line).
        image_size: ``(width, height)`` of the image, for messages in pixels.
        strict: when True, a box outside the image or of zero area is an error too; otherwise boxes are clipped
            to the image and empty ones dropped (``defi1 data check`` reports both).
    Returns:
        ``(class_ids (N,) int64, boxes (N, 4) [cx, cy, w, h] normalised float64)``.
    """
    rows = parse_label_file(path)
    keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=image_size)
    for kind, line_number, message in issues:
        if strict or kind in ("class_out_of_range", "negative_size"):
            raise DataError(f"{rows.path}, line {line_number}: {message}")
    return rows.class_ids[keep], clipped[keep]


def read_difficult_flags(label_path, count: int) -> np.ndarray:
    """The ``difficult`` flags of the ``count`` rows of ``label_path`` from its ``.difficult`` sidecar (all False
    when there is none). Raises DataError when the sidecar does not hold ``count`` lines of 0/1."""
    sidecar = difficult_path(label_path)
    if not sidecar.is_file():
        return np.zeros(count, dtype=bool)
    values = sidecar.read_text(encoding="utf-8").split()
    if len(values) != count or any(value not in ("0", "1") for value in values):
        raise DataError(f"{sidecar}: expected {count} values 0 or 1 (one per line of {Path(label_path).name}), "
                        f"got {len(values)}")
    return np.asarray([value == "1" for value in values], dtype=bool)


def difficult_path(label_path) -> Path:
    """The sidecar holding the VOC ``difficult`` flags of a label file: ``x.txt`` -> ``x.difficult``."""
    label_path = Path(label_path)
    return label_path.with_suffix(DIFFICULT_SUFFIX)


def format_yolo_labels(class_ids, boxes) -> str:
    """The text of a label file: one ``class cx cy w h`` line per box, six decimals (as the course writes them)."""
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(class_ids) != len(boxes):
        raise ValueError(f"{len(class_ids)} class ids for {len(boxes)} boxes")
    return "".join(f"{class_id} {box[0]:.6f} {box[1]:.6f} {box[2]:.6f} {box[3]:.6f}\n"
                   for class_id, box in zip(class_ids.tolist(), boxes))


def write_yolo_labels(path, class_ids, boxes, *, difficult=None) -> Path:
    """Write a YOLO label file atomically.

    Args:
        class_ids: ``(N,)`` ints. boxes: ``(N, 4)`` ``[cx, cy, w, h]`` normalised.
        difficult: optional ``(N,)`` bools; when any is set a ``.difficult`` sidecar is written (and a stale one
            removed otherwise).
    """
    path = Path(path)
    atomic_write_text(path, format_yolo_labels(class_ids, boxes))
    sidecar = difficult_path(path)
    if difficult is not None and np.any(difficult):
        flags = np.asarray(difficult, dtype=bool).reshape(-1)
        atomic_write_text(sidecar, "".join("1\n" if flag else "0\n" for flag in flags))
    elif sidecar.exists():
        sidecar.unlink()
    return path


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset YAML resolved to absolute paths.

    ``root``: the dataset folder. ``train``/``val``/``test``: image folders (or ``None`` when the split is absent).
    ``names``: class names, index = class id. ``source``: the YAML file.
    """

    root: Path
    train: Path | None
    val: Path | None
    test: Path | None
    names: list
    source: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def split_dir(self, split: str) -> Path:
        """The image folder of ``split`` ("train", "val" or "test"); ConfigError when the YAML has none."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}")
        folder = getattr(self, split)
        if folder is None:
            raise ConfigError(f"{self.source or self.root}: no '{split}' split in the dataset YAML")
        return folder

    def samples(self, split: str) -> list:
        """The :class:`DetectionSample` list of ``split``."""
        return list_samples(self.split_dir(split))


def _names_from_yaml(value, source) -> list:
    if isinstance(value, (list, tuple)):
        return [str(name) for name in value]
    if isinstance(value, dict):
        try:
            indexed = {int(key): str(name) for key, name in value.items()}
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: 'names' keys must be class ids 0..N-1") from error
        if sorted(indexed) != list(range(len(indexed))):
            raise ConfigError(f"{source}: 'names' ids {sorted(indexed)} are not 0..{len(indexed) - 1}")
        return [indexed[index] for index in range(len(indexed))]
    raise ConfigError(f"{source}: 'names' must be a list or a {{id: name}} mapping, got {type(value).__name__}")


def load_dataset_yaml(path) -> DatasetConfig:
    """Read an Ultralytics-style dataset YAML: ``path`` (root; a relative one is taken from the YAML's folder, the
    default is that folder),
    ``train``/``val``/``test`` (image folders relative to the root), ``names`` (list or ``{id: name}``), optional
    ``nc`` (must agree). Raises FileNotFoundError / ConfigError naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset YAML file")
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', error)})") from error
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected a mapping with path, train, val, test, names")
    if "names" not in payload:
        raise ConfigError(f"{path}: missing 'names' (the class names, a list or an {{id: name}} mapping)")
    names = _names_from_yaml(payload["names"], path)
    if "nc" in payload and int(payload["nc"]) != len(names):
        raise ConfigError(f"{path}: nc = {payload['nc']} but {len(names)} names")
    root = Path(payload.get("path") or ".")
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    folders = {}
    for split in SPLITS:
        value = payload.get(split)
        if value in (None, "", []):
            folders[split] = None
            continue
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ConfigError(f"{path}: '{split}' lists {len(value)} folders; defi1 expects one folder per split")
            value = value[0]
        folder = Path(str(value))
        folders[split] = folder if folder.is_absolute() else root / folder
    if folders["train"] is None and folders["val"] is None:
        raise ConfigError(f"{path}: neither 'train' nor 'val' is given (expected image folders relative to path)")
    return DatasetConfig(root=root, names=names, source=path, **folders)


def find_dataset_yaml(folder) -> Path | None:
    """The dataset YAML of a dataset folder: its only ``*.yaml`` / ``*.yml`` file, or ``None`` when it has none or
    several (ambiguous)."""
    folder = Path(folder)
    yamls = sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml")))
    return yamls[0] if len(yamls) == 1 else None


def prepare_dataset_folder(out_dir, *, overwrite=False) -> Path:
    """Make ``out_dir`` ready for a new YOLO dataset written by a generator and return it (created, writable).

    A folder that already holds ``images/`` or ``labels/`` is refused with ``FileExistsError`` unless ``overwrite``
    (then both are removed). A stale ``data.yaml`` is removed: generators write it last, atomically, so that its
    presence marks a complete dataset.
    """
    out_dir = Path(out_dir)
    if any((out_dir / kind).exists() for kind in ("images", "labels")):
        if not overwrite:
            raise FileExistsError(f"{out_dir}: already holds images/ or labels/ (choose an empty folder or overwrite)")
        for kind in ("images", "labels"):
            shutil.rmtree(out_dir / kind, ignore_errors=True)
    out_dir = ensure_output_dir(out_dir)
    (out_dir / "data.yaml").unlink(missing_ok=True)
    return out_dir


def write_dataset_yaml(path, *, names, train="images/train", val="images/val", test=None, root=".") -> Path:
    """Write a dataset YAML (atomically) with the split folders relative to ``root`` and ``names`` as an
    ``{id: name}`` mapping. With the default ``root="."`` no ``path`` key is written: defi1 and Ultralytics then
    both take the YAML's own folder as the root (Ultralytics would resolve a relative ``path`` against its own
    datasets folder)."""
    import yaml

    payload = {"path": str(root) if str(root) != "." else None, "train": str(train) if train else None,
               "val": str(val) if val else None}
    if test:
        payload["test"] = str(test)
    payload = {key: value for key, value in payload.items() if value is not None}
    payload["nc"] = len(names)
    payload["names"] = {index: str(name) for index, name in enumerate(names)}
    return atomic_write_text(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))


@dataclass(frozen=True)
class DetectionSample:
    """One image and where its label file is (``label_path`` may not exist: a background image)."""

    image_path: Path
    label_path: Path

    @property
    def is_background(self) -> bool:
        return not self.label_path.is_file()


def label_path_for(image_path) -> Path:
    """The label file of an image: the last ``images`` folder of its path becomes ``labels`` and the extension
    ``.txt`` (``root/images/train/a/x.jpg`` -> ``root/labels/train/a/x.txt``); beside the image when the path has
    no ``images`` folder."""
    image_path = Path(image_path)
    parts = list(image_path.parts)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image_path.with_suffix(".txt")


def image_dir_for(label_dir) -> Path:
    """The inverse of :func:`label_path_for` for a folder: the last ``labels`` component becomes ``images``."""
    parts = list(Path(label_dir).parts)
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == "labels":
            parts[index] = "images"
            return Path(*parts)
    return Path(label_dir)


def list_samples(images_dir) -> list:
    """Every image under ``images_dir`` (recursively, sorted) paired with its label path (see :func:`label_path_for`).
    Raises FileNotFoundError when the folder does not exist."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: no such image folder")
    paths = []
    for folder, subfolders, files in os.walk(images_dir):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        paths.extend(Path(folder) / name for name in files if is_image_path(name) and not name.startswith("."))
    return [DetectionSample(image_path=path, label_path=label_path_for(path)) for path in sorted(paths)]


def split_fingerprint(data_yaml, split) -> str:
    """Fingerprint (SHA-256 hex, :func:`defi1.fingerprint.fingerprint_entries`) of one split of a YOLO dataset: every
    image's path relative to the split's image folder with its label file's bytes (empty for a background image),
    each ``.difficult`` sidecar, and the class names. Records which data a metric was measured on."""
    import json

    from defi1.fingerprint import fingerprint_entries

    config = load_dataset_yaml(data_yaml)
    images_dir = config.split_dir(split)
    entries = [("\0names", json.dumps([str(name) for name in config.names]))]
    for sample in list_samples(images_dir):
        name = sample.image_path.relative_to(images_dir).as_posix()
        entries.append((name, sample.label_path.read_bytes() if sample.label_path.is_file() else b""))
        sidecar = difficult_path(sample.label_path)
        if sidecar.is_file():
            entries.append((name + DIFFICULT_SUFFIX, sidecar.read_bytes()))
    return fingerprint_entries(entries)


def load_ground_truth(sample, image_size, *, num_classes=None, with_difficult=False):
    """The objects of a sample in pixels.

    Args:
        sample: a :class:`DetectionSample` (or a label file path). image_size: ``(width, height)`` of its image.
    Returns:
        ``(boxes (N, 4) [x_min, y_min, x_max, y_max] pixels, class_ids (N,) int64)``, plus ``difficult (N,) bool``
        when ``with_difficult``. A background image gives empty arrays.
    """
    label_path = sample.label_path if isinstance(sample, DetectionSample) else Path(sample)
    width, height = image_size
    if not label_path.is_file():
        empty = (np.zeros((0, 4)), np.zeros((0,), dtype=np.int64))
        return empty + (np.zeros((0,), dtype=bool),) if with_difficult else empty
    rows = parse_label_file(label_path)
    keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=image_size)
    for kind, line_number, message in issues:
        if kind in ("class_out_of_range", "negative_size"):
            raise DataError(f"{label_path}, line {line_number}: {message}")
    boxes = xyxy_from_cxcywh(clipped[keep]) * np.array([width, height, width, height], dtype=np.float64)
    class_ids = rows.class_ids[keep]
    if not with_difficult:
        return boxes, class_ids
    return boxes, class_ids, read_difficult_flags(label_path, len(rows.class_ids))[keep]


def labels_from_pixels(boxes_xyxy, image_size) -> np.ndarray:
    """``(N, 4)`` xyxy pixel boxes to YOLO ``[cx, cy, w, h]`` normalised by ``image_size`` ``(width, height)``."""
    width, height = image_size
    return cxcywh_from_xyxy(boxes_xyxy) / np.array([width, height, width, height], dtype=np.float64)


def pixels_from_labels(boxes_cxcywh, image_size) -> np.ndarray:
    """YOLO ``(N, 4)`` ``[cx, cy, w, h]`` normalised to xyxy pixels for an image of ``(width, height)``."""
    width, height = image_size
    return xyxy_from_cxcywh(boxes_cxcywh) * np.array([width, height, width, height], dtype=np.float64)
