"""YOLO: ``images/`` + ``labels/`` (``class cx cy w h`` normalised) + a dataset YAML (every form Ultralytics and
Roboflow write, :func:`defi1.detection.labels.load_dataset_yaml`); the ``difficult`` flag goes to a ``.difficult``
sidecar beside each label file (see :mod:`defi1.detection.labels`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defi1.detection.formats.common import DatasetIndex, ImageAnnotation, ObjectAnnotation, copy_file, read_size
from defi1.detection.label_rows import check_label_file
from defi1.detection.labels import (SPLITS, difficult_path, find_dataset_yaml, labels_from_pixels, list_samples,
                                    listed_samples, load_dataset_yaml, pixels_from_labels, read_difficult_flags,
                                    write_dataset_yaml, write_yolo_labels)
from defi1.detection.problems import Problem
from defi1.errors import DataError
from defi1.files import ensure_output_dir


def yolo_splits(source) -> DatasetIndex:
    """The splits of a YOLO dataset: a dataset YAML, a folder holding exactly one, or a folder with ``images/`` and
    ``labels/`` (its ``images/<split>`` folders, else ``images/`` as one split named ``all``), as a
    :class:`~defi1.detection.formats.common.DatasetIndex` (``names`` ``None`` when no YAML gives them). A split
    folder or list file that does not exist is a ``missing_split`` problem (that split has no sample)."""
    source = Path(source)
    data_yaml = source if source.is_file() else find_dataset_yaml(source) if source.is_dir() else None
    if data_yaml is not None:
        config = load_dataset_yaml(data_yaml)
        root, names, sources = config.root, config.names, dict(config.sources)
    elif (source / "images").is_dir():
        images = source / "images"
        root, names = source, None
        sources = {split: (images / split,) for split in SPLITS if (images / split).is_dir()} or {"all": (images,)}
    elif source.exists():
        raise DataError(f"{source}: expected a dataset YAML, or a folder with one, or a folder with images/ and "
                        "labels/")
    else:
        raise FileNotFoundError(f"{source}: no such dataset YAML file or folder")
    result = DatasetIndex("yolo", source, Path(root), names, {}, sources)
    for split, split_sources in sources.items():
        result.splits[split] = []
        for folder in split_sources:
            if not folder.exists():
                result.problems.append(Problem("missing_split", folder, "split folder or image list does not exist",
                                               split=split))
            elif folder.is_dir():
                result.splits[split].extend(list_samples(folder))
            else:
                result.splits[split].extend(listed_samples(folder, root))
    return result


def read_yolo(source, problems, names=None) -> list:
    """A YOLO dataset (see :func:`yolo_splits`) as annotations; splits are kept in ``relative_path``
    (``train/x.jpg``). Label lines that cannot be used and images that cannot be read are recorded in ``problems``
    (:func:`defi1.detection.label_rows.check_label_file`)."""
    found = yolo_splits(source)
    problems.extend(found.problems)
    names = names or found.names
    if names is None:
        raise DataError(f"{source}: no dataset YAML, give the class names (--names)")
    annotations, seen = [], set()
    several_splits = len(set(found.sources.values())) > 1
    for split, samples in found.splits.items():
        for sample in samples:
            if sample.image_path.resolve() in seen:
                continue  # a folder listed in two splits ("train: images", "val: images") is read once
            seen.add(sample.image_path.resolve())
            size = read_size(sample.image_path, sample.label_path, problems)
            if size is None:
                continue
            objects = _read_objects(sample, size, names, split, problems)
            # The splits are kept (train/x.jpg) when there are several, or the folder is named after its split
            # (images/train); a dataset whose one split is "train: images" stays one folder.
            keep_split = split in SPLITS and (several_splits or sample.image_path.parts[
                -len(sample.relative_path.parts) - 1] == split)
            annotations.append(ImageAnnotation(sample.image_path, size[0], size[1], objects,
                                               relative_path=Path(split) / sample.relative_path if keep_split
                                               else sample.relative_path, annotation_path=sample.label_path))
    return annotations


def _read_objects(sample, size, names, split, problems) -> list:
    """The objects of one YOLO sample in pixels, its problems recorded."""
    if not sample.label_path.is_file():
        return []
    checked = check_label_file(sample.label_path, num_classes=len(names), image_size=size, split=split,
                               image_path=sample.image_path)
    problems.extend(checked.problems)
    try:
        difficult = read_difficult_flags(sample.label_path, len(checked.kept))[checked.kept]
    except DataError as error:
        problems.append(Problem("malformed_annotation", difficult_path(sample.label_path),
                                str(error).split(": ", 1)[-1], split=split))
        difficult = np.zeros(len(checked.class_ids), dtype=bool)
    return [ObjectAnnotation(names[class_id], tuple(box.tolist()), bool(flag), line=int(line))
            for class_id, box, flag, line in zip(checked.class_ids, pixels_from_labels(checked.boxes, size),
                                                 difficult, checked.line_numbers)]


def write_yolo(annotations, out_dir, names, *, copy_images=True) -> Path:
    """``out_dir/images/<relative path>``, ``out_dir/labels/...``, ``out_dir/data.yaml``. Annotations whose
    relative path starts with a split name form that split; without splits, one ``images`` folder given as
    ``train`` (split it with ``defi1 data split``)."""
    out_dir = ensure_output_dir(out_dir)
    index_of = {name: index for index, name in enumerate(names)}
    splits = set()
    for annotation in annotations:
        relative = annotation.output_path
        if annotation.split is not None:
            splits.add(annotation.split)
        image_target = out_dir / "images" / relative
        if copy_images:
            copy_file(annotation.image_path, image_target)
        boxes = np.array([item.box for item in annotation.objects], dtype=np.float64).reshape(-1, 4)
        write_yolo_labels(out_dir / "labels" / relative.with_suffix(".txt"),
                          [index_of[item.class_name] for item in annotation.objects],
                          labels_from_pixels(boxes, (annotation.width, annotation.height)),
                          difficult=[item.difficult for item in annotation.objects])
    if splits:
        folders = {split: f"images/{split}" if split in splits else None for split in SPLITS}
        return write_dataset_yaml(out_dir / "data.yaml", names=names, **folders)
    return write_dataset_yaml(out_dir / "data.yaml", names=names, train="images", val=None)
