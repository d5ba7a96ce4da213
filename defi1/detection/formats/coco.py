"""COCO detection JSON (``images``, ``annotations`` with ``bbox = [x, y, w, h]``, ``categories``), as annotation
tools export it:

* CVAT ("COCO 1.0"): ``annotations/instances_<subset>.json`` with the images in ``images/`` (or
  ``images/<subset>/``); category ids are 1-based and keep gaps where labels were deleted.
* Roboflow ("COCO JSON"): one ``_annotations.coco.json`` per split folder (``train/``, ``valid/``, ``test/``) with
  its images beside it; category 0 is the dataset's own name (the ``supercategory`` of the real classes, used by no
  annotation) and is left out.
* a single JSON with the images in ``images/`` beside it (what :func:`write_coco` writes).

Classes are ordered by category id (gaps closed: ids 1, 2, 5 become classes 0, 1, 2). ``iscrowd`` boxes are read as
``difficult`` (both are ignored by evaluation); a ``difficult`` flag is written as an extra ``"difficult": 1`` key.
A folder holding one JSON per split keeps the splits (the file or folder name says which: ``train``, ``val``,
``valid``, ``validation``, ``test``).
"""

from __future__ import annotations

import json
from pathlib import Path

from defi1.detection.formats.common import (ImageAnnotation, ObjectAnnotation, copy_file, find_image,
                                            image_not_found, read_size, split_of_name)
from defi1.detection.problems import Problem
from defi1.errors import DataError
from defi1.files import atomic_write_json, ensure_output_dir


def coco_files(source) -> list:
    """``[(json file, split or None)]`` of a COCO source: the file itself, or a folder's JSON files (at its top, in
    ``annotations/``, or one ``_annotations.coco.json`` per split folder). DataError when there is none, or several
    that do not name distinct splits."""
    source = Path(source)
    if source.is_file():
        return [(source, split_of_name(source.name))]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such COCO JSON file or folder")
    files = sorted(source.glob("*.json")) + sorted((source / "annotations").glob("*.json"))
    if not files:
        files = sorted(folder / "_annotations.coco.json" for folder in source.iterdir()
                       if (folder / "_annotations.coco.json").is_file())
    if not files:
        raise DataError(f"{source}: no COCO JSON file found (expected a .json file, annotations/*.json or "
                        "<split>/_annotations.coco.json)")
    found = [(path, split_of_name(path.parent.name if path.name == "_annotations.coco.json" else path.name))
             for path in files]
    splits = [split for _, split in found]
    if len(found) > 1 and (None in splits or len(set(splits)) != len(splits)):
        raise DataError(f"{source}: {len(found)} JSON files ({', '.join(path.name for path, _ in found)}) that do "
                        "not name one split each; give the COCO file itself")
    return found


