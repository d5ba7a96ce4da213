"""Reading a dataset of any annotation format into :class:`~defi1.detection.formats.common.ImageAnnotation` s, its
objects checked one way for every format (:func:`~defi1.detection.formats.common.check_objects`)."""

from __future__ import annotations

from defi1.detection.formats.coco import coco_category_order, read_coco
from defi1.detection.formats.common import FORMATS, check_objects, raise_for, read_names
from defi1.detection.formats.keras_yolo3 import read_keras_yolo3
from defi1.detection.formats.labelme import read_labelme
from defi1.detection.formats.voc import read_voc
from defi1.detection.formats.yolo import read_yolo, yolo_splits


def read_annotations(source, source_format, *, names=None, problems=None) -> tuple:
    """Read ``source`` in ``source_format`` (one of :data:`~defi1.detection.formats.common.FORMATS`).

    Returns ``(annotations, names)``: names as given (a list, a names file or a dataset YAML), else the format's own
    (YOLO's YAML, COCO's categories by id), else the class names found, sorted. Every problem is appended to
    ``problems``: an image whose annotation file or image cannot be read is left out (its problem has an
    ``image_path``), an invalid object is dropped or clipped. Without a ``problems`` list, an image left out raises
    a DataError naming its file (the dropped objects are then dropped silently).
    """
    names = read_names(names)
    collected = [] if problems is None else problems
    if source_format == "yolo":
        names = names or yolo_splits(source).names
        annotations = read_yolo(source, collected, names)
    elif source_format == "voc":
        annotations = read_voc(source, collected)
    elif source_format == "keras-yolo3":
        annotations = read_keras_yolo3(source, collected, names)
    elif source_format == "labelme":
        annotations = read_labelme(source, collected)
    elif source_format == "coco":
        names = names or coco_category_order(source)
        annotations = read_coco(source, collected)
    else:
        raise ValueError(f"unknown format {source_format!r}, expected one of {', '.join(FORMATS)}")
    if names is None:
        names = sorted({item.class_name for annotation in annotations for item in annotation.objects
                        if item.class_name})
    check_objects(annotations, names, collected)
    if problems is None:
        raise_for([problem for problem in collected if problem.image_path is not None], source=source)
    return annotations, names
