"""Results files for grading: every notebook and ``defi1 demo`` ends by calling :func:`record_results`.

Schema (version 2) of ``results/<part>.json``::

    {
      "schema_version": 2,
      "part": "classification" | "localisation" | "realtime",
      "metrics": {"<name>": number, ...},   # e.g. test_accuracy, map50, map50_95, fps_end_to_end
      "dataset": "digits",                  # what the metrics were measured on (free text)
      "model": "small_cnn",                 # which model produced them (free text)
      "keras_version": "3.15.1",
      "backend": "tensorflow",
      "device": "CPU (2 cores, x86_64)",
      "smoke": false,                       # true when produced with the small CI settings
      "timestamp": "2026-11-27T10:00:00+00:00",
      "defi1_version": "0.1.0",
      "provenance": {                       # every key present; null when it does not apply
        "split": "test",                    # the split measured
        "dataset_fingerprint": "9f2c...",   # SHA-256 of its file list and labels (defi1.fingerprint)
        "input_size": 256,                  # network input side, or [width, height]
        "thresholds": {"conf_threshold": 0.005, "iou_threshold": 0.45},
        "model_file": "runs/x/best.keras",  # relative to the folder holding results/, else the file name
        "model_sha256": "3b1e..."           # SHA-256 of that file's bytes
      },
      "extra": {...}                        # optional, free-form
    }

Version 1 files (no ``defi1_version``, no ``provenance``) are still read; ``defi1 collect`` flags them as lacking
provenance. Expected metrics per part (others may be added): classification: ``train_accuracy``,
``val_accuracy``, ``test_accuracy``; localisation: ``map50``, ``map50_95``; realtime: ``fps_end_to_end``,
``fps_model``. Accuracies, mAP, precision and recall lie in ``[0, 1]``, FPS above 0, latencies at or above 0
(:func:`metric_range_problems`): :func:`record_results` refuses other values, ``defi1 collect`` flags them.
"""

from __future__ import annotations

import datetime as _datetime
import json
import math
import numbers
import os
import re
from pathlib import Path

from defi1.files import atomic_write_json

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
PARTS = ("classification", "localisation", "realtime")
EXPECTED_METRICS = {
    "classification": ("test_accuracy",),
    "localisation": ("map50", "map50_95"),
    "realtime": ("fps_end_to_end",),
}
REQUIRED_FIELDS_V1 = ("schema_version", "part", "metrics", "dataset", "model", "keras_version", "backend", "device",
                      "smoke", "timestamp")
