"""Converting detection annotations between formats: YOLO, Pascal VOC, keras-yolo3, LabelMe and COCO.

Every reader returns the same in-between form, a list of :class:`ImageAnnotation` (image file, size, objects with
class name, ``[x_min, y_min, x_max, y_max]`` box in pixels and ``difficult`` flag), and every writer takes it. The
formats:

* ``yolo``: ``images/`` + ``labels/`` (``class cx cy w h`` normalised) + ``data.yaml``; the ``difficult`` flag goes
  to a ``.difficult`` sidecar beside each label file (see :mod:`defi1.detection.labels`).
* ``voc``: one Pascal VOC XML per image (labelImg's format), in ``Annotations/`` with images in ``JPEGImages/`` (or
  the XML beside its image); splits in ``ImageSets/Main/{train,val,test}.txt``. Coordinates are taken as they are written (continuous pixel coordinates, as the course
  converts them: ``(6, 21)-(293, 202)`` in a 300×208 image gives ``0.498333 0.536058 0.956667 0.870192``), written
  back rounded to integers; ``difficult`` is kept.
* ``keras-yolo3``: one text file (the course starter's ``annotations.csv``), one line per image:
  ``path x_min,y_min,x_max,y_max,class ...`` (integer pixels, class index; paths relative to the file's folder).
* ``labelme``: one LabelMe JSON per image beside it; ``rectangle`` shapes (``polygon`` shapes are read as their
  bounding box); ``difficult`` in the shape's ``flags``.
* ``coco``: one COCO JSON (``images``, ``annotations`` with ``bbox = [x, y, w, h]``, ``categories``) with the images
  in ``images/`` beside it. ``iscrowd`` boxes are read as ``difficult`` (both are ignored by evaluation); a
  ``difficult`` flag is written as an extra ``"difficult": 1`` key.

Round trips through YOLO are exact to the pixel: six decimals of a normalised coordinate are well under a pixel
for images up to 10,000 pixels.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.detection.labels import (SPLITS, find_dataset_yaml, labels_from_pixels, list_samples,
                                    load_dataset_yaml, load_ground_truth, write_dataset_yaml, write_yolo_labels)
from defi1.errors import DataError
from defi1.files import atomic_write_json, atomic_write_text, ensure_output_dir, read_names_file
from defi1.images import image_size

FORMATS = ("yolo", "voc", "keras-yolo3", "labelme", "coco")


@dataclass
class ObjectAnnotation:
    """One object: ``class_name``, ``box`` ``[x_min, y_min, x_max, y_max]`` in pixels, ``difficult``."""

    class_name: str
    box: tuple
    difficult: bool = False


@dataclass
class ImageAnnotation:
    """One image: its file, size in pixels, objects, and ``relative_path`` (where it goes in an output dataset,
    e.g. ``train/x.jpg`` for a YOLO split)."""

    image_path: Path
    width: int
    height: int
    objects: list = field(default_factory=list)
    relative_path: Path | None = None

    @property
    def output_path(self) -> Path:
        """``relative_path`` when it stays inside the output folder, else the image's file name."""
        relative = self.relative_path
        if relative is None or relative.is_absolute() or ".." in relative.parts:
            return Path(self.image_path.name)
        return relative


def read_names(names) -> list | None:
    """Class names from a list, a dataset YAML, or a text file with one name a line (``coco.names``)."""
    if names is None or isinstance(names, (list, tuple)):
        return None if names is None else [str(name) for name in names]
    path = Path(names)
    if path.suffix in (".yaml", ".yml"):
        return load_dataset_yaml(path).names
    return read_names_file(path)


def _check_box(box, width, height, where):
    x_min, y_min, x_max, y_max = box
    if not (x_max > x_min and y_max > y_min):
        raise DataError(f"{where}: box {list(box)} has no area (expected x_min < x_max and y_min < y_max)")
    return tuple(float(value) for value in box)


def _find_image(candidates, where):
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate)
    raise DataError(f"{where}: image not found (looked for {', '.join(str(c) for c in candidates if c is not None)})")


