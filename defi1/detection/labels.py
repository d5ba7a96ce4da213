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

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.boxes import cxcywh_from_xyxy, xyxy_from_cxcywh
from defi1.detection.label_rows import LabelRows, parse_label_file, validate_label_rows  # noqa: F401 (re-exported)
from defi1.errors import ConfigError, DataError
from defi1.files import atomic_write_text, ensure_output_dir
from defi1.images import is_image_path

#: Kinds of problem a reader of labels refuses (the others are fixed: clipped, dropped, or only reported).
REFUSED_KINDS = ("malformed_label", "class_out_of_range", "negative_size")
DIFFICULT_SUFFIX = ".difficult"
SPLITS = ("train", "val", "test")


def read_yolo_labels(path, *, num_classes=None, image_size=None, strict=False):
    """Read a YOLO label file.

    Args:
        path: the ``.txt`` file, lines ``class cx cy w h`` normalised.
        num_classes: when given, a class id ``>= num_classes`` is an error (DataError naming the file and line).
        image_size: ``(width, height)`` of the image, for messages in pixels.
        strict: when True, a box outside the image or of zero area is an error too; otherwise boxes are clipped
            to the image and empty ones dropped (``defi1 data check`` reports both, and duplicated boxes).
    Returns:
        ``(class_ids (N,) int64, boxes (N, 4) [cx, cy, w, h] normalised float64)``.
    """
    rows = parse_label_file(path)
    keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=image_size)
    for kind, line_number, message in issues:
        if kind in REFUSED_KINDS or (strict and kind in ("box_outside_image", "zero_area_box")):
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

    ``root``: the dataset folder. ``sources``: for each split the YAML gives, its image folders and ``.txt`` files
    listing images, in order. ``train``/``val``/``test``: the first source of each split (or ``None`` when the split
    is absent). ``names``: class names, index = class id. ``source``: the YAML file.
    """

    root: Path
    train: Path | None
    val: Path | None
    test: Path | None
    names: list
    source: Path | None = None
    sources: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def split_dir(self, split: str) -> Path:
        """The (first) image folder or list file of ``split`` ("train", "val" or "test"); ConfigError when the YAML
        has none."""
        return self.split_sources(split)[0]

    def split_sources(self, split: str) -> tuple:
        """Every image folder and list file of ``split``; ConfigError when the YAML has none."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}")
        if not self.sources.get(split):
            raise ConfigError(f"{self.source or self.root}: no '{split}' split in the dataset YAML")
        return tuple(self.sources[split])

    def samples(self, split: str) -> list:
        """The :class:`DetectionSample` list of ``split``: the images of each of its folders (recursively) and list
        files, in order (FileNotFoundError for a source that does not exist)."""
        samples = []
        for source in self.split_sources(split):
            samples.extend(listed_samples(source, self.root) if source.suffix.lower() == ".txt"
                           else list_samples(source))
        return samples


def _yaml_line(text, key) -> str:
    """``", line N"`` where ``key:`` starts a line of the YAML text (for messages), else ``""``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split(":", 1)[0].strip() == key and ":" in line:
            return f", line {number}"
    return ""


def _names_from_yaml(payload, source, text) -> list:
    value = payload.get("names")
    where = f"{source}{_yaml_line(text, 'names')}"
    count = _class_count(payload, source, text)
    if value is None:
        if count is None:
            raise ConfigError(f"{source}: missing 'names' (the class names, a list or an {{id: name}} mapping)")
        return [f"class{index}" for index in range(count)]  # Ultralytics' rule: nc alone names the classes
    if isinstance(value, (list, tuple)):
        names = [str(name) for name in value]
    elif isinstance(value, dict):
        try:
            indexed = {int(key): str(name) for key, name in value.items()}
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: 'names' keys must be class ids 0..N-1") from error
        if sorted(indexed) != list(range(len(indexed))):
            raise ConfigError(f"{where}: 'names' ids {sorted(indexed)} are not 0..{len(indexed) - 1}")
        names = [indexed[index] for index in range(len(indexed))]
    else:
        raise ConfigError(f"{where}: 'names' must be a list or a {{id: name}} mapping, got {type(value).__name__}")
    if count is not None and count != len(names):
        raise ConfigError(f"{source}{_yaml_line(text, 'nc')}: nc = {count} but {len(names)} names")
    return names


def _class_count(payload, source, text):
    """The YAML's ``nc`` as an int (``None`` when absent); ConfigError naming the file, line and key otherwise."""
    value = payload.get("nc")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source}{_yaml_line(text, 'nc')}: 'nc' is {value!r}, expected the number of classes "
                          "(a whole number, e.g. nc: 3)")
    return value


