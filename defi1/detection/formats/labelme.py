"""LabelMe: one JSON per image, beside it (``version``, ``shapes``, ``imagePath``, ``imageData``, ``imageHeight``,
``imageWidth``). ``rectangle`` shapes are boxes; ``polygon`` shapes are read as their bounding box and ``circle``
shapes (centre, then a point of the circle) as the square around them; ``difficult`` is kept in the shape's
``flags``. ``imagePath`` is relative to the JSON (LabelMe on Windows writes it with backslashes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from defi1.detection.formats.common import (ImageAnnotation, ObjectAnnotation, copy_file, find_image,
                                            image_not_found, read_size)
from defi1.detection.problems import Problem
from defi1.errors import DataError
from defi1.files import atomic_write_json, ensure_output_dir

BOX_SHAPES = ("rectangle", "polygon", "circle")


def read_labelme(source, problems) -> list:
    """LabelMe JSON files under ``source``. A JSON that cannot be read, or whose image is not there, is left out
    and recorded in ``problems``, as is a shape without a box (a line or a point); JSON files that are not LabelMe's
    (no ``shapes``) are ignored."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (expected LabelMe JSON files)")
    annotations, found = [], 0
    for json_file in sorted(source.rglob("*.json")):
        try:
            payload = json.loads(json_file.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            problems.append(Problem("malformed_annotation", json_file, f"not valid JSON ({error})",
                                    line=getattr(error, "lineno", None), image_path=json_file))
            continue
        if not isinstance(payload, dict) or "shapes" not in payload:
            continue  # not a LabelMe file
        found += 1
        annotation = _read_labelme_file(json_file, payload, source, problems)
        if annotation is not None:
            annotations.append(annotation)
    if not found and not problems:
        raise DataError(f"{source}: no LabelMe JSON file found")
    return annotations


def _read_labelme_file(json_file, payload, source, problems):
    image_field = str(payload.get("imagePath") or f"{json_file.stem}.jpg").replace("\\", "/")
    candidates = [json_file.parent / image_field, json_file.parent / Path(image_field).name]
    image_path = find_image(candidates)
    if image_path is None:
        problems.append(image_not_found(json_file, candidates))
        return None
    size = read_size(image_path, json_file, problems, width=int(payload.get("imageWidth") or 0),
                     height=int(payload.get("imageHeight") or 0))
    if size is None:
        return None
    objects = []
    for index, shape in enumerate(payload["shapes"], start=1):
        box, reason = _shape_box(shape)
        if box is None:
            problems.append(Problem("malformed_annotation", json_file, f"{reason}: shape dropped",
                                    location=f"shape {index}"))
            continue
        difficult = bool((shape.get("flags") or {}).get("difficult", False))
        objects.append(ObjectAnnotation(str(shape.get("label", "")).strip(), box, difficult,
                                        location=f"shape {index}"))
    relative = image_path.relative_to(source) if image_path.is_relative_to(source) else None
    return ImageAnnotation(image_path, size[0], size[1], objects, relative_path=relative, annotation_path=json_file)


def _shape_box(shape):
    """``(box, None)`` for a shape with a box, ``(None, reason)`` otherwise."""
    kind = shape.get("shape_type") or "polygon"
    if kind not in BOX_SHAPES:
        return None, f"shape_type {kind!r} has no box (expected {', '.join(BOX_SHAPES)})"
    try:
        points = np.asarray(shape.get("points", []), dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None, "points are not [x, y] numbers"
    if len(points) < 2:
        return None, f"{len(points)} point(s), expected at least 2"
    if kind == "circle":
        radius = float(np.hypot(*(points[1] - points[0])))
        return (points[0, 0] - radius, points[0, 1] - radius, points[0, 0] + radius, points[0, 1] + radius), None
    return (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()), None


def write_labelme(annotations, out_dir, *, copy_images=True) -> Path:
    """A LabelMe JSON beside each copied image in ``out_dir``; rectangles, coordinates to 1/1000 pixel."""
    out_dir = ensure_output_dir(out_dir)
    for annotation in annotations:
        image_target = out_dir / annotation.output_path
        if copy_images:
            copy_file(annotation.image_path, image_target)
        shapes = [{"label": item.class_name,
                   "points": [[round(item.box[0], 3), round(item.box[1], 3)],
                              [round(item.box[2], 3), round(item.box[3], 3)]],
                   "group_id": None, "description": "", "shape_type": "rectangle",
                   "flags": {"difficult": True} if item.difficult else {}}
                  for item in annotation.objects]
        payload = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_target.name,
                   "imageData": None, "imageHeight": annotation.height, "imageWidth": annotation.width}
        atomic_write_json(image_target.with_suffix(".json"), payload)
    return out_dir
