"""Training classifiers with ``model.fit``, validation data and callbacks, resumable and safe to interrupt.

A run folder holds::

    best.keras     the model with the best validation score so far (written atomically: always loadable)
    last.keras     the model at the end of the last completed epoch, with its optimizer state (for --resume)
    state.json     epochs completed, best score, monitored metric, learning rate, whether training finished
    history.csv    one row per epoch (Keras CSVLogger; appended to on resume)

Ctrl-C (``KeyboardInterrupt``) stops training; ``best.keras`` and ``last.keras`` are those of the last completed
epoch, and ``resume=True`` continues at the next epoch. Transfer learning runs in two phases
(:func:`train_transfer_classifier`): ``head/`` (frozen backbone) then ``fine_tune/`` (top layers unfrozen, low
learning rate, BatchNormalization kept frozen).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from defi1.errors import DataError
from defi1.files import ensure_output_dir, load_keras_model
from defi1.runs import (BEST_MODEL, LAST_MODEL, STATE_FILE, RunCheckpoint, read_csv_history, read_run_state,
                         write_run_state)

BEST_NAME = BEST_MODEL
LAST_NAME = LAST_MODEL
STATE_NAME = STATE_FILE
HISTORY_NAME = "history.csv"


@dataclass
class TrainingResult:
    """What a run produced. ``history`` maps a metric (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``learning_rate``) to one value per epoch, resumed epochs included."""

    model: keras.Model
    run_dir: Path
    history: dict = field(default_factory=dict)
    epochs_completed: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    finished: bool = False

    @property
    def best_path(self) -> Path:
        return self.run_dir / BEST_NAME

    @property
    def last_path(self) -> Path:
        return self.run_dir / LAST_NAME

    def best_model(self) -> keras.Model:
        """The best-by-validation model, loaded from ``best.keras`` (``safe_mode=True``)."""
        return load_keras_model(self.best_path)


def write_state(run_dir, **state) -> Path:
    """Write ``state.json`` of a run folder atomically (:func:`defi1.runs.write_run_state`)."""
    return write_run_state(run_dir, state)


def read_state(run_dir) -> dict | None:
    """The ``state.json`` of a run folder, or ``None`` when there is none (:func:`defi1.runs.read_run_state`)."""
    return read_run_state(run_dir)


def read_history(path) -> dict:
    """Per-epoch metrics from a CSVLogger file: ``{metric: [value per epoch]}`` (the ``epoch`` column left out)."""
    return {key: values for key, values in read_csv_history(path).items() if key != "epoch"}


def data_num_classes(data) -> int | None:
    """The number of classes the labels of ``data`` imply (largest label + 1); ``data`` is ``(x, y)`` or a dataset
    with a ``labels`` attribute. ``None`` when unknown."""
    labels = data[1] if isinstance(data, tuple) else getattr(data, "labels", None)
    if labels is None or len(labels) == 0:
        return None
    return int(np.max(labels)) + 1


def check_model_matches_data(model, data, *, num_classes=None, source="data") -> None:
    """Raise :class:`DataError` when the model's number of outputs does not fit the data's classes or image size."""
    outputs = int(model.outputs[0].shape[-1])
    if num_classes is not None and num_classes != outputs:
        raise DataError(f"model {model.name!r} predicts {outputs} classes but {source} has {num_classes} classes "
                        f"(rebuild the model for {num_classes} classes or use data with the model's classes)")
    needed = data_num_classes(data)
    if needed is not None and needed > outputs:
        raise DataError(f"model {model.name!r} predicts {outputs} classes but {source} has labels up to "
                        f"{needed - 1} (at least {needed} classes; rebuild the model for the data's classes)")
    image_size = getattr(data, "image_size", None)
    expected = tuple(model.inputs[0].shape[1:3])
    if image_size is not None and None not in expected and tuple(image_size) != expected:
        raise DataError(f"model {model.name!r} takes {expected[0]}×{expected[1]} images but {source} yields "
                        f"{image_size[0]}×{image_size[1]}")


def compile_classifier(model, *, learning_rate=1e-3) -> keras.Model:
    """Compile with Adam, sparse categorical cross-entropy (integer labels) and accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_classifier(model, train_data, val_data, *, run_dir, epochs, learning_rate=1e-3, batch_size=32,
                     monitor="val_accuracy", early_stopping_patience=10, reduce_lr_patience=4, resume=False,
                     compile_model=True, callbacks=(), verbose=1, num_classes=None) -> TrainingResult:
    """Train ``model`` with ``model.fit`` on ``train_data``, validating on ``val_data``, for ``epochs`` epochs in all.

    ``train_data`` / ``val_data``: ``(images, labels)`` arrays (``images`` as the model expects, ``labels`` integer
    classes ``(num_images,)``) or ``keras.utils.PyDataset`` objects such as
    :class:`defi1.classification.generator.ImagePathDataset`. ``batch_size`` applies to arrays only.

    Callbacks: :class:`RunCheckpoint` (best and last models, atomic), ``EarlyStopping`` on ``monitor``,
    ``ReduceLROnPlateau`` (halves the learning rate), ``CSVLogger``, ``TerminateOnNaN``, then ``callbacks``.
    With ``resume=True`` and a ``last.keras`` in ``run_dir``, training continues from it (weights and optimizer
    state) at the next epoch; ``model`` is then only used when there is nothing to resume. Without ``resume`` a
    ``run_dir`` holding a previous run is refused (nothing is overwritten).
    """
    run_dir = ensure_output_dir(run_dir)
    mode = "min" if "loss" in monitor else "max"
    state = read_state(run_dir) if resume else None
    if not resume and ((run_dir / LAST_NAME).exists() or (run_dir / STATE_NAME).exists()):
        raise FileExistsError(f"{run_dir}: holds a previous run (last.keras / state.json); use resume to continue "
                              f"it or choose another folder")
    initial_epoch, best_value, best_epoch = 0, None, None
    if state is not None and (run_dir / LAST_NAME).is_file():
        model = load_keras_model(run_dir / LAST_NAME, compile=True)
        initial_epoch = int(state["epochs_completed"])
        best_value, best_epoch = state.get("best_value"), state.get("best_epoch")
        if initial_epoch >= epochs or (state.get("finished") and state.get("epochs_target") == epochs):
            print(f"{run_dir}: training already finished ({initial_epoch} epochs); nothing to resume",
                  file=sys.stderr)
            write_state(run_dir, **{**state, "finished": True})
            return TrainingResult(model=model, run_dir=run_dir, history=read_history(run_dir / HISTORY_NAME),
                                  epochs_completed=initial_epoch, best_value=best_value, best_epoch=best_epoch,
                                  finished=True)
        print(f"{run_dir}: resuming at epoch {initial_epoch + 1} of {epochs} (best {monitor} so far "
              f"{best_value})", file=sys.stderr)
    elif compile_model or model.optimizer is None:
        compile_classifier(model, learning_rate=learning_rate)
    check_model_matches_data(model, train_data, num_classes=num_classes, source="the training data")
    check_model_matches_data(model, val_data, source="the validation data")

    checkpoint = RunCheckpoint(run_dir, monitor=monitor, mode=mode, best_value=best_value, best_epoch=best_epoch,
                               state={"finished": False})
    all_callbacks = [
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_NAME), append=initial_epoch > 0),
        checkpoint,
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=early_stopping_patience),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=reduce_lr_patience,
                                          min_lr=1e-7, verbose=0),
        keras.callbacks.TerminateOnNaN(),
        *callbacks,
    ]
    fit_options = {}
    if isinstance(train_data, tuple):
        x, y = train_data
        fit_options.update(x=x, y=y, batch_size=batch_size, shuffle=True)
    else:
        fit_options.update(x=train_data)
    validation = val_data if not isinstance(val_data, tuple) else (val_data[0], val_data[1])
    try:
        model.fit(**fit_options, validation_data=validation, epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=all_callbacks, verbose=verbose)
    except KeyboardInterrupt:
        state = read_state(run_dir)
        done = state["epochs_completed"] if state else 0
        print(f"\ninterrupted: {done} epoch(s) completed; best model in {run_dir / BEST_NAME}; continue with "
              f"resume (--resume)", file=sys.stderr)
        raise
    state = read_state(run_dir) or {}
    state.update(finished=True, epochs_target=epochs)
    write_state(run_dir, **state)
    return TrainingResult(model=model, run_dir=run_dir, history=read_history(run_dir / HISTORY_NAME),
                          epochs_completed=int(state.get("epochs_completed", initial_epoch)),
                          best_value=checkpoint.best_value, best_epoch=checkpoint.best_epoch, finished=True)


