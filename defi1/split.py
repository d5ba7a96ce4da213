"""``defi1 data split`` as a library function: split a dataset folder into train / val / test, whichever its kind.

A detection dataset (a folder with ``images/`` and ``labels/`` subfolders, a dataset YAML, Pascal VOC, COCO: see
:func:`is_detection_folder`) is split by :func:`defi1.detection.splits.split_detection_dataset` (with its dataset
YAML); any other folder is a
class-per-folder dataset, split by :func:`defi1.classification.data.split_dataset` and checked for images that land
in two splits (:func:`defi1.classification.data.find_leaks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def is_detection_folder(folder) -> bool:
    """True when ``folder`` is a detection dataset: ``images/`` and ``labels/`` subfolders (YOLO), a dataset YAML
    (or a folder holding one), Pascal VOC's ``Annotations/``, or COCO JSON (what
    :func:`defi1.detection.formats.detect_format` recognises; LabelMe folders look like image folders and are not
    taken for one)."""
    from defi1.detection.formats.loader import detect_format
    from defi1.errors import DataError

    folder = Path(folder)
    if (folder / "images").is_dir() and (folder / "labels").is_dir():
        return True
    try:
        return detect_format(folder) in ("yolo", "voc", "coco")
    except (DataError, FileNotFoundError):
        return False


@dataclass
class SplitReport:
    """What :func:`split_folder` did.

    Attributes:
        kind: ``"detection"`` or ``"classification"``. out_dir: the split dataset.
        data_yaml: the dataset YAML written (detection). num_images, num_classes, counts (``{split: images}``),
        skipped (``(path, reason)`` of unreadable files), leaks (images found in two splits): classification.
    """

    kind: str
    out_dir: Path
    data_yaml: Path | None = None
    num_images: int = 0
    num_classes: int = 0
    counts: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    leaks: list = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as ``defi1 data split`` prints it."""
        if self.kind == "detection":
            return [f"detection dataset split; dataset file: {self.data_yaml}"]
        lines = [f"skipped {path}: {reason}" for path, reason in self.skipped]
        lines.append(f"{self.num_images} images in {self.num_classes} classes ({len(self.skipped)} file(s) skipped)")
        lines.append(", ".join(f"{part}: {count}" for part, count in self.counts.items()) + f" -> {self.out_dir}")
        lines += [f"leak: {leak}" for leak in self.leaks]
        lines.append(f"{len(self.leaks)} image(s) found in more than one split" if self.leaks
                     else "no image found in two splits")
        return lines


def split_folder(source, out_dir, *, test_size=0.25, val_size=0.2, seed=42, link=False) -> SplitReport:
    """Split the dataset folder ``source`` into ``out_dir`` (seeded, stratified; see the module docstring).

    ``test_size``: fraction held out for test; ``val_size``: fraction of the rest held out for validation (for a
    detection dataset, both fractions of the whole). ``link``: hard-link the files of a classification dataset
    instead of copying them. Errors of the two splitters (missing folder, an ``out_dir`` already holding a split...)
    name the folder.
    """
    source = Path(source)
    if is_detection_folder(source):
        from defi1.detection.splits import split_detection_dataset

        data_yaml = split_detection_dataset(source, out_dir, val_size=val_size, test_size=test_size, seed=seed)
        return SplitReport(kind="detection", out_dir=Path(out_dir), data_yaml=data_yaml)
    from defi1.classification.data import find_leaks, scan_class_folders, split_dataset, write_split_folders

    dataset = scan_class_folders(source)
    split = split_dataset(dataset.paths, dataset.labels, test_size=test_size, val_size=val_size, seed=seed,
                          class_names=dataset.class_names)
    counts = write_split_folders(split, dataset.class_names, out_dir, link=link)
    return SplitReport(kind="classification", out_dir=Path(out_dir), num_images=len(dataset.paths),
                       num_classes=dataset.num_classes, counts=counts, skipped=list(dataset.skipped),
                       leaks=find_leaks(split))
