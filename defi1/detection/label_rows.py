"""The lines of YOLO label files: parsed (:func:`parse_label_file`) and checked (:func:`validate_label_rows`).

A line is ``class cx cy w h`` (``class cx cy w h confidence`` in prediction files): the class index and the box centre
and size normalised to ``[0, 1]`` by the image width and height (see :mod:`defi1.detection.labels`, which reads and
writes whole label files and re-exports these functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defi1.boxes import cxcywh_from_xyxy, duplicate_boxes, xyxy_from_cxcywh
from defi1.detection.problems import DUPLICATE_IOU, Problem, duplicate_message
from defi1.errors import DataError

# Coordinates a little outside [0, 1] (rounding by annotation tools) are clipped; beyond this they are an error.
_PIXEL_COORDINATE_LIMIT = 1.5


@dataclass(frozen=True)
class LabelRows:
    """The parsed lines of one label file, before any validation of the geometry.

    ``class_ids`` ``(N,)`` int64, ``boxes`` ``(N, 4)`` ``[cx, cy, w, h]`` as written (normalised), ``line_numbers``
    ``(N,)`` the 1-based line of each row, ``confidences`` ``(N,)`` or ``None`` (prediction files only).
    """

    path: Path
    class_ids: np.ndarray
    boxes: np.ndarray
    line_numbers: np.ndarray
    confidences: np.ndarray | None = None


def parse_label_file(path, *, with_confidence=False, malformed=None) -> LabelRows:
    """Parse a YOLO label file (``class cx cy w h``) or prediction file (``class cx cy w h confidence``).

    Blank lines and lines starting with ``#`` are skipped. Raises :class:`FileNotFoundError` if the file is missing
    and :class:`defi1.errors.DataError` naming the file and line for a line that is not five (six with confidence)
    numbers, a class that is not a non-negative integer, or a value that is not finite; with a ``malformed`` list,
    each such line is appended to it as ``(line_number, message)`` and left out instead (every bad line of a file
    is then known). Geometry is not checked here.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such label file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text file (expected YOLO label lines 'class cx cy w h')") from error
    expected = 6 if with_confidence else 5
    layout = "class cx cy w h confidence" if with_confidence else "class cx cy w h"
    class_ids, rows, line_numbers = [], [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        values, message = _label_line_values(fields, expected, layout)
        if message is not None:
            if malformed is None:
                raise DataError(f"{path}, line {line_number}: {message}")
            malformed.append((line_number, message))
            continue
        class_ids.append(int(values[0]))
        rows.append(values[1:])
        line_numbers.append(line_number)
    values = np.asarray(rows, dtype=np.float64).reshape(-1, expected - 1)
    return LabelRows(path=path, class_ids=np.asarray(class_ids, dtype=np.int64), boxes=values[:, :4].copy(),
                     line_numbers=np.asarray(line_numbers, dtype=np.int64),
                     confidences=values[:, 4].copy() if with_confidence else None)


def _label_line_values(fields, expected, layout):
    """``(values, None)`` for a well-formed label line, ``(None, message)`` otherwise."""
    text = " ".join(fields)
    if len(fields) != expected:
        return None, f"{len(fields)} values, expected {expected} ({layout}): {text!r}"
    try:
        values = [float(value) for value in fields]
    except ValueError as error:
        return None, f"not a number ({error}), expected {layout}"
    if not all(math.isfinite(value) for value in values):
        return None, f"non-finite value, expected {layout}: {text!r}"
    if values[0] < 0 or values[0] != int(values[0]):
        return None, f"class {fields[0]!r} is not a non-negative integer"
    return values, None


def validate_label_rows(rows: LabelRows, *, num_classes=None, image_size=None):
    """Check and clean parsed rows. Returns ``(keep (N,) bool, clipped_boxes (N, 4) cxcywh, issues)``.

    ``issues`` is a list of ``(kind, line_number, message)`` with kind ``"malformed_label"`` (coordinates beyond
    ±0.5 outside the image, which look like pixel coordinates: row dropped), ``"class_out_of_range"`` (row dropped),
    ``"negative_size"`` (row dropped), ``"box_outside_image"`` (clipped to the image, kept), ``"zero_area_box"``
    (dropped; also a box that becomes empty once clipped) or ``"duplicate_box"`` (kept; see
    :mod:`defi1.detection.problems`). ``image_size`` ``(width, height)`` only adds pixel values to the messages.
    """
    boxes = rows.boxes
    issues = []
    width, height = image_size if image_size is not None else (None, None)
    keep = ~np.any(np.abs(boxes) > _PIXEL_COORDINATE_LIMIT, axis=1)
    for index in np.flatnonzero(~keep):
        issues.append(("malformed_label", int(rows.line_numbers[index]), f"coordinates {boxes[index].tolist()} are "
                       "not normalised (expected cx cy w h divided by the image width and height, in [0, 1])"))
    if num_classes is not None:
        out_of_range = (rows.class_ids >= num_classes) & keep
        for index in np.flatnonzero(out_of_range):
            issues.append(("class_out_of_range", int(rows.line_numbers[index]),
                           f"class {rows.class_ids[index]} out of range (expected 0..{num_classes - 1})"))
        keep &= ~out_of_range
    negative = np.any(boxes[:, 2:] < 0, axis=1) & keep
    for index in np.flatnonzero(negative):
        issues.append(("negative_size", int(rows.line_numbers[index]),
                       f"negative width or height {boxes[index, 2:].tolist()}"))
    keep &= ~negative
    corners = xyxy_from_cxcywh(boxes)
    clipped_corners = np.clip(corners, 0.0, 1.0)
    outside = np.any(np.abs(clipped_corners - corners) > 1e-6, axis=1) & keep
    for index in np.flatnonzero(outside):
        extent = corners[index]
        if width is not None:
            extent = extent * np.array([width, height, width, height])
        issues.append(("box_outside_image", int(rows.line_numbers[index]),
                       f"box {np.round(extent, 4).tolist()} extends outside the image (clipped)"))
    clipped = np.where(outside[:, None], cxcywh_from_xyxy(clipped_corners), boxes)
    empty = (np.prod(clipped[:, 2:], axis=1) <= 0) & keep
    for index in np.flatnonzero(empty):
        issues.append(("zero_area_box", int(rows.line_numbers[index]),
                       f"box {boxes[index].tolist()} has zero area inside the image (dropped)"))
    keep &= ~empty
    line_numbers = rows.line_numbers[keep]
    for index, earlier, iou in duplicate_boxes(xyxy_from_cxcywh(clipped[keep]), rows.class_ids[keep],
                                               min_iou=DUPLICATE_IOU):
        issues.append(("duplicate_box", int(line_numbers[index]), duplicate_message(f"line {line_numbers[earlier]}",
                                                                                    iou)))
    return keep, clipped, issues


@dataclass
class CheckedLabels:
    """A label file read for ``defi1 data check`` and the converters: the rows kept (``class_ids`` ``(K,)``,
    ``boxes`` ``(K, 4)`` ``[cx, cy, w, h]`` normalised and clipped to the image, their ``line_numbers``), ``kept``
    ``(N,)`` over the ``N`` rows that parsed, and every problem of the file."""

    class_ids: np.ndarray
    boxes: np.ndarray
    line_numbers: np.ndarray
    kept: np.ndarray
    problems: list


def check_label_file(label_path, *, num_classes=None, image_size=None, split=None, image_path=None) -> CheckedLabels:
    """Read a YOLO label file without stopping at the first bad line: each malformed line, each line
    :func:`validate_label_rows` refuses or fixes, and each duplicated box is a
    :class:`~defi1.detection.problems.Problem` naming the file and line. A file that is not text is one problem
    whose ``image_path`` (the image the file annotates) marks that image as left out."""
    label_path = Path(label_path)
    malformed = []
    try:
        rows = parse_label_file(label_path, malformed=malformed)
    except DataError as error:  # not a text file
        problem = Problem("malformed_label", label_path, str(error).removeprefix(f"{label_path}: "), split=split,
                          image_path=image_path)
        empty = np.zeros(0, dtype=np.int64)
        return CheckedLabels(empty, np.zeros((0, 4)), empty, np.zeros(0, dtype=bool), [problem])
    problems = [Problem("malformed_label", label_path, message, line=line, split=split)
                for line, message in malformed]
    keep, clipped, issues = validate_label_rows(rows, num_classes=num_classes, image_size=image_size)
    problems += [Problem(kind, label_path, message, line=line, split=split) for kind, line, message in issues]
    problems.sort(key=lambda problem: problem.line or 0)
    return CheckedLabels(rows.class_ids[keep], clipped[keep], rows.line_numbers[keep], keep, problems)