def train_transfer_classifier(model, train_data, val_data, *, run_dir, head_epochs, fine_tune_epochs,
                              fine_tune_layers=20, head_learning_rate=1e-3, fine_tune_learning_rate=1e-5,
                              resume=False, verbose=1, **options) -> dict:
    """Two-phase transfer learning for a model from :func:`defi1.classification.models.build_transfer_classifier`.

    Phase 1 (``run_dir/head``): backbone frozen, the new head trains for ``head_epochs`` at ``head_learning_rate``.
    Phase 2 (``run_dir/fine_tune``): from phase 1's best model, the top ``fine_tune_layers`` backbone layers are
    unfrozen (BatchNormalization stays frozen) and training continues for ``fine_tune_epochs`` at
    ``fine_tune_learning_rate``. ``resume`` continues whichever phase was interrupted. Other ``options`` go to
    :func:`train_classifier`. Returns ``{"head": TrainingResult, "fine_tune": TrainingResult or None,
    "best_path": path of the better of the two by validation}``.
    """
    from defi1.classification.models import freeze_backbone, set_fine_tuning

    run_dir = ensure_output_dir(run_dir)
    head_dir, fine_dir = run_dir / "head", run_dir / "fine_tune"
    fine_state = read_state(fine_dir) if resume else None
    head_state = read_state(head_dir) if resume else None
    if fine_state is None:
        if head_state is None or not head_state.get("finished"):
            freeze_backbone(model)
            head = train_classifier(model, train_data, val_data, run_dir=head_dir, epochs=head_epochs,
                                    learning_rate=head_learning_rate, resume=resume, verbose=verbose, **options)
        else:
            head = TrainingResult(model=None, run_dir=head_dir, history=read_history(head_dir / HISTORY_NAME),
                                  epochs_completed=head_state["epochs_completed"],
                                  best_value=head_state.get("best_value"), best_epoch=head_state.get("best_epoch"),
                                  finished=True)
    else:
        head = TrainingResult(model=None, run_dir=head_dir, history=read_history(head_dir / HISTORY_NAME),
                              epochs_completed=head_state["epochs_completed"] if head_state else 0,
                              best_value=head_state.get("best_value") if head_state else None,
                              best_epoch=head_state.get("best_epoch") if head_state else None, finished=True)
    if fine_tune_epochs <= 0:
        return {"head": head, "fine_tune": None, "best_path": head.best_path}
    fine_model = load_keras_model(head.best_path)
    set_fine_tuning(fine_model, num_layers=fine_tune_layers)
    compile_classifier(fine_model, learning_rate=fine_tune_learning_rate)
    fine = train_classifier(fine_model, train_data, val_data, run_dir=fine_dir, epochs=fine_tune_epochs,
                            learning_rate=fine_tune_learning_rate, resume=resume, compile_model=False,
                            verbose=verbose, **options)
    better = fine if (head.best_value is None or (fine.best_value is not None
                                                  and fine.best_value >= head.best_value)) else head
    return {"head": head, "fine_tune": fine, "best_path": better.best_path}
