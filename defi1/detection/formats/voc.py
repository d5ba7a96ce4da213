"""Pascal VOC: one XML per image (labelImg's format).

Layout: ``Annotations/*.xml`` with the images in ``JPEGImages/`` (or the XML files beside their images), the splits
in ``ImageSets/Main/{train,val,test}.txt`` (one image stem a line; ``trainval.txt`` is the training split when
neither ``train.txt`` nor ``val.txt`` exists). Coordinates are taken as they are written (continuous pixel
coordinates, as the course converts them: ``(6, 21)-(293, 202)`` in a 300×208 image gives ``0.498333 0.536058
0.956667 0.870192``), written back rounded to integers; ``difficult`` is kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from defi1.detection.formats.common import (ImageAnnotation, ObjectAnnotation, copy_file, find_image,
                                            image_not_found, read_size)
from defi1.detection.labels import SPLITS
from defi1.detection.problems import Problem
from defi1.errors import DataError
from defi1.files import atomic_write_text, ensure_output_dir


def voc_root(source) -> Path:
    """The VOC folder of ``source``: ``source`` itself when it holds ``Annotations/``, else the one folder one or two
    levels below that does (a repository wrapping its dataset, as BCCD's ``BCCD/``, or ``VOCdevkit/VOC2007``), else
    ``source`` (XML files beside their images, or several VOC folders)."""
    source = Path(source)
    if (source / "Annotations").is_dir():
        return source
    nested = sorted({folder.parent for pattern in ("*/Annotations", "*/*/Annotations")
                     for folder in source.glob(pattern) if folder.is_dir()})
    return nested[0] if len(nested) == 1 else source


def voc_annotation_folder(source) -> Path:
    """``Annotations/`` of :func:`voc_root` when it exists, else ``source`` (XML files beside their images)."""
    root = voc_root(source)
    return root / "Annotations" if (root / "Annotations").is_dir() else Path(source)


def read_voc(source, problems) -> list:
    """Pascal VOC XML files: ``source/Annotations/*.xml`` (images in ``source/JPEGImages``; ``source`` may also be a
    folder wrapping one VOC folder, see :func:`voc_root`), or every XML under ``source`` (images beside them, in the
    ``JPEGImages/`` beside their ``Annotations/``, or at the XML's ``path``). An XML that cannot be read, or whose image is not
    there, is left out and recorded in ``problems``; its objects are checked later
    (:func:`~defi1.detection.formats.common.check_objects`)."""
    source = voc_root(source)
    folder = voc_annotation_folder(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (expected Pascal VOC XML files)")
    xml_files = sorted(folder.rglob("*.xml"))
    if not xml_files:
        raise DataError(f"{folder}: no .xml annotation file found")
    annotations = [annotation for xml_file in xml_files
                   if (annotation := _read_voc_file(xml_file, source, problems)) is not None]
    _apply_voc_image_sets(source, annotations)
    return annotations


def _read_voc_file(xml_file, source, problems):
    try:
        root = ElementTree.parse(xml_file).getroot()
    except ElementTree.ParseError as error:
        problems.append(Problem("malformed_annotation", xml_file, f"not valid XML ({error})", line=error.position[0],
                                image_path=xml_file))
        return None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        problems.append(Problem("malformed_annotation", xml_file, "no <filename> element (the image's name)",
                                image_path=xml_file))
        return None
    candidates = [source / "JPEGImages" / filename, xml_file.parent / filename, source / "images" / filename,
                  xml_file.parent.parent / "JPEGImages" / filename, root.findtext("path")]
    image_path = find_image(candidates)
    if image_path is None:
        problems.append(image_not_found(xml_file, candidates))
        return None
    size = read_size(image_path, xml_file, problems, width=_number(root.findtext("size/width")),
                     height=_number(root.findtext("size/height")))
    if size is None:
        return None
    objects = []
    for index, element in enumerate(root.findall("object"), start=1):
        name = (element.findtext("name") or "").strip()
        try:
            box = tuple(float(element.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            problems.append(Problem("malformed_annotation", xml_file, "<bndbox> needs numeric xmin, ymin, xmax, "
                                    "ymax: object dropped", location=f"object {index}"))
            continue
        difficult = (element.findtext("difficult") or "0").strip() in ("1", "true", "True")
        objects.append(ObjectAnnotation(name, box, difficult, location=f"object {index}"))
    return ImageAnnotation(image_path, size[0], size[1], objects, annotation_path=xml_file)


def _number(text) -> int:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        return 0


def voc_image_sets(source) -> dict:
    """``{image stem: split}`` from VOC's ``ImageSets/Main`` lists (empty when there are none)."""
    folder = Path(source) / "ImageSets" / "Main"
    listings = {split: folder / f"{split}.txt" for split in SPLITS}
    if not listings["train"].is_file() and not listings["val"].is_file():
        listings["train"] = folder / "trainval.txt"
    split_of = {}
    for split, listing in listings.items():
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8-sig").splitlines():
                if line.split():
                    split_of.setdefault(line.split()[0], split)
    return split_of


def _apply_voc_image_sets(source: Path, annotations):
    """VOC's split lists give each image its split (``relative_path`` ``train/x.jpg``)."""
    split_of = voc_image_sets(source)
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
            copy_file(annotation.image_path, out_dir / "JPEGImages" / image_name)
    splits = {}
    for annotation in annotations:
        if annotation.split is not None:
            splits.setdefault(annotation.split, []).append(annotation.output_path.stem)
    for split, stems in splits.items():
        atomic_write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{stem}\n" for stem in stems))
    return out_dir


def _check_unique_names(annotations):
    seen = {}
    for annotation in annotations:
        stem = Path(annotation.output_path.name).stem
        if stem in seen:
            raise DataError(f"{annotation.image_path} and {seen[stem]} share the name {stem!r}: VOC keeps one "
                            "Annotations folder, rename one of them")
        seen[stem] = annotation.image_path
