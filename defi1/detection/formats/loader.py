"""The one dataset loader: every command that reads a detection dataset (``detect train``, ``detect evaluate``,
``detect anchors``, ``data check``, ``data split``, ``data convert``) goes through :func:`load_dataset`, so all
accept the same forms:

* YOLO: a dataset YAML in any form Ultralytics and Roboflow write (``path``, ``train: ../train/images``, lists of
  folders, ``.txt`` files listing images, ``names`` as a list or a mapping; :func:`defi1.detection.labels.
  load_dataset_yaml`), a folder holding one, or a folder with ``images/`` and ``labels/``;
* Pascal VOC (labelImg): a folder with ``Annotations/`` (splits from ``ImageSets/Main/*.txt``), or of XML files;
* COCO JSON: a file, or a folder as CVAT (``annotations/instances_*.json``) or Roboflow (one
  ``_annotations.coco.json`` per split folder) export it;
* LabelMe: a folder of LabelMe JSON files.

A YOLO dataset's label files are read when used; the other formats are read at once, their objects checked and kept
in each :class:`~defi1.detection.labels.DetectionSample` (``objects``). Splits are ``train``, ``val``, ``test``, or
``all`` for a dataset that has none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from defi1.detection.formats.coco import coco_files
from defi1.detection.formats.common import DatasetIndex, read_names
from defi1.detection.formats.reading import read_annotations
from defi1.detection.formats.voc import voc_root
from defi1.detection.formats.yolo import yolo_splits

__all__ = ["DETECTED_FORMATS", "DatasetIndex", "detect_format", "load_dataset"]
from defi1.detection.labels import SPLITS, DetectionSample, GroundTruth, find_dataset_yaml
from defi1.errors import DataError

#: Formats :func:`load_dataset` recognises by themselves (keras-yolo3's single file needs ``source_format``).
DETECTED_FORMATS = ("yolo", "voc", "coco", "labelme")


def detect_format(path) -> str:
    """The annotation format of a dataset path (one of :data:`DETECTED_FORMATS`); DataError when it is none."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset YAML file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".json":
            return "coco"
        raise DataError(f"{path}: not a dataset YAML or a COCO JSON file (a keras-yolo3 annotation file needs "
                        "converting first: defi1 data convert --from keras-yolo3)")
    if find_dataset_yaml(path) is not None or ((path / "images").is_dir() and (path / "labels").is_dir()):
        return "yolo"
    if (voc_root(path) / "Annotations").is_dir() or any(path.glob("*.xml")):
        return "voc"
    first_json = next(iter(sorted(path.glob("*.json"))), None)
    if first_json is not None and "shapes" in _json_keys(first_json):
        return "labelme"
    try:
        if "annotations" in _json_keys(coco_files(path)[0][0]):
            return "coco"
    except DataError:
        pass
    if (path / "images").is_dir():
        return "yolo"  # images without labels yet: backgrounds
    raise DataError(f"{path}: not a dataset this reads (expected a dataset YAML, a folder with images/ and labels/, "
                    "Pascal VOC's Annotations/, COCO JSON or LabelMe JSON files)")


def _json_keys(json_file) -> set:
    """The top-level keys of a JSON file (empty when it is not a readable JSON object)."""
    try:
        payload = json.loads(Path(json_file).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return set()
    return set(payload) if isinstance(payload, dict) else set()


def load_dataset(data, *, names=None, source_format=None) -> DatasetIndex:
    """Load a detection dataset of any form of the module docstring.

    Args:
        data: a dataset YAML, a COCO JSON file, or a dataset folder.
        names: class names (a list, names file or dataset YAML), for a dataset that does not give them; they fix
            the class order of VOC and LabelMe datasets (default: the class names found, sorted).
        source_format: the format, when it cannot be told from ``data`` (``"keras-yolo3"``).
    Raises:
        FileNotFoundError, ConfigError, DataError: no such dataset, a YAML or annotation file that cannot be read as
        a whole, naming it. Problems of single images, objects and splits are in the index's ``problems``.
    """
    data = Path(data)
    source_format = source_format or detect_format(data)
    if source_format == "yolo":
        index = yolo_splits(data)
        index.names = read_names(names) or index.names
        return index
    problems = []
    annotations, names = read_annotations(data, source_format, names=names, problems=problems)
    index_of = {name: index for index, name in enumerate(names)}
    splits = {}
    for annotation in annotations:
        split = annotation.split or "all"
        objects = annotation.objects
        truth = GroundTruth(boxes=np.array([item.box for item in objects], dtype=np.float64).reshape(-1, 4),
                            class_ids=np.array([index_of[item.class_name] for item in objects], dtype=np.int64),
                            difficult=np.array([item.difficult for item in objects], dtype=bool),
                            image_size=(annotation.width, annotation.height))
        relative = annotation.output_path
        relative = Path(*relative.parts[1:]) if annotation.split is not None else relative
        splits.setdefault(split, []).append(DetectionSample(annotation.image_path,
                                                            annotation.annotation_path or annotation.image_path,
                                                            relative=relative, objects=truth))
    ordered = {split: splits[split] for split in (*SPLITS, "all") if split in splits}
    root = data if data.is_dir() else data.parent
    return DatasetIndex(source_format, data, root, names, ordered, {split: (data,) for split in ordered}, problems)
