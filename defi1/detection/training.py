"""Training a YOLOv3 detector on a YOLO-format dataset: the course's two stages in one call (:func:`train_detector`).

Stage 1 (``freeze_epochs`` epochs, ``learning_rate``): the backbone (:func:`defi1.yolo.model.backbone_layer_names`)
is frozen, its BatchNormalization layers included (a non-trainable Keras 3 BatchNormalization runs in inference mode:
its moving statistics stay those of the pretrained weights). Stage 2 (up to ``epochs`` in total,
``fine_tune_learning_rate``): every layer is trained. Training from scratch (no pretrained weights) has no reason to
freeze anything: ``freeze_epochs`` then defaults to 0 and the single stage uses ``learning_rate``.

The settings are in :mod:`defi1.detection.training_settings`, the model and its initial weights in
:mod:`defi1.detection.training_model`, the callbacks in :mod:`defi1.detection.training_callbacks`; this module is the
loop. Everything a run writes goes to its run folder (:mod:`defi1.runs`): ``out_dir``, or ``out_dir2``,
``out_dir3`` ... when ``out_dir`` already holds a run (``exist_ok`` reuses it, ``resume`` continues it)::

    best.keras          # architecture + weights of the best epoch (validation map50-95 by default, --best-metric)
    last.keras          # the model after the last complete epoch with its optimizer state, for --resume
    state.json          # epochs completed, best value, learning rate, the settings: where --resume starts
    training_log.csv    # one line per epoch: losses, val_map50, val_map50_95, val_precision, val_recall, lr
    loss_curves.png     # losses per epoch (with the stage boundary) beside the validation mAP

Every epoch ends with the validation split's mAP (:class:`~defi1.detection.training_callbacks.ValidationMap`,
``validation_map=False`` to skip it). Its cost, tiny-YOLOv3 at 160 px, 40 validation images, 2 CPU cores: 2 to 4 s
an epoch, 15 % of a 240-image epoch (an untrained model is the worst case: NMS of its many low-confidence boxes is
half of it, the network a third, the mAP itself 5 %; ``benchmarks/bench_validation_map.py``, RESULTS.md). Precision
and recall are logged at the confidence of the best F1.

A NaN or infinite loss stops training at once with :class:`TrainingDivergedError`; the checkpoints of the last good
epoch are kept untouched. A checkpoint that cannot be written (disk full) stops it with
:class:`defi1.runs.CheckpointWriteError`, the last good checkpoint intact. A run that fails before its first
checkpoint leaves no empty run folder behind; temporary files of an interrupted earlier write are removed when a run
starts in the folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import keras

from defi1.detection.training_callbacks import CosineLearningRate, NanGuard, TimeLimit, ValidationMap
from defi1.detection.training_model import build_model, set_backbone_trainable, set_batchnorm_momentum
from defi1.detection.training_settings import FROM_SCRATCH_RECIPE, TrainingSettings
from defi1.errors import ConfigError, Defi1Error
from defi1.files import load_keras_model, output_dir_for, remove_stale_temporaries
from defi1.runs import (BEST_MODEL, LAST_MODEL, STATE_FILE, RunCheckpoint, new_run_dir, read_csv_history,
                        read_run_state)

__all__ = ["BEST_MODEL", "CURVES_FILE", "FROM_SCRATCH_RECIPE", "LAST_MODEL", "LOG_FILE", "STATE_FILE",
           "TrainingDivergedError", "TrainingResult", "TrainingSettings", "device_count", "distribution_scope",
           "train_detector"]

LOG_FILE = "training_log.csv"
CURVES_FILE = "loss_curves.png"


class TrainingDivergedError(Defi1Error):
    """The loss became NaN or infinite; the message names the epoch, batch and last good checkpoint."""


@dataclass
class TrainingResult:
    """What :func:`train_detector` produced. ``history`` maps each logged quantity to its per-epoch values (the whole
    run, resumed parts included, read back from the CSV log). ``out_dir`` is the run folder written (``train2`` when
    ``train`` held a run). ``best_metric`` is the logged quantity ``best.keras`` was chosen on, ``best_epoch``
    (1-based) the epoch it holds, ``best_metrics`` that epoch's validation ``map50``, ``map50-95``, ``precision``,
    ``recall`` (at the best-F1 confidence) and ``val_loss``; ``best_validation_loss`` its validation loss.
    ``validation_map_seconds``: the mean cost of the validation mAP per epoch."""

    out_dir: Path
    best_model_path: Path
    last_model_path: Path
    log_path: Path
    curves_path: Path | None
    epochs_completed: int
    best_validation_loss: float | None
    history: dict = field(default_factory=dict)
    stopped_early: bool = False
    best_metric: str = "val_loss"
    best_epoch: int | None = None
    best_metrics: dict = field(default_factory=dict)
    validation_map_seconds: float | None = None

    def summary(self) -> str:
        """What the run reached, one line: the best epoch and its validation mAP, precision and recall."""
        if self.best_epoch is None:
            return f"{self.epochs_completed} epoch(s) completed, no best epoch"
        shown = ", ".join(f"{key} {value:.4g}" for key, value in self.best_metrics.items())
        return f"best epoch {self.best_epoch} of {self.epochs_completed} (chosen on {self.best_metric}): {shown}"


# --------------------------------------------------------------------------------------------------------------------
# Devices


@contextlib.contextmanager
def _precision_policy(mixed_precision):
    if not mixed_precision:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution_scope(distribute: bool):
    """Data-parallel training on all visible devices with the backend's own engine: ``tf.distribute.
    MirroredStrategy`` under TensorFlow, ``keras.distribution.DataParallel`` under JAX. Build, compile and fit the
    model inside the scope. Without ``distribute``, a no-op."""
    if not distribute:
        yield None
        return
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            yield strategy
    elif backend == "jax":
        previous = keras.distribution.distribution()
        distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        keras.distribution.set_distribution(distribution)
        try:
            yield distribution
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise ConfigError(f"--distribute is supported with the tensorflow and jax backends, not {backend}")


def device_count(distribute: bool) -> int:
    """How many devices share each batch."""
    if not distribute:
        return 1
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    return len(keras.distribution.list_devices())


# --------------------------------------------------------------------------------------------------------------------
# The loop


def _resume_state(out_dir, settings):
    """``state.json`` of a run to resume; ``FileNotFoundError`` when ``out_dir`` holds no resumable run,
    ``ConfigError`` naming what differs when the run was made with other data, model or input size."""
    state = read_run_state(out_dir)
    if state is None or not (Path(out_dir) / LAST_MODEL).is_file():
        raise FileNotFoundError(f"{out_dir}: nothing to resume (expected {STATE_FILE} and {LAST_MODEL} from an "
                                "earlier run with the same --out)")
    recorded = state.get("settings") or {}
    differences = [f"{flag} {getattr(settings, key)} (the run: {recorded[key]})"
                   for key, flag in RESUME_MUST_MATCH.items()
                   if key in recorded and _comparable(key, recorded[key]) != _comparable(key, getattr(settings, key))]
    if differences:
        raise ConfigError(f"{out_dir}: cannot resume with " + ", ".join(differences) + "; resume with the run's own "
                          "values, or start a new run without --resume")
    return state


#: The settings a resumed run must share with the run it continues, and their flags.
RESUME_MUST_MATCH = {"data": "--data", "model": "--model", "input_size": "--input-size"}


def _comparable(key, value):
    """Paths compared resolved (``data.yaml`` and ``./data.yaml`` are the same file), numbers as numbers."""
    if key == "input_size":
        return int(value)
    text = str(value)
    return str(Path(text).resolve()) if (key == "data" or text.endswith((".keras", ".cfg"))) else text


def _jit_compile(settings):
    if settings.jit_compile != "auto":
        return settings.jit_compile
    from defi1.environment import accelerator_name

    return False if accelerator_name().startswith("CPU") else "auto"


def _datasets(settings, model, dataset, initial_epoch):
    """The training and (when the dataset has a val split) validation :class:`DetectionDataset` of a run."""
    from defi1.detection.dataset import DetectionDataset
    from defi1.yolo.heads import head_specs

    options = dict(heads=head_specs(model), input_size=settings.input_size, batch_size=settings.batch_size,
                   max_boxes=settings.max_boxes, seed=settings.seed, workers=settings.workers,
                   assign_threshold=settings.assign_threshold, use_multiprocessing=settings.use_multiprocessing)
    train_data = DetectionDataset(dataset.samples("train"), augment=settings.augment, augmentation=settings.augmentation,
                                  multi_scale=settings.multi_scale, multi_scale_sizes=settings.multi_scale_sizes,
                                  repeat=settings.repeat, epoch=initial_epoch, **options)
    validation_data = None
    if dataset.has_split("val"):
        validation_data = DetectionDataset(dataset.samples("val"), augment=False, **options)
    return train_data, validation_data


def _compile_stage(model, settings, learning_rate):
    from defi1.yolo.loss import yolo_losses

    ema = settings.ema_momentum is not None
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, use_ema=ema,
                                      ema_momentum=settings.ema_momentum if ema else 0.99)
    losses = yolo_losses(model, max_boxes=settings.max_boxes, box_weighting=settings.box_weighting,
                         box_loss=settings.box_loss)
    model.compile(optimizer=optimizer, loss=losses, jit_compile=_jit_compile(settings))


def _stage_callbacks(settings, stage, *, run_callbacks, steps_per_epoch, has_validation, time_limit, start):
    """The callbacks of one stage, in order: NaN guard, EMA swap, checkpoint and log (``run_callbacks``), time limit,
    learning-rate schedule, early stopping. Returns ``(callbacks, early_stopping or None)``."""
    first, end, learning_rate = stage[:3]
    callbacks = list(run_callbacks[:1])
    if settings.ema_momentum is not None:  # the averaged weights are swapped in for validation and the checkpoint
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += list(run_callbacks[1:]) + ([time_limit] if time_limit else [])
    if settings.learning_rate_schedule == "cosine":
        callbacks.append(CosineLearningRate(  # a resumed stage continues its schedule
            learning_rate, total_steps=(end - first) * steps_per_epoch,
            warmup_steps=round(settings.warmup_epochs * steps_per_epoch),
            final_fraction=settings.final_learning_rate_fraction, time_limit=time_limit,
            initial_step=(start - first) * steps_per_epoch))
    elif settings.reduce_lr_patience > 0:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(  # the smooth loss
            monitor="val_loss" if has_validation else "loss", factor=settings.reduce_lr_factor,
            patience=settings.reduce_lr_patience, verbose=1 if settings.verbose else 0))
    early_stopping = None
    if settings.early_stopping_patience > 0:
        monitor, mode = settings.stopping_monitor(has_validation)
        early_stopping = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                       patience=settings.early_stopping_patience)
        callbacks.append(early_stopping)
    return callbacks, early_stopping


def _run_dir(settings, log) -> Path:
    """The folder of a resumed run, or a new run's (:func:`defi1.runs.new_run_dir`)."""
    requested = Path(settings.out_dir)
    out_dir = requested if settings.resume else new_run_dir(requested, exist_ok=settings.exist_ok)
    if out_dir != requested:
        log(f"{requested} holds an earlier run: this run writes to {out_dir} (--exist-ok to reuse {requested}, "
            "--resume to continue it)")
    return out_dir


