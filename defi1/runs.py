"""Run folders of ``model.fit`` trainings, shared by classification and detection: checkpoints, run state, history.

A run folder holds::

    best.keras     the model with the best monitored value so far
    last.keras     the model after the last complete epoch (with its optimizer state: what resuming loads)
    state.json     epochs completed, monitored metric, best value and epoch, learning rate, plus the caller's fields
    <history>.csv  one row per epoch (Keras ``CSVLogger``), read back by :func:`read_csv_history`

Every file is written atomically (:mod:`defi1.files`), so an interruption never leaves half a file: after Ctrl-C
the run folder describes the last complete epoch.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import keras

from defi1.errors import DataError
from defi1.files import atomic_save_model, atomic_write_json

BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
STATE_FILE = "state.json"


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
    """After each complete epoch: ``last.keras``, ``best.keras`` when ``monitor`` improved, and ``state.json``.

    An epoch whose training loss is NaN or infinite writes nothing (the files stay those of the last good epoch).

    Args:
        run_dir: the run folder.
        monitor: the logged quantity that chooses the best model (``"val_loss"``, ``"val_accuracy"`` ...); an epoch
            without it raises ``KeyError`` (validation data is needed to choose the best model).
        mode: ``"min"`` (losses) or ``"max"`` (accuracies).
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
        atomic_save_model(self.model, self.run_dir / LAST_MODEL)
        if self._improved(value):
            self.best_value, self.best_epoch = value, epoch + 1
            atomic_save_model(self.model, self.run_dir / BEST_MODEL)
        self.last_epoch_saved = epoch
        write_run_state(self.run_dir, {
            "epochs_completed": epoch + 1, "monitor": self.monitor, "mode": self.mode, "best_value": self.best_value,
            "best_epoch": self.best_epoch, "learning_rate": learning_rate_of(self.model), **self.state})
