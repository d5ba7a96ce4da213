"""``defi1 data convert``: read a dataset in one format, write it in another, nothing mixed or lost."""

from __future__ import annotations

from pathlib import Path

from defi1.detection.formats.coco import coco_file, write_coco
from defi1.detection.formats.common import FORMATS, raise_for
from defi1.detection.formats.keras_yolo3 import keras_yolo3_file, write_keras_yolo3
from defi1.detection.formats.labelme import write_labelme
from defi1.detection.formats.reading import read_annotations
from defi1.detection.formats.voc import write_voc
from defi1.detection.formats.yolo import write_yolo
from defi1.detection.labels import dataset_folder_conflicts, prepare_dataset_folder
from defi1.detection.problems import SEVERITIES
from defi1.images import is_image_path

#: Problems that ``strict`` makes fatal: every object dropped, clipped or unreadable.
STRICT_KINDS = tuple(kind for kind, severity in SEVERITIES.items() if severity == "error"
                     or kind in ("box_outside_image", "zero_area_box"))


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


def output_entries(out, target_format) -> tuple:
    """``(folder, entries)``: the folder a conversion to ``target_format`` writes into and the files and folders of
    it that it writes (a LabelMe output is every file of its folder)."""
    out = Path(out)
    if target_format == "yolo":
        return out, ("images", "labels", "data.yaml")
    if target_format == "voc":
        return out, ("Annotations", "JPEGImages", "ImageSets")
    if target_format in ("coco", "keras-yolo3"):
        annotation_file = coco_file(out) if target_format == "coco" else keras_yolo3_file(out)
        return annotation_file.parent, (annotation_file.name, "images")
    return out, tuple(sorted(path.name for path in out.iterdir())) if out.is_dir() else ()


def _check_output(source, out, target_format, *, overwrite) -> tuple:
    """Refuse an output that overlaps the source, or already holds a dataset (unless ``overwrite``)."""
    folder, entries = output_entries(out, target_format)
    source_path = Path(source).resolve()
    footprint = [(folder / entry).resolve() for entry in entries] if target_format != "labelme" else [folder.resolve()]
    if any(source_path.is_relative_to(path) or (source_path.is_dir() and path.is_relative_to(source_path))
           for path in footprint):
        raise ValueError(f"{out}: the output would be written into the source {source} (choose an output folder "
                         "outside it)")
    existing = dataset_folder_conflicts(folder, entries)
    if existing and not overwrite:
        held = ", ".join(f"{path.name}/" if path.is_dir() else path.name for path in existing[:5])
        raise FileExistsError(f"{folder}: already holds {held} (a dataset would be mixed with this one: choose an "
                              "empty output folder, or --overwrite to replace it)")
    if existing and target_format == "labelme":
        others = [path for path in folder.rglob("*") if path.is_file()
                  and not (is_image_path(path) or path.suffix.lower() == ".json")]
        if others:
            raise FileExistsError(f"{folder}: holds files other than images and LabelMe JSON ({others[0].name}...); "
                                  "--overwrite replaces only a LabelMe dataset: choose an empty output folder")
    return folder, entries


def convert_dataset(source, out, *, source_format: str, target_format: str, names=None, copy_images: bool = True,
                    strict: bool = False, overwrite: bool = False, problems=None) -> Path:
    """Convert a dataset between formats (``defi1 data convert``) and return the main output path.

    Images are copied into the output so that it stands alone. ``names``: class names (list, names file or dataset
    YAML); needed for keras-yolo3 sources, and fixes the class order of VOC/LabelMe sources (default: sorted names).

    One bad object does not sink a dataset: an object with no area, outside the image or of an unknown class is
    dropped (a box partly outside is clipped), each recorded in ``problems`` (a list, when given) with its file and
    place; ``strict`` makes any of them an error. An annotation file or image that cannot be read stops the
    conversion, naming every such file (the source is then not what it should be). The output must not already hold
    a dataset (a conversion into it would mix the two): ``overwrite`` replaces one, once the source has been read.
    """
    for value in (source_format, target_format):
        if value not in FORMATS:
            raise ValueError(f"unknown format {value!r}, expected one of {', '.join(FORMATS)}")
    folder, entries = _check_output(source, out, target_format, overwrite=overwrite)
    collected = [] if problems is None else problems
    annotations, names = read_annotations(source, source_format, names=names, problems=collected)
    raise_for([problem for problem in collected if problem.image_path is not None], source=source)
    if strict:
        raise_for(collected, source=source, kinds=STRICT_KINDS)
    replaced = [path.resolve() for path in dataset_folder_conflicts(folder, entries)]
    kept = [annotation.image_path for annotation in annotations] + [annotation.annotation_path
                                                                    for annotation in annotations]
    inside = next((path for path in kept if path is not None and any(Path(path).resolve().is_relative_to(entry)
                                                                    for entry in replaced)), None)
    if inside is not None:
        raise ValueError(f"{out}: replacing it would delete {inside} of the source (choose another output)")
    prepare_dataset_folder(folder, overwrite=overwrite, entries=entries)
    return write_annotations(annotations, out, target_format, names, copy_images=copy_images)