def _start(settings, out_dir, log, monitor):
    """``(initial_epoch, best_value, best_epoch, resumed_learning_rate)``: where a resumed run starts; a new run in a
    reused folder (``exist_ok``) first removes the earlier run's files (so that they are neither resumed nor mixed
    with the new ones)."""
    removed = remove_stale_temporaries(out_dir)
    if removed:
        log(f"Removed {len(removed)} temporary file(s) of an interrupted write: "
            + ", ".join(path.name for path in removed))
    if not settings.resume:
        for name in (STATE_FILE, LOG_FILE, BEST_MODEL, LAST_MODEL, CURVES_FILE):
            if (out_dir / name).exists():
                (out_dir / name).unlink()
        return 0, None, None, None
    state = _resume_state(out_dir, settings)
    initial_epoch = int(state["epochs_completed"])
    log(f"Resuming from {out_dir / LAST_MODEL} after epoch {initial_epoch}")
    if state.get("monitor", monitor) != monitor:  # best values of two different metrics do not compare
        log(f"The best model was chosen on {state['monitor']}, now on {monitor}: the next epoch starts the comparison")
        return initial_epoch, None, None, state.get("learning_rate")
    return initial_epoch, state.get("best_value"), state.get("best_epoch"), state.get("learning_rate")


def train_detector(settings: TrainingSettings | None = None, *, callbacks=(), log=print, **overrides) -> TrainingResult:
    """Train a YOLOv3 detector (see the module docstring for the stages and the files written).

    Args:
        settings: a :class:`TrainingSettings`; keyword ``overrides`` replace its fields (or build one:
            ``train_detector(data="data.yaml", epochs=5)``). Its ``"auto"`` fields are resolved
            (:meth:`TrainingSettings.resolved`: the from-scratch recipe without pretrained weights).
        callbacks: extra Keras callbacks for both stages.
        log: where progress messages go.
    Returns:
        a :class:`TrainingResult` (its ``out_dir`` is the run folder actually written).
    Raises:
        TrainingDivergedError: the loss became NaN or infinite (the last good checkpoint is kept).
        CheckpointWriteError: a checkpoint could not be written (disk full; the last good one is intact).
        FileNotFoundError, ConfigError, DataError, WeightsError: bad input, named in the message.
    """
    from defi1.detection.check import check_before_training

    settings = TrainingSettings(**overrides) if settings is None else dataclasses.replace(settings, **overrides)
    settings = settings.resolved()
    settings.check()
    dataset = check_before_training(settings.data, log=log)  # every bad image found before the first epoch
    with output_dir_for(_run_dir(settings, log)) as out_dir:  # a run failing before any file leaves no folder
        return _train(settings, dataset, out_dir, callbacks=callbacks, log=log)