# ----------------------------------------------------------------------------------------------------------- VOC


def read_voc(source) -> list:
    """Pascal VOC XML files: ``source/Annotations/*.xml`` (images in ``source/JPEGImages``), or every XML under
    ``source`` (images beside them, or at the XML's ``path``)."""
    source = Path(source)
    folder = source / "Annotations" if (source / "Annotations").is_dir() else source
    if not folder.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (expected Pascal VOC XML files)")
    xml_files = sorted(folder.rglob("*.xml"))
    if not xml_files:
        raise DataError(f"{folder}: no .xml annotation file found")
    annotations = []
    for xml_file in xml_files:
        try:
            root = ElementTree.parse(xml_file).getroot()
        except ElementTree.ParseError as error:
            raise DataError(f"{xml_file}, line {error.position[0]}: not valid XML ({error})") from error
        filename = root.findtext("filename")
        if not filename:
            raise DataError(f"{xml_file}: no <filename> element")
        image_path = _find_image([source / "JPEGImages" / filename, xml_file.parent / filename,
                                  source / "images" / filename, root.findtext("path")], xml_file)
        width = int(float(root.findtext("size/width") or 0))
        height = int(float(root.findtext("size/height") or 0))
        if width <= 0 or height <= 0:
            width, height = image_size(image_path)
        objects = []
        for index, element in enumerate(root.findall("object"), start=1):
            name = (element.findtext("name") or "").strip()
            where = f"{xml_file}, object {index}"
            try:
                box = [float(element.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax")]
            except (TypeError, ValueError) as error:
                raise DataError(f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from error
            if not name:
                raise DataError(f"{where}: no <name>")
            difficult = (element.findtext("difficult") or "0").strip() in ("1", "true", "True")
            objects.append(ObjectAnnotation(name, _check_box(box, width, height, where), difficult))
        annotations.append(ImageAnnotation(image_path, width, height, objects))
    _apply_voc_image_sets(source, annotations)
    return annotations


def _apply_voc_image_sets(source: Path, annotations):
    """VOC's ``ImageSets/Main/{train,val,test}.txt`` (one image stem a line) give each image its split."""
    split_of = {}
    for split in SPLITS:
        listing = source / "ImageSets" / "Main" / f"{split}.txt"
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8").splitlines():
                if line.split():
                    split_of.setdefault(line.split()[0], split)
    for annotation in annotations:
        split = split_of.get(annotation.image_path.stem)
        if split is not None:
            annotation.relative_path = Path(split) / annotation.image_path.name


def write_voc(annotations, out_dir, *, copy_images=True) -> Path:
    """``out_dir/Annotations/<stem>.xml`` and ``out_dir/JPEGImages/<image>``; integer coordinates. Images of a
    split (``train/x.jpg``) are listed in ``ImageSets/Main/<split>.txt`` as VOC does."""
    out_dir = ensure_output_dir(out_dir)
    _check_unique_names(annotations)
    for annotation in annotations:
        image_name = annotation.output_path.name
        root = ElementTree.Element("annotation")
        ElementTree.SubElement(root, "folder").text = "JPEGImages"
        ElementTree.SubElement(root, "filename").text = image_name
        source = ElementTree.SubElement(root, "source")
        ElementTree.SubElement(source, "database").text = "defi1"
        size = ElementTree.SubElement(root, "size")
        for key, value in (("width", annotation.width), ("height", annotation.height), ("depth", 3)):
            ElementTree.SubElement(size, key).text = str(value)
        ElementTree.SubElement(root, "segmented").text = "0"
        for item in annotation.objects:
            element = ElementTree.SubElement(root, "object")
            ElementTree.SubElement(element, "name").text = item.class_name
            ElementTree.SubElement(element, "pose").text = "Unspecified"
            ElementTree.SubElement(element, "truncated").text = "0"
            ElementTree.SubElement(element, "difficult").text = "1" if item.difficult else "0"
            box = ElementTree.SubElement(element, "bndbox")
            for key, value in zip(("xmin", "ymin", "xmax", "ymax"), item.box):
                ElementTree.SubElement(box, key).text = str(int(round(value)))
        ElementTree.indent(root)
        xml = ElementTree.tostring(root, encoding="unicode") + "\n"
        atomic_write_text(out_dir / "Annotations" / f"{Path(image_name).stem}.xml", xml)
        if copy_images:
            _copy(annotation.image_path, out_dir / "JPEGImages" / image_name)
    splits = {}
    for annotation in annotations:
        parts = annotation.output_path.parts
        if len(parts) > 1 and parts[0] in SPLITS:
            splits.setdefault(parts[0], []).append(Path(parts[-1]).stem)
    for split, stems in splits.items():
        atomic_write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{stem}\n" for stem in stems))
    return out_dir


# --------------------------------------------------------------------------------------------------- keras-yolo3


def read_keras_yolo3(annotation_file, names=None) -> list:
    """A keras-yolo3 annotation file: lines ``path x_min,y_min,x_max,y_max,class ...``. Image paths are taken
    relative to the file's folder (then to the current folder). ``names``: class names (default ``class0``...)."""
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise FileNotFoundError(f"{annotation_file}: no such annotation file (expected 'path x1,y1,x2,y2,class ...')")
    annotations = []
    for line_number, line in enumerate(annotation_file.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{annotation_file}, line {line_number}"
        image_field = Path(fields[0])
        image_path = _find_image([image_field if image_field.is_absolute() else annotation_file.parent / image_field,
                                  image_field], where)
        width, height = image_size(image_path)
        objects = []
        for box_field in fields[1:]:
            values = box_field.split(",")
            try:
                numbers = [float(value) for value in values]
            except ValueError as error:
                raise DataError(f"{where}: {box_field!r} is not x_min,y_min,x_max,y_max,class numbers") from error
            if len(numbers) != 5 or numbers[4] != int(numbers[4]) or numbers[4] < 0:
                raise DataError(f"{where}: {box_field!r}: expected x_min,y_min,x_max,y_max,class (5 values, "
                                "integer class)")
            class_id = int(numbers[4])
            if names is not None and class_id >= len(names):
                raise DataError(f"{where}: class {class_id} out of range (expected 0..{len(names) - 1})")
            class_name = names[class_id] if names is not None else f"class{class_id}"
            objects.append(ObjectAnnotation(class_name, _check_box(numbers[:4], width, height, where)))
        relative = None
        if not image_field.is_absolute():
            # "images/train/x.jpg" (as write_keras_yolo3 writes) keeps "train/x.jpg": the split survives.
            relative = Path(*image_field.parts[1:]) if image_field.parts[0] == "images" and len(
                image_field.parts) > 1 else image_field
        annotations.append(ImageAnnotation(image_path, width, height, objects, relative_path=relative))
    if not annotations:
        raise DataError(f"{annotation_file}: no annotation line")
    return annotations


def write_keras_yolo3(annotations, out, names, *, copy_images=True) -> Path:
    """``out`` is the annotation file (``.txt``/``.csv``) or a folder (then ``out/annotations.txt``); images are
    copied to ``images/`` beside it and the lines point to them relatively; integer coordinates."""
    out = Path(out)
    annotation_file = out if out.suffix in (".txt", ".csv") else out / "annotations.txt"
    ensure_output_dir(annotation_file.parent)
    index_of = {name: index for index, name in enumerate(names)}
    lines = []
    for annotation in annotations:
        if copy_images:
            relative = Path("images") / annotation.output_path
            _copy(annotation.image_path, annotation_file.parent / relative)
        else:
            relative = Path(os.path.relpath(annotation.image_path, annotation_file.parent))
        if " " in relative.as_posix():
            raise DataError(f"{annotation.image_path}: keras-yolo3 lines cannot hold a path with spaces")
        boxes = [",".join(str(int(round(value))) for value in item.box) + f",{index_of[item.class_name]}"
                 for item in annotation.objects]
        lines.append(" ".join([relative.as_posix()] + boxes))
    atomic_write_text(annotation_file, "\n".join(lines) + "\n")
    return annotation_file


# ------------------------------------------------------------------------------------------------------- LabelMe


def read_labelme(source) -> list:
    """LabelMe JSON files under ``source`` (``imagePath`` relative to each JSON)."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (expected LabelMe JSON files)")
    annotations = []
    for json_file in sorted(source.rglob("*.json")):
        try:
            payload = json.loads(json_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{json_file}, line {error.lineno}: not valid JSON ({error.msg})") from error
        if not isinstance(payload, dict) or "shapes" not in payload:
            continue  # not a LabelMe file
        image_field = payload.get("imagePath") or f"{json_file.stem}.jpg"
        image_path = _find_image([json_file.parent / image_field, json_file.parent / Path(image_field).name],
                                 json_file)
        width = int(payload.get("imageWidth") or 0)
        height = int(payload.get("imageHeight") or 0)
        if width <= 0 or height <= 0:
            width, height = image_size(image_path)
        objects = []
        for index, shape in enumerate(payload["shapes"], start=1):
            where = f"{json_file}, shape {index}"
            kind = shape.get("shape_type") or "polygon"
            if kind not in ("rectangle", "polygon"):
                raise DataError(f"{where}: shape_type {kind!r} has no box (expected rectangle or polygon)")
            points = np.asarray(shape.get("points", []), dtype=np.float64).reshape(-1, 2)
            if len(points) < 2:
                raise DataError(f"{where}: expected at least 2 points")
            box = [points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()]
            difficult = bool((shape.get("flags") or {}).get("difficult", False))
            objects.append(ObjectAnnotation(str(shape.get("label", "")), _check_box(box, width, height, where),
                                            difficult))
        relative = image_path.relative_to(source) if image_path.is_relative_to(source) else None
        annotations.append(ImageAnnotation(image_path, width, height, objects, relative_path=relative))
    if not annotations:
        raise DataError(f"{source}: no LabelMe JSON file found")
    return annotations


def write_labelme(annotations, out_dir, *, copy_images=True) -> Path:
    """A LabelMe JSON beside each copied image in ``out_dir``; rectangles, coordinates to 1/1000 pixel."""
    out_dir = ensure_output_dir(out_dir)
    for annotation in annotations:
        image_target = out_dir / annotation.output_path
        if copy_images:
            _copy(annotation.image_path, image_target)
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


# ---------------------------------------------------------------------------------------------------------- COCO


def _coco_file(source) -> Path:
    source = Path(source)
    if source.is_file():
        return source
    candidates = sorted(source.glob("*.json")) + sorted((source / "annotations").glob("*.json"))
    if len(candidates) != 1:
        raise DataError(f"{source}: expected one COCO JSON file (found {len(candidates)}); give the file itself")
    return candidates[0]


def read_coco(source) -> list:
    """A COCO JSON file (or a folder holding exactly one); images at ``file_name`` relative to the JSON's folder,
    its ``images/`` subfolder, or its parent's ``images/``."""
    json_file = _coco_file(source)
    try:
        payload = json.loads(json_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{json_file}, line {error.lineno}: not valid JSON ({error.msg})") from error
    for key in ("images", "annotations", "categories"):
        if key not in payload:
            raise DataError(f"{json_file}: missing '{key}' (expected a COCO detection file)")
    categories = {category["id"]: category["name"] for category in payload["categories"]}
    images = {}
    for entry in payload["images"]:
        name = entry["file_name"]
        image_path = _find_image([json_file.parent / name, json_file.parent / "images" / name,
                                  json_file.parent.parent / "images" / name], f"{json_file}, image {entry['id']}")
        width, height = int(entry.get("width") or 0), int(entry.get("height") or 0)
        if width <= 0 or height <= 0:
            width, height = image_size(image_path)
        images[entry["id"]] = ImageAnnotation(image_path, width, height, relative_path=Path(name))
    for entry in payload["annotations"]:
        where = f"{json_file}, annotation {entry.get('id')}"
        if entry.get("image_id") not in images:
            raise DataError(f"{where}: image_id {entry.get('image_id')} is not in 'images'")
        if entry.get("category_id") not in categories:
            raise DataError(f"{where}: category_id {entry.get('category_id')} is not in 'categories'")
        x, y, width, height = (float(value) for value in entry["bbox"])
        image = images[entry["image_id"]]
        difficult = bool(entry.get("difficult", 0)) or bool(entry.get("iscrowd", 0))
        image.objects.append(ObjectAnnotation(categories[entry["category_id"]],
                                              _check_box([x, y, x + width, y + height], image.width, image.height,
                                                         where), difficult))
    return list(images.values())


def coco_category_order(json_file) -> list:
    """Category names of a COCO file ordered by id (the class order used when converting it)."""
    payload = json.loads(_coco_file(json_file).read_text(encoding="utf-8"))
    return [category["name"] for category in sorted(payload["categories"], key=lambda category: category["id"])]


def write_coco(annotations, out, names, *, copy_images=True) -> Path:
    """``out`` is the JSON file or a folder (then ``out/annotations.json``); images copied to ``images/`` beside
    it. Category ids are ``1..len(names)``; boxes ``[x, y, w, h]`` to 1/1000 pixel."""
    out = Path(out)
    json_file = out if out.suffix == ".json" else out / "annotations.json"
    ensure_output_dir(json_file.parent)
    index_of = {name: index for index, name in enumerate(names)}
    images, objects = [], []
    for image_id, annotation in enumerate(annotations, start=1):
        relative = annotation.output_path
        if copy_images:
            _copy(annotation.image_path, json_file.parent / "images" / relative)
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


# ---------------------------------------------------------------------------------------------------------- YOLO


def read_yolo(source, names=None) -> list:
    """A YOLO dataset: a dataset YAML, a folder with one, or a folder with ``images/`` and ``labels/``. Splits
    are kept in ``relative_path`` (``train/x.jpg``)."""
    source = Path(source)
    data_yaml = source if source.is_file() else find_dataset_yaml(source)
    if data_yaml is not None:
        config = load_dataset_yaml(data_yaml)
        names = names or config.names
        folders = [(split, getattr(config, split)) for split in SPLITS if getattr(config, split) is not None]
    elif (source / "images").is_dir():
        folders = [(None, source / "images")]
    else:
        raise FileNotFoundError(f"{source}: expected a dataset YAML or a folder with images/ and labels/")
    if names is None:
        raise DataError(f"{source}: no dataset YAML, give the class names (--names)")
    annotations, seen = [], set()
    for split, folder in folders:
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        for sample in list_samples(folder):
            width, height = image_size(sample.image_path)
            boxes, class_ids, difficult = load_ground_truth(sample, (width, height), num_classes=len(names),
                                                            with_difficult=True)
            relative = sample.image_path.relative_to(folder)
            objects = [ObjectAnnotation(names[class_id], tuple(box.tolist()), bool(flag))
                       for box, class_id, flag in zip(boxes, class_ids, difficult)]
            # A split folder named after its split (images/train) keeps the split; "train: images" does not.
            keep_split = split is not None and folder.name == split
            annotations.append(ImageAnnotation(sample.image_path, width, height, objects,
                                               relative_path=Path(split) / relative if keep_split else relative))
    return annotations


def write_yolo(annotations, out_dir, names, *, copy_images=True) -> Path:
    """``out_dir/images/<relative path>``, ``out_dir/labels/...``, ``out_dir/data.yaml``. Annotations whose
    relative path starts with a split name form that split; without splits, one ``images`` folder given as
    ``train`` (split it with ``defi1 data split``)."""
    out_dir = ensure_output_dir(out_dir)
    index_of = {name: index for index, name in enumerate(names)}
    splits = set()
    for annotation in annotations:
        relative = annotation.output_path
        if relative.parts[0] in SPLITS and len(relative.parts) > 1:
            splits.add(relative.parts[0])
        image_target = out_dir / "images" / relative
        if copy_images:
            _copy(annotation.image_path, image_target)
        boxes = np.array([item.box for item in annotation.objects], dtype=np.float64).reshape(-1, 4)
        write_yolo_labels(out_dir / "labels" / relative.with_suffix(".txt"),
                          [index_of[item.class_name] for item in annotation.objects],
                          labels_from_pixels(boxes, (annotation.width, annotation.height)),
                          difficult=[item.difficult for item in annotation.objects])
    if splits:
        folders = {split: f"images/{split}" if split in splits else None for split in SPLITS}
        return write_dataset_yaml(out_dir / "data.yaml", names=names, **folders)
    return write_dataset_yaml(out_dir / "data.yaml", names=names, train="images", val=None)


# ------------------------------------------------------------------------------------------------------ dispatch


def _copy(source, target):
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _check_unique_names(annotations):
    seen = {}
    for annotation in annotations:
        stem = Path(annotation.output_path.name).stem
        if stem in seen:
            raise DataError(f"{annotation.image_path} and {seen[stem]} share the name {stem!r}: VOC keeps one "
                            "Annotations folder, rename one of them")
        seen[stem] = annotation.image_path


def read_annotations(source, source_format, *, names=None) -> tuple:
    """Read ``source`` in ``source_format`` (one of :data:`FORMATS`). Returns ``(annotations, names)``: names as
    given, else the format's own (YOLO's YAML, COCO's categories by id), else the class names found, sorted."""
    names = read_names(names)
    if source_format == "yolo":
        annotations = read_yolo(source, names)
        names = names or load_dataset_yaml(_yolo_yaml(source)).names
    elif source_format == "voc":
        annotations = read_voc(source)
    elif source_format == "keras-yolo3":
        annotations = read_keras_yolo3(source, names)
    elif source_format == "labelme":
        annotations = read_labelme(source)
    elif source_format == "coco":
        annotations = read_coco(source)
        names = names or coco_category_order(source)
    else:
        raise ValueError(f"unknown format {source_format!r}, expected one of {', '.join(FORMATS)}")
    found = sorted({item.class_name for annotation in annotations for item in annotation.objects})
    if names is None:
        names = found
    unknown = [name for name in found if name not in names]
    if unknown:
        raise DataError(f"{source}: class(es) {', '.join(unknown)} not in the class names ({', '.join(names)})")
    return annotations, names


def _yolo_yaml(source):
    source = Path(source)
    if source.is_file():
        return source
    data_yaml = find_dataset_yaml(source)
    if data_yaml is None:
        raise DataError(f"{source}: expected one dataset YAML (*.yaml or *.yml), found none or several")
    return data_yaml


def write_annotations(annotations, out, target_format, names, *, copy_images=True) -> Path:
    """Write ``annotations`` in ``target_format``; returns the main output file (YAML, JSON, annotation file) or
    folder."""
    if target_format == "yolo":
        return write_yolo(annotations, out, names, copy_images=copy_images)
    if target_format == "voc":
        return write_voc(annotations, out, copy_images=copy_images)
    if target_format == "keras-yolo3":
        return write_keras_yolo3(annotations, out, names, copy_images=copy_images)
    if target_format == "labelme":
        return write_labelme(annotations, out, copy_images=copy_images)
    if target_format == "coco":
        return write_coco(annotations, out, names, copy_images=copy_images)
    raise ValueError(f"unknown format {target_format!r}, expected one of {', '.join(FORMATS)}")


def convert_dataset(source, out, *, source_format: str, target_format: str, names=None,
                    copy_images: bool = True) -> Path:
    """Convert a dataset between formats (``defi1 data convert``). Images are copied into the output so that it
    stands alone. ``names``: class names (list, names file or dataset YAML); needed for keras-yolo3 sources, and
    fixes the class order of VOC/LabelMe sources (default: sorted names). Returns the main output path."""
    for value in (source_format, target_format):
        if value not in FORMATS:
            raise ValueError(f"unknown format {value!r}, expected one of {', '.join(FORMATS)}")
    annotations, names = read_annotations(source, source_format, names=names)
    return write_annotations(annotations, out, target_format, names, copy_images=copy_images)
