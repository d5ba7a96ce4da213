"""File-system helpers: checked output folders, atomic writes (the one write-to-temporary-then-rename), class-name
files and ``.keras`` model files.

Nothing is ever half written: every writer of defi1 goes through :class:`AtomicOutput`, which gives it a hidden
temporary name beside the target (``.<stem>.tmp<pid>-<random><suffix>``: same folder, so the rename is atomic, and
the same suffix, so that Keras, Pillow or OpenCV choose the right format), then renames it over the target once it
is complete, or removes it if the writer failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
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


@contextlib.contextmanager
def output_dir_for(path):
    """:func:`ensure_output_dir` for a block of work that fills the folder (a training run): when the block raises
    and leaves the folder empty, the folders made for it are removed again, so a failed run leaves no empty output
    folder behind. An existing folder is never removed. Yields the folder."""
    path = Path(path)
    made = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    folder = ensure_output_dir(path)
    try:
        yield folder
    except BaseException:
        for created in made:
            try:
                created.rmdir()  # only when empty
            except OSError:
                break
        raise


#: The name :class:`AtomicOutput` gives its temporary file: ``.<stem>.tmp<pid>-<8 hex digits><suffix>``.
_TEMPORARY_NAME = re.compile(r"\.(?:.*)\.tmp(\d+)-[0-9a-f]{8}(?:\..*)?")


class AtomicOutput:
    """A temporary path beside ``path`` that becomes ``path`` in one rename.

    Use it as a context manager (``with AtomicOutput(path) as temporary: write(temporary)``: renamed on a normal exit,
    removed on an exception) or call :meth:`commit` / :meth:`discard` yourself (writers that stay open, such as a
    video recording). The target may be a file or a folder; an existing folder is replaced only once the new one is
    complete. The parent folder is created.

    Attributes:
        path: the final path. temporary: where to write meanwhile (same folder, same suffix, hidden name).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}"
                                             f"{self.path.suffix}")

    def commit(self) -> Path:
        """Move the temporary file (or folder) into place; returns :attr:`path`."""
        if self.temporary.is_dir() and self.path.is_dir():
            previous = self.path.with_name(f"{self.temporary.name}.previous")
            os.replace(self.path, previous)
            os.replace(self.temporary, self.path)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(self.temporary, self.path)
        return self.path

    def discard(self) -> None:
        """Remove whatever was written to the temporary path."""
        if self.temporary.is_dir():
            shutil.rmtree(self.temporary, ignore_errors=True)
        elif self.temporary.exists():
            self.temporary.unlink()

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(self, error_type, error, traceback):
        if error_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename: never half a file."""
    with AtomicOutput(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """Atomic text write (UTF-8); see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, payload) -> Path:
    """Atomic JSON write, indented, keys in insertion order."""
    return atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def atomic_copy(source, path) -> Path:
    """Copy the file ``source`` to ``path`` atomically (the previous ``path`` stays whole until the copy is)."""
    with AtomicOutput(path) as temporary:
        shutil.copyfile(source, temporary)
    return Path(path)


def atomic_save_model(model, path, *, include_optimizer=True) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically: the previous file stays intact until the new one is whole.

    ``include_optimizer=False`` writes the architecture and the weights only (no compile settings, no optimizer
    state such as Adam's two moments and the weights' moving average: about a quarter of the size of a checkpoint
    that can resume training). The model is saved through a second, uncompiled model sharing its layers
    (:func:`weights_only_view`), so nothing is copied and the model being trained is left as it was."""
    with AtomicOutput(path) as temporary:
        (model if include_optimizer else weights_only_view(model)).save(temporary)
    return Path(path)


def weights_only_view(model):
    """An uncompiled Keras model with the same layers (shared, not copied) and the same config as ``model``: what
    :func:`atomic_save_model` writes without the optimizer. A model never compiled is returned as it is."""
    import keras

    if getattr(model, "optimizer", None) is None:
        return model
    if isinstance(model, keras.Sequential):
        return keras.Sequential([keras.Input(batch_shape=model.input_shape, dtype=model.inputs[0].dtype),
                                 *model.layers], name=model.name)
    return keras.Model(inputs=model.inputs, outputs=model.outputs, name=model.name)


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files that an interrupted :class:`AtomicOutput` left in ``folder`` (a process killed while
    writing: ``.last.tmp<pid>-<random>.keras``); those of a process still running are kept. Returns the paths
    removed."""
    removed = []
    for path in sorted(Path(folder).glob(".*.tmp*-*")):
        match = _TEMPORARY_NAME.fullmatch(path.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def load_keras_model(path, *, compile=False):
    """Load a ``.keras`` model with ``safe_mode=True`` (defi1's layers and losses registered).

    ``compile=True`` restores the optimizer state too (to resume training). Raises ``FileNotFoundError`` when the
    file is missing and ``ValueError`` naming it when it is not a loadable ``.keras`` file.
    """
    import keras

    from defi1.keras_runtime import register_keras_objects

    register_keras_objects()  # defi1's layers and losses, known to Keras before it reads the file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (expected a .keras file)")
    if path.suffix.lower() != ".keras":
        raise ValueError(f"{path}: expected a Keras model file ending in .keras (convert darknet weights with "
                         "`defi1 detect convert-darknet`)")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: cannot load this Keras model ({error.__class__.__name__}: {error})") from error


def read_names_file(path) -> list[str]:
    """Class names of a text file, one a line (darknet's ``.names``, labelImg's ``classes.txt``); blank lines and
    surrounding spaces are ignored. Raises ``FileNotFoundError`` naming a missing file and
    :class:`defi1.errors.DataError` for a file without any name."""
    from defi1.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such class names file (expected one name a line)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: no class names (expected one name a line)")
    return names


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
