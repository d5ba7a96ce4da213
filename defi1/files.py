"""File-system helpers: atomic writes and checked output folders."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def ensure_output_dir(path) -> Path:
    """Create ``path`` (and parents) and check that it can be written; raise ``PermissionError`` naming it if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PermissionError(f"{path}: cannot create the output folder ({error.strerror or error})") from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: the output folder is not writable")
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """Atomic text write (UTF-8); see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, payload) -> Path:
    """Atomic JSON write, indented, keys in insertion order."""
    return atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def atomic_save_model(model, path) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically: the previous file stays intact until the new one is whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