def _train(settings, dataset, out_dir, *, callbacks, log) -> TrainingResult:
    has_validation = dataset.has_split("val")
    monitor, mode = settings.best_monitor(has_validation)
    initial_epoch, best_value, best_epoch, resumed_learning_rate = _start(settings, out_dir, log, monitor)
    if settings.resume and initial_epoch >= settings.epochs:
        log(f"Nothing to do: {initial_epoch} epochs already completed (epochs={settings.epochs})")
        return _result(out_dir, initial_epoch, best_value, stopped_early=False, settings=settings, monitor=monitor,
                       best_epoch=best_epoch)

    keras.utils.set_random_seed(settings.seed)
    nan_guard = NanGuard()
    stopped_early = False
    stages = settings.stages()
    with _precision_policy(settings.mixed_precision), distribution_scope(settings.distribute):
        model = (load_keras_model(out_dir / LAST_MODEL) if settings.resume
                 else build_model(settings, class_names=list(dataset.names)))
        if settings.batchnorm_momentum is not None:
            set_batchnorm_momentum(model, settings.batchnorm_momentum)
        train_data, validation_data = _datasets(settings, model, dataset, initial_epoch)
        validation_map = (ValidationMap(dataset.samples("val"), list(dataset.names), input_size=settings.input_size,
                                        batch_size=settings.batch_size, eager=settings.distribute)
                          if has_validation and settings.validation_map else None)
        checkpoint = RunCheckpoint(out_dir, monitor=monitor, mode=mode, best_value=best_value, best_epoch=best_epoch,
                                   state={"stage": 1, "settings": settings.record()})
        csv_logger = keras.callbacks.CSVLogger(str(out_dir / LOG_FILE), append=True)  # one log over both stages
        run_callbacks = [nan_guard] + ([validation_map] if validation_map else []) + [checkpoint, csv_logger]
        time_limit = TimeLimit(settings.max_time_s) if settings.max_time_s is not None else None
        for stage in stages:
            first, end, learning_rate, frozen, number = stage
            if end <= initial_epoch:
                continue
            start = max(first, initial_epoch)
            if resumed_learning_rate is not None and first < initial_epoch and \
                    settings.learning_rate_schedule == "plateau":
                learning_rate = resumed_learning_rate  # resuming inside this stage: keep its reduced rate
            frozen_names = set_backbone_trainable(model, not frozen)
            log(f"Stage {number}: epochs {start + 1}-{end}, learning rate {learning_rate:g} "
                f"({settings.learning_rate_schedule} schedule), "
                + (f"{len(frozen_names)} backbone layers frozen" if frozen else "all layers trained"))
            _compile_stage(model, settings, learning_rate)
            checkpoint.state["stage"] = number
            stage_callbacks, early_stopping = _stage_callbacks(
                settings, (first, end, learning_rate), run_callbacks=run_callbacks,
                steps_per_epoch=settings.steps_per_epoch or len(train_data), has_validation=has_validation,
                time_limit=time_limit, start=start)
            model.fit(train_data, validation_data=validation_data, initial_epoch=start, epochs=end,
                      steps_per_epoch=settings.steps_per_epoch, callbacks=stage_callbacks + list(callbacks),
                      verbose=settings.verbose)
            if nan_guard.diverged_at is not None:
                break
            if time_limit is not None and time_limit.reached:
                log(f"Time limit of {settings.max_time_s:g} s reached: training stopped")
                break
            if early_stopping is not None and early_stopping.stopped_epoch > 0:
                stopped_early = True
                log(f"Stage {number}: {early_stopping.monitor} stopped improving for "
                    f"{settings.early_stopping_patience} epochs (early stopping at epoch "
                    f"{early_stopping.stopped_epoch + 1})")
                if number == 2 or len(stages) == 1:
                    break
    epochs_completed = (checkpoint.last_epoch_saved + 1) if checkpoint.last_epoch_saved is not None else initial_epoch
    result = _result(out_dir, epochs_completed, checkpoint.best_value, stopped_early=stopped_early, settings=settings,
                     monitor=monitor, best_epoch=checkpoint.best_epoch, validation_map=validation_map)
    if nan_guard.diverged_at is not None:
        raise _diverged_error(nan_guard.diverged_at, out_dir, epochs_completed)
    if validation_map is not None and validation_map.seconds:
        log(f"Validation mAP: {result.validation_map_seconds:.1f} s an epoch ({len(validation_map.samples)} images)")
    log(f"Best model: {result.best_model_path} ({result.summary()})")
    return result