def _load(json_file):
    try:
        payload = json.loads(Path(json_file).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DataError(f"{json_file}, line {error.lineno}: not valid JSON ({error.msg})") from error
    if not isinstance(payload, dict):
        raise DataError(f"{json_file}: expected a COCO detection file (a mapping with images, annotations, "
                        "categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(payload.get(key), list):
            raise DataError(f"{json_file}: missing '{key}' (expected a COCO detection file)")
    return payload


def _categories(payload, json_file) -> list:
    """The categories that are classes, ordered by id: Roboflow's placeholder (no annotation uses it and it is
    the supercategory of the others) left out. DataError for an entry without an integer id and a name."""
    categories = payload["categories"]
    for category in categories:
        if not isinstance(category, dict) or not isinstance(category.get("id"), int) or "name" not in category:
            raise DataError(f"{json_file}: category {category!r} needs an integer 'id' and a 'name'")
    used = {entry.get("category_id") for entry in payload["annotations"] if isinstance(entry, dict)}
    parents = {category.get("supercategory") for category in categories}
    return sorted((category for category in categories
                   if category["id"] in used or category["name"] not in parents), key=lambda category: category["id"])


def coco_category_order(source) -> list:
    """Class names of a COCO source ordered by category id (the class order used when converting it), the
    categories of all its split files merged."""
    names = {}
    for json_file, _ in coco_files(source):
        for category in _categories(_load(json_file), json_file):
            names.setdefault(category["id"], str(category["name"]))
    return [names[key] for key in sorted(names)]


def read_coco(source, problems) -> list:
    """A COCO source (:func:`coco_files`); images at ``file_name`` relative to the JSON's folder, its ``images/``
    subfolder, or its parent's ``images/`` (``images/<subset>/`` for CVAT's ``instances_<subset>.json``). An
    image that is not there is left out and an annotation that cannot be read dropped, both recorded in
    ``problems``."""
    annotations = []
    for json_file, split in coco_files(source):
        annotations.extend(_read_coco_file(json_file, split, problems))
    return annotations


def _read_coco_file(json_file, split, problems):
    payload = _load(json_file)
    categories = {category["id"]: str(category["name"]) for category in payload["categories"]
                  if isinstance(category, dict) and "id" in category and "name" in category}
    subset = json_file.stem[len("instances_"):] if json_file.stem.startswith("instances_") else None
    images = {}
    for entry in payload["images"]:
        name = str(entry.get("file_name", ""))
        candidates = [json_file.parent / name, json_file.parent / "images" / name,
                      json_file.parent.parent / "images" / name,
                      json_file.parent.parent / "images" / subset / name if subset else None]
        image_path = find_image(candidates)
        if image_path is None:
            problems.append(image_not_found(json_file, candidates, location=f"image {entry.get('id')}"))
            continue
        size = read_size(image_path, json_file, problems, width=int(entry.get("width") or 0),
                         height=int(entry.get("height") or 0))
        if size is not None:
            relative = Path(split) / Path(name).name if split else Path(name)
            images[entry.get("id")] = ImageAnnotation(image_path, size[0], size[1], relative_path=relative,
                                                      annotation_path=json_file)
    for entry in payload["annotations"]:
        location = f"annotation {entry.get('id')}"
        image = images.get(entry.get("image_id"))
        if image is None:
            if not any(problem.location == f"image {entry.get('image_id')}" and problem.path == json_file
                       for problem in problems):
                problems.append(Problem("malformed_annotation", json_file, f"image_id {entry.get('image_id')} is "
                                        "not in 'images': annotation dropped", location=location))
            continue
        try:
            x, y, width, height = (float(value) for value in entry["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.append(Problem("malformed_annotation", json_file, "no 'bbox' [x, y, width, height]: "
                                    "annotation dropped", location=location))
            continue
        name = categories.get(entry.get("category_id"), f"category_id {entry.get('category_id')}")
        difficult = bool(entry.get("difficult", 0)) or bool(entry.get("iscrowd", 0))
        image.objects.append(ObjectAnnotation(name, (x, y, x + width, y + height), difficult, location=location))
    return list(images.values())


def write_coco(annotations, out, names, *, copy_images=True) -> Path:
    """``out`` is the JSON file or a folder (then ``out/annotations.json``); images copied to ``images/`` beside
    it. Category ids are ``1..len(names)``; boxes ``[x, y, w, h]`` to 1/1000 pixel."""
    json_file = coco_file(out)
    ensure_output_dir(json_file.parent)
    index_of = {name: index for index, name in enumerate(names)}
    images, objects = [], []
    for image_id, annotation in enumerate(annotations, start=1):
        relative = annotation.output_path
        if copy_images:
            copy_file(annotation.image_path, json_file.parent / "images" / relative)
        images.append({"id": image_id, "file_name": relative.as_posix(), "width": annotation.width,
                       "height": annotation.height})
        for item in annotation.objects:
            x_min, y_min, x_max, y_max = (round(value, 3) for value in item.box)
            width, height = round(x_max - x_min, 3), round(y_max - y_min, 3)
            entry = {"id": len(objects) + 1, "image_id": image_id, "category_id": index_of[item.class_name] + 1,
                     "bbox": [x_min, y_min, width, height], "area": round(width * height, 3), "iscrowd": 0}
            if item.difficult:
                entry["difficult"] = 1
            objects.append(entry)
    payload = {"info": {"description": "written by defi1"}, "images": images, "annotations": objects,
               "categories": [{"id": index + 1, "name": name, "supercategory": "object"}
                              for index, name in enumerate(names)]}
    atomic_write_json(json_file, payload)
    return json_file


def coco_file(out) -> Path:
    """The JSON file a COCO output ``out`` names: itself (``.json``), else ``out/annotations.json``."""
    out = Path(out)
    return out if out.suffix == ".json" else out / "annotations.json"
