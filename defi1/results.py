"""Results files for grading: every notebook and ``defi1 demo`` ends by calling :func:`record_results`.

Schema (version 1) of ``results/<part>.json``::

    {
      "schema_version": 1,
      "part": "classification" | "localisation" | "realtime",
      "metrics": {"<name>": number, ...},   # e.g. test_accuracy, map50, map50_95, fps_end_to_end
      "dataset": "digits",                  # what the metrics were measured on
      "model": "small_cnn",                 # which model produced them
      "keras_version": "3.15.1",
      "backend": "tensorflow",
      "device": "CPU (2 cores, x86_64)",
      "smoke": false,                       # true when produced with the small CI settings
      "timestamp": "2026-11-27T10:00:00+00:00",
      "extra": {...}                        # optional, free-form
    }

Expected metrics per part (others may be added): classification: ``train_accuracy``, ``val_accuracy``,
``test_accuracy``; localisation: ``map50``, ``map50_95``; realtime: ``fps_end_to_end``, ``fps_model``.
"""

from __future__ import annotations

import datetime as _datetime
import json
import math
import numbers
from pathlib import Path

from defi1.files import atomic_write_json

SCHEMA_VERSION = 1
PARTS = ("classification", "localisation", "realtime")
EXPECTED_METRICS = {
    "classification": ("test_accuracy",),
    "localisation": ("map50", "map50_95"),
    "realtime": ("fps_end_to_end",),
}
REQUIRED_FIELDS = ("schema_version", "part", "metrics", "dataset", "model", "keras_version", "backend", "device",
                   "smoke", "timestamp")


class ResultsSchemaError(ValueError):
    """A results file does not follow the schema; the message names the file and the problem."""


def record_results(part: str, metrics: dict, *, dataset: str, model: str, smoke: bool = False,
                   results_dir="results", extra: dict | None = None) -> Path:
    """Write ``<results_dir>/<part>.json`` following the schema above and return its path.

    ``metrics`` maps names to finite numbers. The file is written atomically; an existing one is replaced.
    """
    import keras

    from defi1.environment import accelerator_name, keras_backend

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
    }
    if extra:
        payload["extra"] = extra
    validate_results(payload, source=f"results for {part}")
    return atomic_write_json(Path(results_dir) / f"{part}.json", payload)


def validate_results(payload, source="results") -> dict:
    """Check a decoded results dictionary against the schema; raise :class:`ResultsSchemaError` naming ``source``."""
    if not isinstance(payload, dict):
        raise ResultsSchemaError(f"{source}: expected a JSON object, got {type(payload).__name__}")
    missing = [field for field in REQUIRED_FIELDS if field not in payload]
    if missing:
        raise ResultsSchemaError(f"{source}: missing field(s) {', '.join(missing)}")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise ResultsSchemaError(f"{source}: schema_version {payload['schema_version']!r}, expected {SCHEMA_VERSION}")
    if payload["part"] not in PARTS:
        raise ResultsSchemaError(f"{source}: part {payload['part']!r}, expected one of {', '.join(PARTS)}")
    metrics = payload["metrics"]
    if not isinstance(metrics, dict):
        raise ResultsSchemaError(f"{source}: metrics must be an object of name: number")
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ResultsSchemaError(f"{source}: metric {name!r} is {value!r}, expected a finite number")
    if not isinstance(payload["smoke"], bool):
        raise ResultsSchemaError(f"{source}: smoke must be true or false")
    try:
        _datetime.datetime.fromisoformat(str(payload["timestamp"]))
    except ValueError as error:
        raise ResultsSchemaError(f"{source}: timestamp {payload['timestamp']!r} is not ISO 8601") from error
    return payload


def load_results(path) -> dict:
    """Read and validate one results file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ResultsSchemaError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from error
    return validate_results(payload, source=str(path))