def _dataset_root(payload, path) -> Path:
    """The dataset root: ``path`` of the YAML (absolute; relative to the YAML's folder, else to the current folder
    as Ultralytics resolves it), by default the YAML's folder."""
    value = payload.get("path")
    if not value:
        return path.parent.resolve()
    root = Path(str(value)).expanduser()
    if root.is_absolute():
        return root
    candidates = [(path.parent / root).resolve(), root.resolve()]
    return next((candidate for candidate in candidates if candidate.is_dir()), candidates[0])


def _split_sources(value, root, split, source, text) -> tuple:
    """The image folders and list files of one split's value: a path, or a list of paths, each relative to
    ``root``. As Ultralytics does for Roboflow's exports, a relative path starting with ``../`` that does not exist
    is also tried without it (``train: ../train/images`` in a YAML beside ``train/``)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    sources = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)) or not str(item).strip():
            raise ConfigError(f"{source}{_yaml_line(text, split)}: '{split}' must be an image folder, a .txt file "
                              f"listing images, or a list of them; got {item!r}")
        text_value = str(item).strip()
        candidate = Path(text_value).expanduser()
        if not candidate.is_absolute():
            candidate = (root / candidate).resolve()
            if not candidate.exists() and text_value.startswith("../"):
                fallback = (root / text_value[3:]).resolve()
                candidate = fallback if fallback.exists() else candidate
        sources.append(candidate)
    return tuple(sources)


def load_dataset_yaml(path) -> DatasetConfig:
    """Read an Ultralytics-style dataset YAML, as Ultralytics and Roboflow write them.

    ``path``: the dataset root (default the YAML's folder; a relative one is taken from the YAML's folder, else
    from the current folder). ``train``/``val``/``test`` (``validation`` is read as ``val``): an image folder, a
    ``.txt`` file listing images (one path a line, relative to the list's folder), or a list of them, each relative
    to the root; ``../x`` that does not exist is read as ``x`` (Roboflow's ``train: ../train/images``).
    ``names``: a list or an ``{id: name}`` mapping (``nc`` alone gives ``class0``...); ``nc``, when given, must
    agree. Raises FileNotFoundError / ConfigError naming the file (and line)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset YAML file")
    try:
        text = path.read_text(encoding="utf-8-sig")
        payload = yaml.safe_load(text)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file (expected a dataset YAML)") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', error)})") from error
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected a mapping with path, train, val, test, names")
    names = _names_from_yaml(payload, path, text)
    root = _dataset_root(payload, path)
    sources = {}
    for split in SPLITS:
        key = "validation" if split == "val" and payload.get("val") in (None, "", []) else split
        if payload.get(key) not in (None, "", []):
            sources[split] = _split_sources(payload[key], root, key, path, text)
    if "train" not in sources and "val" not in sources:
        raise ConfigError(f"{path}: neither 'train' nor 'val' is given (expected image folders relative to path)")
    return DatasetConfig(root=root, names=names, source=path, sources=sources,
                         **{split: sources[split][0] if split in sources else None for split in SPLITS})


def find_dataset_yaml(folder) -> Path | None:
    """The dataset YAML of a dataset folder: its only ``*.yaml`` / ``*.yml`` file, or ``None`` when it has none or
    several (ambiguous)."""
    folder = Path(folder)
    yamls = sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml")))
    return yamls[0] if len(yamls) == 1 else None


def dataset_folder_conflicts(out_dir, entries=("images", "labels")) -> list:
    """The ``entries`` (files or folders) of ``out_dir`` that already exist: what writing a dataset there would mix
    with, or replace."""
    out_dir = Path(out_dir)
    return [out_dir / entry for entry in entries if (out_dir / entry).exists()]


def prepare_dataset_folder(out_dir, *, overwrite=False, entries=("images", "labels")) -> Path:
    """Make ``out_dir`` ready for a new dataset written by a generator or a converter and return it (created,
    writable).

    A folder that already holds one of ``entries`` (by default ``images/`` or ``labels/``: a YOLO dataset) is refused
    with ``FileExistsError`` unless ``overwrite`` (then they are removed). A stale ``data.yaml`` is removed: writers
    write it last, atomically, so that its presence marks a complete dataset.
    """
    out_dir = Path(out_dir)
    existing = dataset_folder_conflicts(out_dir, entries)
    if existing:
        if not overwrite:
            held = " or ".join(f"{path.name}/" if path.is_dir() else path.name for path in existing)
            if tuple(entries) == ("images", "labels"):
                held = "images/ or labels/"
            raise FileExistsError(f"{out_dir}: already holds {held} (choose an empty folder or overwrite)")
        for path in existing:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    out_dir = ensure_output_dir(out_dir)
    if "labels" in entries:  # a YOLO dataset
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
class GroundTruth:
    """The objects of one image, read from an annotation format other than YOLO label files (VOC, COCO):
    ``boxes`` ``(N, 4)`` ``[x_min, y_min, x_max, y_max]`` pixels of the image, ``class_ids`` ``(N,)`` int64,
    ``difficult`` ``(N,)`` bool, and the ``image_size`` ``(width, height)`` the annotation gives."""

    boxes: np.ndarray
    class_ids: np.ndarray
    difficult: np.ndarray
    image_size: tuple | None = None


@dataclass(frozen=True)
class DetectionSample:
    """One image and its annotation: the YOLO label file at ``label_path`` (which may not exist: a background
    image), or, for other formats, the ``objects`` read from the annotation file at ``label_path``.

    ``relative``: the image's path inside its split (``a/x.jpg`` for ``images/train/a/x.jpg``; where prediction
    files are looked for), by default its file name."""

    image_path: Path
    label_path: Path
    relative: Path | None = None
    objects: GroundTruth | None = field(default=None, compare=False, repr=False)

    @property
    def is_background(self) -> bool:
        if self.objects is not None:
            return len(self.objects.class_ids) == 0
        return not self.label_path.is_file()

    @property
    def relative_path(self) -> Path:
        return self.relative if self.relative is not None else Path(self.image_path.name)


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
    return [DetectionSample(image_path=path, label_path=label_path_for(path), relative=path.relative_to(images_dir))
            for path in sorted(paths)]


def listed_samples(list_file, root=None) -> list:
    """The images a ``.txt`` file lists, one path a line (Ultralytics' and CVAT's ``train.txt``), each with its
    label path (:func:`label_path_for`). A relative path is taken from the list's folder, else from ``root``, else
    from the current folder; a listed image that is in none of them is kept at the first place (reading it then
    names it). Blank lines and ``#`` comments are skipped; each sample's ``relative_path`` is its file name.
    FileNotFoundError when the list does not exist."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: no such image list file")
    samples = []
    for line in list_file.read_text(encoding="utf-8-sig").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        listed = Path(text.removeprefix("./")).expanduser()
        candidates = [listed] if listed.is_absolute() else [
            (folder / listed).resolve() for folder in (list_file.parent, root, Path.cwd()) if folder is not None]
        path = next((candidate for candidate in candidates if candidate.is_file()), candidates[0])
        samples.append(DetectionSample(image_path=path, label_path=label_path_for(path)))
    return samples


def split_fingerprint(data_yaml, split) -> str:
    """Fingerprint (:func:`fingerprint_samples`) of one split of a YOLO dataset YAML. Records which data a metric
    was measured on."""
    config = load_dataset_yaml(data_yaml)
    return fingerprint_samples(config.names, config.samples(split))


def fingerprint_samples(names, samples) -> str:
    """Fingerprint (SHA-256 hex, :func:`defi1.fingerprint.fingerprint_entries`) of a split's samples: every
    image's path inside its split with its label file's bytes (empty for a background image) and each
    ``.difficult`` sidecar, or the objects read from another format, and the class names."""
    import json

    from defi1.fingerprint import fingerprint_entries

    entries = [("\0names", json.dumps([str(name) for name in names or []]))]
    for sample in samples:
        name = sample.relative_path.as_posix()
        if sample.objects is not None:
            objects = sample.objects
            entries.append((name, json.dumps([np.round(objects.boxes, 3).tolist(), objects.class_ids.tolist(),
                                              objects.difficult.tolist()])))
            continue
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
    if isinstance(sample, DetectionSample) and sample.objects is not None:
        objects = sample.objects  # read (and checked) from another annotation format by the dataset loader
        result = (np.asarray(objects.boxes, dtype=np.float64).reshape(-1, 4),
                  np.asarray(objects.class_ids, dtype=np.int64).reshape(-1))
        return result + (np.asarray(objects.difficult, dtype=bool).reshape(-1),) if with_difficult else result
    label_path = sample.label_path if isinstance(sample, DetectionSample) else Path(sample)
    width, height = image_size
    if not label_path.is_file():
        empty = (np.zeros((0, 4)), np.zeros((0,), dtype=np.int64))
        return empty + (np.zeros((0,), dtype=bool),) if with_difficult else empty
    rows = parse_label_file(label_path)
    keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=image_size)
    for kind, line_number, message in issues:
        if kind in REFUSED_KINDS:
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
