"""keras-yolo3's annotation file (the course starter's ``annotations.csv``): one line per image,
``path x_min,y_min,x_max,y_max,class ...`` (integer pixels, class index; paths relative to the file's folder)."""

from __future__ import annotations

import os
from pathlib import Path

from defi1.detection.formats.common import (ImageAnnotation, ObjectAnnotation, copy_file, find_image,
                                            image_not_found, read_size)
from defi1.detection.problems import Problem
from defi1.errors import DataError
from defi1.files import atomic_write_text, ensure_output_dir


def read_keras_yolo3(annotation_file, problems, names=None) -> list:
    """A keras-yolo3 annotation file. Image paths are taken relative to the file's folder (then to the current
    folder). ``names``: class names (default ``class0``...); a class index beyond them is recorded as an unknown
    class. A line that is not in the format, or whose image is not there, is left out and recorded in ``problems``."""
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise FileNotFoundError(f"{annotation_file}: no such annotation file (expected 'path x1,y1,x2,y2,class ...')")
    annotations = []
    for line_number, line in enumerate(annotation_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            annotation = _read_line(annotation_file, line_number, fields, names, problems)
            if annotation is not None:
                annotations.append(annotation)
    if not annotations and not problems:
        raise DataError(f"{annotation_file}: no annotation line")
    return annotations


def _read_line(annotation_file, line_number, fields, names, problems):
    image_field = Path(fields[0])
    candidates = [image_field if image_field.is_absolute() else annotation_file.parent / image_field, image_field]
    image_path = find_image(candidates)
    if image_path is None:
        problems.append(image_not_found(annotation_file, candidates, line=line_number))
        return None
    objects = []
    for box_number, box_field in enumerate(fields[1:], start=1):
        try:
            numbers = [float(value) for value in box_field.split(",")]
        except ValueError:
            numbers = []
        if len(numbers) != 5 or numbers[4] != int(numbers[4]) or numbers[4] < 0:
            problems.append(Problem("malformed_annotation", annotation_file, f"{box_field!r}: expected x_min,y_min,"
                                    "x_max,y_max,class (5 numbers, integer class)", line=line_number,
                                    image_path=image_path))
            return None
        class_id = int(numbers[4])
        class_name = (names[class_id] if class_id < len(names) else str(class_id)) if names is not None \
            else f"class{class_id}"
        objects.append(ObjectAnnotation(class_name, tuple(numbers[:4]), location=f"box {box_number}",
                                        line=line_number))
    size = read_size(image_path, annotation_file, problems, line=line_number)
    if size is None:
        return None
    relative = None
    if not image_field.is_absolute():
        # "images/train/x.jpg" (as write_keras_yolo3 writes) keeps "train/x.jpg": the split survives.
        relative = Path(*image_field.parts[1:]) if image_field.parts[0] == "images" and len(
            image_field.parts) > 1 else image_field
    return ImageAnnotation(image_path, size[0], size[1], objects, relative_path=relative,
                           annotation_path=annotation_file)


def write_keras_yolo3(annotations, out, names, *, copy_images=True) -> Path:
    """``out`` is the annotation file (``.txt``/``.csv``) or a folder (then ``out/annotations.txt``); images are
    copied to ``images/`` beside it and the lines point to them relatively; integer coordinates."""
    annotation_file = keras_yolo3_file(out)
    ensure_output_dir(annotation_file.parent)
    index_of = {name: index for index, name in enumerate(names)}
    lines = []
    for annotation in annotations:
        if copy_images:
            relative = Path("images") / annotation.output_path
            copy_file(annotation.image_path, annotation_file.parent / relative)
        else:
            relative = Path(os.path.relpath(annotation.image_path, annotation_file.parent))
        if " " in relative.as_posix():
            raise DataError(f"{annotation.image_path}: keras-yolo3 lines cannot hold a path with spaces")
        boxes = [",".join(str(int(round(value))) for value in item.box) + f",{index_of[item.class_name]}"
                 for item in annotation.objects]
        lines.append(" ".join([relative.as_posix()] + boxes))
    atomic_write_text(annotation_file, "\n".join(lines) + "\n")
    return annotation_file


def keras_yolo3_file(out) -> Path:
    """The annotation file a keras-yolo3 output ``out`` names: itself (``.txt``/``.csv``), else
    ``out/annotations.txt``."""
    out = Path(out)
    return out if out.suffix in (".txt", ".csv") else out / "annotations.txt"