REQUIRED_FIELDS = REQUIRED_FIELDS_V1 + ("defi1_version", "provenance")
PROVENANCE_FIELDS = ("split", "dataset_fingerprint", "input_size", "thresholds", "model_file", "model_sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ResultsSchemaError(ValueError):
    """A results file does not follow the schema; the message names the file and the problem."""


def record_results(part: str, metrics: dict, *, dataset: str, model: str, smoke: bool = False,
                   results_dir="results", extra: dict | None = None, model_path=None, split: str | None = None,
                   dataset_fingerprint: str | None = None, input_size=None, thresholds: dict | None = None) -> Path:
    """Write ``<results_dir>/<part>.json`` following the schema above and return its path.

    Args:
        metrics: names to finite numbers, within the ranges of :func:`metric_range_problems`.
        dataset, model: free-text descriptions shown to the instructor.
        model_path: the model file that produced the metrics; its SHA-256 is recorded so that ``defi1 collect``
            can check that the submitted file is that one.
        split: the split measured (``"test"``); dataset_fingerprint: its fingerprint
            (:func:`defi1.detection.labels.split_fingerprint`, :func:`defi1.classification.data.split_fingerprint`).
        input_size: the network input side (int) or ``(width, height)``; thresholds: the post-processing
            thresholds used (e.g. ``{"conf_threshold": 0.005, "iou_threshold": 0.45}``).
    The file is written atomically; an existing one is replaced. Raises :class:`ResultsSchemaError` for a metric
    that is not a number or is out of range, ``FileNotFoundError`` for a missing ``model_path``.
    """
    import keras

    from defi1 import __version__
    from defi1.environment import accelerator_name, keras_backend
    from defi1.fingerprint import sha256_file

    model_file = model_sha256 = None
    if model_path is not None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: no such model file (the model the results were measured with)")
        model_sha256 = sha256_file(model_path)
        model_file = _relative_model_file(model_path, Path(results_dir))
    payload = {
        "schema_version": SCHEMA_VERSION,
        "part": part,
        "metrics": {name: (float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value)
                    for name, value in metrics.items()},
        "dataset": str(dataset),
        "model": str(model),
        "keras_version": keras.__version__,
        "backend": keras_backend(),
        "device": accelerator_name(),
        "smoke": bool(smoke),
        "timestamp": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds"),
        "defi1_version": __version__,
        "provenance": {
            "split": None if split is None else str(split),
            "dataset_fingerprint": dataset_fingerprint,
            "input_size": _input_size_value(input_size),
            "thresholds": None if thresholds is None else {str(name): float(value)
                                                           for name, value in thresholds.items()},
            "model_file": model_file,
            "model_sha256": model_sha256,
        },
    }
    if extra:
        payload["extra"] = extra
    source = f"results for {part}"
    validate_results(payload, source=source)
    problems = metric_range_problems(payload["metrics"])
    if problems:
        raise ResultsSchemaError(f"{source}: " + "; ".join(problems))
    return atomic_write_json(Path(results_dir) / f"{part}.json", payload)


def _relative_model_file(model_path: Path, results_dir: Path) -> str:
    """The model's path relative to the folder holding ``results/`` (the project a student submits), else its name."""
    project = os.path.abspath(results_dir.parent if str(results_dir.parent) else ".")
    model = os.path.abspath(model_path)
    if os.path.commonpath([project, model]) == project:
        return Path(os.path.relpath(model, project)).as_posix()
    return model_path.name


def _input_size_value(input_size):
    if input_size is None:
        return None
    if isinstance(input_size, numbers.Integral):
        return int(input_size)
    width, height = (int(value) for value in input_size)
    return width if width == height else [width, height]


def validate_results(payload, source="results") -> dict:
    """Check a decoded results dictionary against the schema (version 1 or 2); raise :class:`ResultsSchemaError`
    naming ``source``. Metric ranges are not checked here (see :func:`metric_range_problems`)."""
    if not isinstance(payload, dict):
        raise ResultsSchemaError(f"{source}: expected a JSON object, got {type(payload).__name__}")
    version = payload.get("schema_version")
    if "schema_version" in payload and (isinstance(version, bool) or version not in SUPPORTED_SCHEMA_VERSIONS):
        raise ResultsSchemaError(f"{source}: schema_version {version!r}, expected "
                                 + " or ".join(map(str, SUPPORTED_SCHEMA_VERSIONS)))
    required = REQUIRED_FIELDS_V1 if version == 1 else REQUIRED_FIELDS
    missing = [field for field in required if field not in payload]
    if missing:
        raise ResultsSchemaError(f"{source}: missing field(s) {', '.join(missing)}")
    if payload["part"] not in PARTS:
        raise ResultsSchemaError(f"{source}: part {payload['part']!r}, expected one of {', '.join(PARTS)}")
    metrics = payload["metrics"]
    if not isinstance(metrics, dict):
        raise ResultsSchemaError(f"{source}: metrics must be an object of name: number")
    for name, value in metrics.items():
        if not _is_number(value):
            raise ResultsSchemaError(f"{source}: metric {name!r} is {value!r}, expected a finite number")
    if not isinstance(payload["smoke"], bool):
        raise ResultsSchemaError(f"{source}: smoke must be true or false")
    try:
        _datetime.datetime.fromisoformat(str(payload["timestamp"]))
    except ValueError as error:
        raise ResultsSchemaError(f"{source}: timestamp {payload['timestamp']!r} is not ISO 8601") from error
    if version >= 2:
        _validate_provenance(payload["provenance"], source)
    return payload


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def _validate_provenance(provenance, source):
    if not isinstance(provenance, dict):
        raise ResultsSchemaError(f"{source}: provenance must be an object with {', '.join(PROVENANCE_FIELDS)}")
    missing = [field for field in PROVENANCE_FIELDS if field not in provenance]
    if missing:
        raise ResultsSchemaError(f"{source}: provenance lacks {', '.join(missing)}")
    for field in ("split", "dataset_fingerprint", "model_file"):
        if provenance[field] is not None and not isinstance(provenance[field], str):
            raise ResultsSchemaError(f"{source}: provenance.{field} must be text or null")
    sha = provenance["model_sha256"]
    if sha is not None and not (isinstance(sha, str) and _SHA256.match(sha)):
        raise ResultsSchemaError(f"{source}: provenance.model_sha256 {sha!r} is not a SHA-256 (64 hex digits)")
    size = provenance["input_size"]
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0) and not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ResultsSchemaError(f"{source}: provenance.input_size {size!r}, expected a side or [width, height]")
    thresholds = provenance["thresholds"]
    if thresholds is not None and not (isinstance(thresholds, dict)
                                       and all(_is_number(value) for value in thresholds.values())):
        raise ResultsSchemaError(f"{source}: provenance.thresholds must map names to numbers")


def metric_range(name: str):
    """``(low, high, low_inclusive)`` for a metric name, or ``None`` when its range is not known.

    The name's last dotted component decides (``small_cnn.test_accuracy`` is an accuracy): accuracies, ``map*``,
    precision and recall in ``[0, 1]``; ``fps*`` above 0; latencies (``latency*``, ``*_ms*``) at or above 0.
    """
    base = name.rsplit(".", 1)[-1].lower()
    if base.endswith("accuracy") or base.startswith("map") or base in ("precision", "recall"):
        return 0.0, 1.0, True
    if base.startswith("fps"):
        return 0.0, math.inf, False
    if base.startswith("latency") or "_ms" in base:
        return 0.0, math.inf, True
    return None


def metric_range_problems(metrics: dict) -> list[str]:
    """One message per numeric metric outside its range (:func:`metric_range`), e.g.
    ``"metric 'test_accuracy' is 91, expected a value in [0, 1]"``."""
    problems = []
    for name, value in metrics.items():
        bounds = metric_range(name)
        if bounds is None or not _is_number(value):
            continue
        low, high, low_inclusive = bounds
        if value > high or value < low or (value == low and not low_inclusive):
            expected = f"in [{low:g}, {high:g}]" if math.isfinite(high) else (
                f"at or above {low:g}" if low_inclusive else f"above {low:g}")
            problems.append(f"metric {name!r} is {value:g}, expected a value {expected}")
    return problems


def load_results(path) -> dict:
    """Read and validate one results file (a UTF-8 byte-order mark is accepted)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ResultsSchemaError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from error
    return validate_results(payload, source=str(path))
