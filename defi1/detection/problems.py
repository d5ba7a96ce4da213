"""What can be wrong in a detection dataset: one :class:`Problem` per finding, with its file and place in the file.

The readers of every annotation format (:mod:`defi1.detection.formats`), the one dataset loader
(:func:`defi1.detection.formats.loader.load_dataset`) and ``defi1 data check`` (:mod:`defi1.detection.check`) record
the same problems. Each kind has a severity and a consequence:

==========================  ========  ===================================================================
kind                        severity  what defi1 does with the object, line, image or file
==========================  ========  ===================================================================
``malformed_label``         error     a YOLO label line that is not ``class cx cy w h`` numbers: line ignored
``class_out_of_range``      error     a YOLO class id beyond the class names: line ignored
``unknown_class``           error     an object whose class is not among the class names: object dropped
``negative_size``           error     a YOLO box of negative width or height: line ignored
``malformed_annotation``    error     an annotation file (XML, JSON, list line) that cannot be read: its image skipped
``missing_image``           error     an annotation names an image that is not there: skipped
``unreadable_image``        error     the image cannot be decoded (damaged, truncated, too large): skipped
``label_without_image``     error     a label file no image maps to: never read
``duplicate_across_splits`` error     the same image (content) in two splits: evaluation leaks
``missing_split``           error     a split of the dataset YAML whose folder or list file does not exist
``box_outside_image``       warning   the box extends outside the image: clipped to it
``zero_area_box``           warning   the box has no area (as written, or none left inside the image): dropped
``duplicate_box``           warning   a box of the same class as an earlier one of the file, IoU >= 0.9: kept
``background_image``        info      an image without objects: trained on as showing none
==========================  ========  ===================================================================

``duplicate_box`` catches an object annotated twice (an exact duplicate line, or labelImg's copy of a box shifted by
a pixel or two); two distinct objects of one class overlapping that much are rare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SEVERITIES = {"malformed_label": "error", "class_out_of_range": "error", "unknown_class": "error",
              "negative_size": "error", "malformed_annotation": "error", "missing_image": "error",
              "unreadable_image": "error", "label_without_image": "error", "duplicate_across_splits": "error",
              "missing_split": "error", "box_outside_image": "warning", "zero_area_box": "warning",
              "duplicate_box": "warning", "background_image": "info"}
#: IoU at or above which two boxes of the same class in one file are reported as one object annotated twice.
DUPLICATE_IOU = 0.9


@dataclass(frozen=True)
class Problem:
    """One problem: its ``kind`` (see the module's table), the ``path`` of the file, where in it (``line``, 1-based,
    for text files; ``location`` such as ``"object 13"`` for other formats), the ``split`` and a message.

    ``image_path``: set when the problem leaves that image out (its annotation file or the image cannot be read);
    ``None`` for a problem of one object, line or split."""

    kind: str
    path: Path
    message: str
    line: int | None = None
    split: str | None = None
    location: str | None = None
    image_path: Path | None = None

    @property
    def severity(self) -> str:
        return SEVERITIES[self.kind]

    @property
    def where(self) -> str:
        """``path, line 3`` or ``path, object 13`` (or the path alone)."""
        where = str(self.path)
        if self.line is not None:
            where += f", line {self.line}"
        if self.location is not None:
            where += f", {self.location}"
        return where

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "path": str(self.path), "line": self.line,
                "location": self.location, "split": self.split, "message": self.message}


def duplicate_message(earlier, iou) -> str:
    """The message of a ``duplicate_box``: ``earlier`` names the box it repeats (``"line 3"``, ``"object 14"``)."""
    overlap = "same box" if iou > 1 - 1e-9 else f"IoU {iou:.2f}"
    return f"repeats {earlier} (same class, {overlap}): one object annotated twice? (kept)"


def count_by_kind(problems) -> dict:
    """``{kind: number of problems}``, in the order kinds first appear."""
    counts = {}
    for problem in problems:
        counts[problem.kind] = counts.get(problem.kind, 0) + 1
    return counts


def format_problems(problems, *, max_per_kind: int = 50, indent: str = "  ") -> list[str]:
    """One line per problem (the first ``max_per_kind`` of each kind, then how many more)."""
    counts, shown, lines = count_by_kind(problems), {}, []
    for problem in problems:
        shown[problem.kind] = shown.get(problem.kind, 0) + 1
        if shown[problem.kind] <= max_per_kind:
            lines.append(f"{indent}{problem}")
        elif shown[problem.kind] == max_per_kind + 1:
            lines.append(f"{indent}... {counts[problem.kind] - max_per_kind} more {problem.kind}")
    return lines


def summary_line(problems) -> str:
    """``3 zero_area_box (warning), 1 unknown_class (error)``, sorted by kind."""
    return ", ".join(f"{count} {kind} ({SEVERITIES[kind]})" for kind, count in sorted(count_by_kind(problems).items()))
