"""Run folders of ``model.fit`` trainings, shared by classification and detection: checkpoints, run state, history.

A run folder holds::

    best.keras     the model with the best monitored value so far: architecture and weights only (no optimizer state,
                   so its size is that of the weights)
    last.keras     the model after the last complete epoch with its optimizer state: what resuming loads
    state.json     epochs completed, monitored metric, best value and epoch, learning rate, plus the caller's fields
    <history>.csv  one row per epoch (Keras ``CSVLogger``), read back by :func:`read_csv_history`

Every file is written atomically (:mod:`defi1.files`), so an interruption never leaves half a file: after Ctrl-C
the run folder describes the last complete epoch. A write that fails (disk full) raises :class:`CheckpointWriteError`,
the files of the last good epoch untouched.

A new run never replaces an old one: :func:`new_run_dir` gives ``runs/detect/train2``, ``train3`` ... when
``runs/detect/train`` already holds a run.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import re
from pathlib import Path

import keras

from defi1.errors import DataError, Defi1Error
from defi1.files import atomic_save_model, atomic_write_json

BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
STATE_FILE = "state.json"


class CheckpointWriteError(Defi1Error, OSError):
    """A checkpoint could not be written (disk full, folder removed); the message says which file, why, and which
    checkpoint is still intact."""


def new_run_dir(path, *, exist_ok=False) -> Path:
    """The folder for a new run asked to write to ``path`` (not created here): ``path`` itself when it does not exist
    or is empty, or when ``exist_ok``; otherwise the first of ``path2``, ``path3`` ... that does not exist or is
    empty, so that an earlier run is never overwritten (``runs/detect/train`` -> ``runs/detect/train2``)."""
    path = Path(path)
    if exist_ok or _free(path):
        return path
    numbered = re.fullmatch(r"(.*\D)(\d+)", path.name)  # train2 taken: train3, not train22
    stem, number = (numbered.group(1), int(numbered.group(2)) + 1) if numbered else (path.name, 2)
    while not _free(path.with_name(f"{stem}{number}")):
        number += 1
    return path.with_name(f"{stem}{number}")


def _free(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def write_run_state(run_dir, state: dict) -> Path:
    """Write ``state.json`` of a run folder atomically."""
    return atomic_write_json(Path(run_dir) / STATE_FILE, state)


def read_run_state(run_dir) -> dict | None:
    """The ``state.json`` of a run folder, or ``None`` when there is none. Raises :class:`DataError` naming the file
    and line when it is not valid JSON."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg}); delete it to restart") from error


def read_csv_history(path) -> dict:
    """A ``CSVLogger`` file as ``{column: [value per epoch]}``, every column (``epoch`` included) as floats; a cell
    that is empty or not a number is ``nan``, so every column stays aligned with the epochs. ``{}`` when the file
    does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    columns: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = float("nan")
                columns.setdefault(key, []).append(number)
    return columns


def learning_rate_of(model) -> float | None:
    """The current learning rate of a compiled model's optimizer (``None`` when it has none)."""
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


class RunCheckpoint(keras.callbacks.Callback):
    """After each complete epoch: ``best.keras`` (weights only) when ``monitor`` improved, ``last.keras`` (with the
    optimizer state) and ``state.json``.

    An epoch whose training loss is NaN or infinite writes nothing (the files stay those of the last good epoch).

    Args:
        run_dir: the run folder.
        monitor: the logged quantity that chooses the best model (``"val_loss"``, ``"val_accuracy"`` ...); an epoch
            without it raises ``KeyError`` (validation data is needed to choose the best model).
        mode: ``"min"`` (losses) or ``"max"`` (accuracies, mAP).
        best_value, best_epoch: the best so far (when resuming a run).
        state: more fields for ``state.json`` (e.g. ``{"stage": 2}``); the caller may change them between epochs.

    Attributes:
        best_value, best_epoch (1-based): the best epoch so far. last_epoch_saved: the 0-based index of the last
        epoch written, or ``None``.
    """

    def __init__(self, run_dir, *, monitor="val_loss", mode="min", best_value=None, best_epoch=None, state=None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}: expected 'max' or 'min'")
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.mode = mode
        self.best_value = best_value
        self.best_epoch = best_epoch
        self.state = dict(state or {})
        self.last_epoch_saved = None

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        if self.monitor not in logs:
            raise KeyError(f"metric {self.monitor!r} not in the training logs ({', '.join(logs)}); "
                           f"validation data is needed to choose the best model")
        value = float(logs[self.monitor])
        improved = self._improved(value)
        if improved:  # best first: if it cannot be written, last.keras and state.json still agree
            self._write(epoch, BEST_MODEL, lambda path: atomic_save_model(self.model, path, include_optimizer=False))
            self.best_value, self.best_epoch = value, epoch + 1
        self._write(epoch, LAST_MODEL, lambda path: atomic_save_model(self.model, path))
        self.last_epoch_saved = epoch
        self._write(epoch, STATE_FILE, lambda path: write_run_state(self.run_dir, {
            "epochs_completed": epoch + 1, "monitor": self.monitor, "mode": self.mode, "best_value": self.best_value,
            "best_epoch": self.best_epoch, "learning_rate": learning_rate_of(self.model), **self.state}))

    def _write(self, epoch, name, writer):
        """``writer(path)`` for the file ``name`` of the run folder; an ``OSError`` becomes a
        :class:`CheckpointWriteError` that says what happened and which checkpoint is intact."""
        path = self.run_dir / name
        try:
            writer(path)
        except OSError as error:
            reason = "disk full" if error.errno == errno.ENOSPC else "write failed"
            done = f" (epoch {self.last_epoch_saved + 1})" if self.last_epoch_saved is not None else ""
            intact = (f"the last good checkpoint {self.run_dir / LAST_MODEL}{done} is intact; free some space and "
                      "continue with --resume" if (self.run_dir / LAST_MODEL).is_file()
                      else "no earlier checkpoint of this run exists")
            raise CheckpointWriteError(f"{path}: cannot write the checkpoint of epoch {epoch + 1}, {reason} "
                                       f"({error.strerror or error}); {intact}") from error
