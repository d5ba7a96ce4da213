"""Splitting a detection dataset into train, val and test, written as a YOLO dataset with its dataset YAML.

``defi1 data split`` calls :func:`split_detection_dataset` for a detection dataset of any form the one loader reads
(:func:`defi1.detection.formats.load_dataset`): a folder with ``images/`` and ``labels/``, a dataset YAML, Pascal
VOC, COCO, LabelMe. The images of all its splits are split again.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from defi1.detection.formats.common import raise_for
from defi1.detection.formats.loader import load_dataset
from defi1.detection.labels import (dataset_folder_conflicts, difficult_path, label_path_for, labels_from_pixels,
                                    parse_label_file, write_dataset_yaml, write_yolo_labels)
from defi1.errors import DataError
from defi1.files import ensure_output_dir, read_names_file
from defi1.images import image_size


def _source_names(index, max_class_id: int):
    """Class names of a source dataset: its own (YAML, VOC, COCO...), else labelImg's ``classes.txt`` (in
    ``labels/`` or the root), else ``class0``, ``class1``... up to the largest class id found."""
    if index.names:
        return list(index.names)
    for candidate in (index.root / "classes.txt", index.root / "labels" / "classes.txt"):
        if candidate.is_file():
            return read_names_file(candidate)
    return [f"class{index}" for index in range(max_class_id + 1)]


def _split_sizes(total: int, val_size, test_size):
    def count(size, name):
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1:
            return int(size)
        if not 0 <= float(size) < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1) or a number of images, got {size}")
        return int(round(float(size) * total))

    val_count, test_count = count(val_size, "val_size"), count(test_size, "test_size")
    if val_count + test_count >= total:
        raise ValueError(f"{total} images cannot give {val_count} validation and {test_count} test images and "
                         "still leave training images")
    return val_count, test_count


def split_detection_dataset(source_dir, out_dir, *, val_size=0.2, test_size=0.1, seed: int = 42, names=None,
                            stratify: bool = True) -> Path:
    """Copy a YOLO-format dataset into ``out_dir/images/{train,val,test}`` and ``out_dir/labels/...`` and write
    ``out_dir/data.yaml``; return its path.

    Args:
        source_dir: a folder with ``images/`` (any nesting) and ``labels/`` in parallel (label files of the same
            relative path, ``.txt``; images without label are kept as backgrounds), or any other dataset the one
            loader reads (a dataset YAML, Pascal VOC, COCO...): the images of all its splits are split again.
        val_size, test_size: fractions of the images (or numbers of images when integers >= 1); ``test_size=0``
            gives no test split.
        seed: the split is a function of the seed and the sorted file list.
        names: class names (default: the source's YAML, its ``classes.txt``, else ``class0``...).
        stratify: balance the splits on each image's most frequent class (backgrounds form their own group) when
            every group has at least two images; otherwise a plain random split.
    Relative paths under ``images/`` are kept, so files of the same name in different subfolders do not collide;
    ``.difficult`` sidecars travel with their labels.
    """
    from sklearn.model_selection import train_test_split

    source_dir = Path(source_dir)
    if not source_dir.exists():
        raise FileNotFoundError(f"{source_dir}: no such dataset (expected a folder with an images/ subfolder and "
                                "labels/, a dataset YAML, Pascal VOC or COCO)")
    out_dir = Path(out_dir)
    if out_dir.resolve() == source_dir.resolve():
        raise ValueError(f"{out_dir}: the output folder must differ from the source folder")
    if dataset_folder_conflicts(out_dir):
        raise FileExistsError(f"{out_dir}: already holds images/ or labels/ (choose an empty folder)")
    index = load_dataset(source_dir)
    raise_for([problem for problem in index.problems if problem.image_path is not None], source=source_dir)
    samples = [(split, sample) for split, split_samples in index.splits.items() for sample in split_samples]
    if len(samples) < 2:
        raise DataError(f"{source_dir}: {len(samples)} image(s) found, at least 2 are needed to split")
    groups, max_class_id = [], -1
    for _, sample in samples:
        class_ids = _class_ids(sample)
        if len(class_ids):
            max_class_id = max(max_class_id, int(class_ids.max()))
            groups.append(int(Counter(class_ids.tolist()).most_common(1)[0][0]))
        else:
            groups.append(-1)
    names = list(names) if names is not None else _source_names(index, max_class_id)
    if max_class_id >= len(names):
        raise DataError(f"{source_dir}: class id {max_class_id} found but only {len(names)} names")
    val_count, test_count = _split_sizes(len(samples), val_size, test_size)
    indices = np.arange(len(samples))
    groups = np.asarray(groups)

    def take(pool, count, salt):
        if count == 0:
            return pool, pool[:0]
        labels = groups[pool]
        usable = stratify and min(Counter(labels.tolist()).values()) >= 2 and count >= len(set(labels.tolist()))
        usable = usable and len(pool) - count >= len(set(labels.tolist()))
        rest, taken = train_test_split(pool, test_size=count, random_state=seed + salt,
                                       stratify=labels if usable else None)
        return np.sort(rest), np.sort(taken)

    remaining, test_indices = take(indices, test_count, 0)
    train_indices, val_indices = take(remaining, val_count, 1)
    ensure_output_dir(out_dir)
    assignments = (("train", train_indices), ("val", val_indices), ("test", test_indices))
    for split, chosen in assignments:
        for position in chosen:
            _copy_sample(*samples[position], out_dir / "images" / split, several_splits=len(index.splits) > 1)
    return write_dataset_yaml(out_dir / "data.yaml", names=names, train="images/train",
                              val="images/val" if len(val_indices) else None,
                              test="images/test" if len(test_indices) else None)


def _class_ids(sample) -> np.ndarray:
    if sample.objects is not None:
        return sample.objects.class_ids
    return parse_label_file(sample.label_path).class_ids if sample.label_path.is_file() else np.zeros(0, int)


def _copy_sample(split, sample, images_dir, *, several_splits):
    """Copy one sample's image into ``images_dir`` (under its split's name when the source has several, so that
    same-named images of two splits do not collide) with its label file and ``.difficult`` sidecar, or write them
    from the objects read from another format."""
    relative = Path(split) / sample.relative_path if several_splits else sample.relative_path
    target = images_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(sample.image_path, target)
    label_target = label_path_for(target)
    if sample.objects is not None:
        objects = sample.objects
        size = objects.image_size or image_size(sample.image_path)
        write_yolo_labels(label_target, objects.class_ids, labels_from_pixels(objects.boxes, size),
                          difficult=objects.difficult)
    elif sample.label_path.is_file():
        label_target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample.label_path, label_target)
        if difficult_path(sample.label_path).is_file():
            shutil.copy2(difficult_path(sample.label_path), difficult_path(label_target))