def _diverged_error(diverged_at, out_dir, epochs_completed) -> TrainingDivergedError:
    epoch, batch, value = diverged_at
    if epochs_completed:
        kept = f"the last good checkpoint is {out_dir / LAST_MODEL} (epoch {epochs_completed}), best " \
               f"{out_dir / BEST_MODEL}"
    else:
        kept = "no epoch completed, so no checkpoint was written"
    return TrainingDivergedError(f"training stopped: the loss became {value} at epoch {epoch + 1}, batch "
                                 f"{batch + 1}; {kept}. Lower the learning rate or check the labels, then "
                                 "continue with --resume")


#: The logged quantities a run's summary reports for its best epoch, and their names there.
SUMMARY_KEYS = {"val_map50": "map50", "val_map50_95": "map50-95", "val_precision": "precision",
                "val_recall": "recall", "val_loss": "val_loss"}


def _result(out_dir, epochs_completed, best_value, *, stopped_early, settings, monitor, best_epoch,
            validation_map=None):
    from defi1.detection.plots import save_loss_curves

    history = read_csv_history(out_dir / LOG_FILE)
    curves = None
    if history.get("epoch"):
        curves = save_loss_curves(history, out_dir / CURVES_FILE, unfreeze_epoch=settings.resolved_freeze_epochs())
    best_metrics = {}
    if best_epoch is not None and (best_epoch - 1) in [int(epoch) for epoch in history.get("epoch", [])]:
        row = [int(epoch) for epoch in history["epoch"]].index(best_epoch - 1)
        best_metrics = {name: history[key][row] for key, name in SUMMARY_KEYS.items() if key in history}
    seconds = validation_map.seconds if validation_map is not None else []
    return TrainingResult(out_dir=out_dir, best_model_path=out_dir / BEST_MODEL, last_model_path=out_dir / LAST_MODEL,
                          log_path=out_dir / LOG_FILE, curves_path=curves, epochs_completed=epochs_completed,
                          best_validation_loss=best_metrics.get("val_loss", best_value if monitor.endswith("loss")
                                                                else None),
                          history=history, stopped_early=stopped_early, best_metric=monitor, best_epoch=best_epoch,
                          best_metrics=best_metrics,
                          validation_map_seconds=float(sum(seconds) / len(seconds)) if seconds else None)
