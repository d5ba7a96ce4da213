"""Detection datasets in every annotation format students bring: reading, converting and loading them.

Formats (one module each): ``yolo`` (:mod:`~defi1.detection.formats.yolo`: images, label files and a dataset YAML
in every form Ultralytics and Roboflow write), ``voc`` (:mod:`~defi1.detection.formats.voc`: labelImg's Pascal VOC
XML, splits from ``ImageSets/Main``), ``keras-yolo3`` (:mod:`~defi1.detection.formats.keras_yolo3`: the course
starter's ``annotations.csv``), ``labelme`` (:mod:`~defi1.detection.formats.labelme`) and ``coco``
(:mod:`~defi1.detection.formats.coco`: CVAT's and Roboflow's exports, category ids with gaps).

Every reader returns the same in-between form (:mod:`~defi1.detection.formats.common`): a list of ``ImageAnnotation``
(image file, size, objects with class name, ``[x_min, y_min, x_max, y_max]`` box in pixels and ``difficult`` flag),
its objects checked one way for every format, each problem recorded with its file and place in it
(:mod:`defi1.detection.problems`). :func:`convert_dataset` writes it in another format
(:mod:`~defi1.detection.formats.convert`); :func:`load_dataset` (:mod:`~defi1.detection.formats.loader`) is the one
dataset loader of training, evaluation, anchors, checks and splits.

Round trips through YOLO are exact to the pixel: six decimals of a normalised coordinate are well under a pixel
for images up to 10,000 pixels.
"""

from defi1.detection.formats.coco import coco_category_order
from defi1.detection.formats.common import FORMATS, DatasetIndex, ImageAnnotation, ObjectAnnotation, read_names
from defi1.detection.formats.convert import convert_dataset, write_annotations
from defi1.detection.formats.loader import detect_format, load_dataset
from defi1.detection.formats.reading import read_annotations

__all__ = ["FORMATS", "DatasetIndex", "ImageAnnotation", "ObjectAnnotation", "coco_category_order",
           "convert_dataset", "detect_format", "load_dataset", "read_annotations", "read_names",
           "write_annotations"]
