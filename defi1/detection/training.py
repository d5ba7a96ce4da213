"""Training a YOLOv3 detector on a YOLO-format dataset: the course's two stages in one call.

Stage 1 (``freeze_epochs`` epochs, ``learning_rate``): the backbone (:func:`defi1.yolo.model.backbone_layer_names`)
is frozen, its BatchNormalization layers included (a non-trainable Keras 3 BatchNormalization runs in inference mode:
its moving statistics stay those of the pretrained weights). Stage 2 (up to ``epochs`` in total,
``fine_tune_learning_rate``): every layer is trained. Training from scratch (no pretrained weights) has no reason to
freeze anything: ``freeze_epochs`` then defaults to 0 and the single stage uses ``learning_rate``.

Everything a run writes goes to ``out_dir``::

    best.keras          # the model with the best validation loss so far (written atomically)
    last.keras          # the model after the last complete epoch (written atomically), for --resume
    state.json          # epochs completed, best validation loss, learning rate: where --resume starts
    training_log.csv    # one line per epoch (Keras CSVLogger, appended on resume)
    loss_curves.png     # training and validation loss per epoch, with the stage boundary

A NaN or infinite loss stops training at once with :class:`TrainingDivergedError`; the checkpoints of the last good
epoch are kept untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from defi1.detection.augment import AugmentationSettings
from defi1.detection.dataset import MULTI_SCALE_SIZES
from defi1.errors import ConfigError, Defi1Error, WeightsError
from defi1.files import atomic_save_model, atomic_write_bytes, atomic_write_json, ensure_output_dir

BUILT_IN_MODELS = ("yolov3", "yolov3-tiny")
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
STATE_FILE = "state.json"
LOG_FILE = "training_log.csv"
CURVES_FILE = "loss_curves.png"

#: TrainingSettings fields that make a short run from random weights learn much faster than YOLOv3's own rules
#: (tiny-YOLOv3 on 800 shapes images, 12 minutes on 2 CPU cores: test map50 0.80 against 0.44; benchmarks/RESULTS.md).
#: ``dataclasses.replace(settings, **FROM_SCRATCH_RECIPE)`` or ``TrainingSettings(..., **FROM_SCRATCH_RECIPE)``.
FROM_SCRATCH_RECIPE = {"assign_threshold": 0.213, "learning_rate_schedule": "cosine", "warmup_epochs": 1.0,
                       "ema_momentum": 0.99, "batchnorm_momentum": 0.95}


class TrainingDivergedError(Defi1Error):
    """The loss became NaN or infinite; the message names the epoch, batch and last good checkpoint."""


@dataclass
class TrainingSettings:
    """Every setting of :func:`train_detector`, with its default.

    Attributes:
        data: the dataset YAML (``train`` and ``val`` image folders, ``names``).
        model: ``"yolov3"``, ``"yolov3-tiny"``, a darknet ``.cfg`` file, or a ``.keras`` model to continue from.
        weights: initial weights: a darknet ``.weights`` file (COCO weights with another class count load every layer
            but the head convolutions; backbone-only files such as ``darknet53.conv.74`` load into the backbone), a
            ``.keras`` model (layers with the same name and shapes are copied), or ``None`` (random initialisation).
        input_size: square network input side, a multiple of 32.
        epochs: total number of epochs, both stages together.
        freeze_epochs: epochs of stage 1 (backbone frozen); ``None``: 10 with pretrained weights, 0 without.
        batch_size: images per batch (split over the devices with ``distribute``).
        learning_rate: Adam learning rate of stage 1 (of the only stage when ``freeze_epochs`` is 0).
        fine_tune_learning_rate: Adam learning rate of stage 2, when a stage 1 exists.
        out_dir: the run folder (see the module docstring).
        resume: continue from ``out_dir/last.keras`` at the epoch after the last complete one.
        mixed_precision: compute in float16 (``mixed_float16`` policy, loss scaling), variables in float32.
        multi_scale: every batch draws its input side in ``multi_scale_sizes``.
        multi_scale_sizes: the sides multi-scale training draws from (default 320 to 608 in steps of 32).
        distribute: data-parallel training on every visible device (MirroredStrategy under TensorFlow,
            ``keras.distribution.DataParallel`` under JAX).
        augment: random augmentation of the training images (:mod:`defi1.detection.augment`).
        augmentation: the augmentation settings (defaults when ``None``).
        repeat: passes over the training images per epoch (small datasets: fewer checkpoints and validations).
        anchors: ``None`` (the architecture's COCO anchors), ``"kmeans"`` (k-means on the training boxes), or an
            ``(A, 2)`` array of ``[width, height]`` pixels; built-in models only.
        learning_rate_schedule: ``"plateau"``: the stage's rate, multiplied by ``reduce_lr_factor`` after
            ``reduce_lr_patience`` epochs without improvement; ``"cosine"``: a linear warm-up over ``warmup_epochs``,
            then a cosine decay to ``final_learning_rate_fraction`` of the rate at the end of the stage (or of
            ``max_time_s``, whichever comes first: a time-limited run still ends on its low rates).
        warmup_epochs: length of the cosine schedule's linear warm-up, in epochs (fractions allowed).
        final_learning_rate_fraction: the cosine schedule's last rate, as a fraction of the stage's rate.
        ema_momentum: keep an exponential moving average of the weights (Keras ``use_ema``) with this momentum and
            validate and checkpoint with the averaged weights (``keras.callbacks.SwapEMAWeights``); ``None``: off.
            Averaging smooths the last steps' noise: short runs gain most (0.99 averages ~100 steps).
        early_stopping_patience: epochs without validation improvement before a stage ends (``0`` disables).
        reduce_lr_patience: epochs without improvement before the learning rate is multiplied by
            ``reduce_lr_factor`` (``0`` disables).
        max_boxes: ground-truth boxes per image kept for the loss's ignore mask.
        assign_threshold: anchors whose shape IoU with a box exceeds this are responsible for it besides the best
            one (darknet's ``[yolo] iou_thresh``; 1.0, YOLOv3's rule: the best anchor only). More positives per box
            speed up learning from scratch; YOLOv4's cfgs use 0.213.
        batchnorm_momentum: override the momentum of every batch normalisation's moving statistics (darknet and
            the builders use 0.99, right for long runs; a run of a few hundred steps needs ~0.9, or the statistics
            used at inference still lag far behind those the weights were trained with).
        workers, use_multiprocessing: parallel batch loading (``keras.utils.PyDataset``).
        seed: seeds weights initialisation, shuffling and augmentation.
        steps_per_epoch: batches per epoch (default: the whole training split).
        max_time_s: stop once training has run this many seconds, the current epoch cut short (``None``: no limit).
        verbose: Keras ``fit`` verbosity (``"auto"``: progress bars).
        jit_compile: Keras ``compile`` option; ``"auto"`` means XLA on accelerators and no XLA on CPUs (where
            compiling the YOLO graph costs minutes, once per input size).
    """

    data: str | Path
    model: str = "yolov3-tiny"
    weights: str | Path | None = None
    input_size: int = 416
    epochs: int = 50
    freeze_epochs: int | None = None
    batch_size: int = 8
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-4
    out_dir: str | Path = "runs/detect/train"
    resume: bool = False
    mixed_precision: bool = False
    multi_scale: bool = False
    multi_scale_sizes: tuple = MULTI_SCALE_SIZES
    distribute: bool = False
    augment: bool = True
    augmentation: AugmentationSettings | None = None
    repeat: int = 1
    anchors: object = None
    learning_rate_schedule: str = "plateau"
    warmup_epochs: float = 0.0
    final_learning_rate_fraction: float = 0.01
    ema_momentum: float | None = None
    early_stopping_patience: int = 10
    reduce_lr_patience: int = 3
    reduce_lr_factor: float = 0.1
    max_boxes: int = 100
    assign_threshold: float = 1.0
    batchnorm_momentum: float | None = None
    workers: int = 1
    use_multiprocessing: bool = False
    seed: int = 0
    steps_per_epoch: int | None = None
    max_time_s: float | None = None
    verbose: object = "auto"
    jit_compile: object = "auto"

    def resolved_freeze_epochs(self) -> int:
        """``freeze_epochs``, with ``None`` resolved (10 with pretrained weights, 0 without), capped at ``epochs``."""
        if self.freeze_epochs is None:
            pretrained = self.weights not in (None, "", "none") or str(self.model).endswith(".keras")
            return min(10 if pretrained else 0, self.epochs)
        return min(int(self.freeze_epochs), self.epochs)

    def check(self):
        """Raise ``ValueError`` on impossible settings."""
        if self.input_size <= 0 or self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {self.input_size}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if self.freeze_epochs is not None and self.freeze_epochs < 0:
            raise ValueError(f"freeze_epochs must be >= 0, got {self.freeze_epochs}")
        if self.learning_rate <= 0 or self.fine_tune_learning_rate <= 0:
            raise ValueError("learning rates must be positive")
        if self.learning_rate_schedule not in ("plateau", "cosine"):
            raise ValueError("learning_rate_schedule must be 'plateau' or 'cosine', got "
                             f"{self.learning_rate_schedule!r}")
        if self.warmup_epochs < 0 or not 0 <= self.final_learning_rate_fraction <= 1:
            raise ValueError("warmup_epochs must be >= 0 and final_learning_rate_fraction in [0, 1]")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in (0, 1) or None, got {self.ema_momentum}")
        if not 0.0 <= self.assign_threshold <= 1.0:
            raise ValueError(f"assign_threshold must be in [0, 1] (a shape IoU), got {self.assign_threshold}")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ValueError(f"the time limit must be positive, got {self.max_time_s} s")
        sizes = tuple(self.multi_scale_sizes)
        if not sizes or any(int(side) <= 0 or int(side) % 32 for side in sizes):
            raise ValueError(f"multi_scale_sizes must be positive multiples of 32, got {sizes}")


@dataclass
class TrainingResult:
    """What :func:`train_detector` produced. ``history`` maps each logged quantity to its per-epoch values (the whole
    run, resumed parts included, read back from the CSV log)."""

    out_dir: Path
    best_model_path: Path
    last_model_path: Path
    log_path: Path
    curves_path: Path | None
    epochs_completed: int
    best_validation_loss: float | None
    history: dict = field(default_factory=dict)
    stopped_early: bool = False


# --------------------------------------------------------------------------------------------------------------------
# Model and weights


def build_model(settings: TrainingSettings, *, class_names) -> keras.Model:
    """The model named by ``settings.model`` for ``class_names``, with ``settings.weights`` loaded.

    A newly built model's heads start at the priors of :func:`defi1.yolo.model.initialize_head_priors` (what
    training from scratch, or COCO weights with another class count, keeps for the head convolutions)."""
    from defi1.yolo import model as yolo_model

    num_classes = len(class_names)
    name = str(settings.model)
    anchors = _resolve_anchors(settings, name)
    if name.endswith(".keras"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such model file")
        model = keras.saving.load_model(name, compile=False, safe_mode=True)
        model_classes = yolo_heads_num_classes(model)
        if model_classes != num_classes:
            raise ConfigError(f"{name}: the model has {model_classes} classes but the dataset {settings.data} has "
                              f"{num_classes}; start from its weights instead (--model yolov3-tiny --weights {name})")
    elif name in ("yolov3", "yolov3-tiny", "yolov3_tiny"):
        builder = yolo_model.build_yolov3 if name == "yolov3" else yolo_model.build_yolov3_tiny
        model = builder(num_classes=num_classes, input_size=settings.input_size, anchors=anchors,
                        class_names=class_names)
    elif name.endswith(".cfg"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such darknet cfg file")
        model = yolo_model.build_from_cfg(name, num_classes=num_classes, class_names=class_names,
                                          input_size=settings.input_size)
    else:
        raise ConfigError(f"unknown model {name!r}: expected yolov3, yolov3-tiny, a darknet .cfg file or a .keras "
                          "model")
    if not name.endswith(".keras"):  # a new model: heads start at the priors; loaded weights replace them
        yolo_model.initialize_head_priors(model)
    load_initial_weights(model, settings.weights)
    return model


def yolo_heads_num_classes(model) -> int:
    from defi1.yolo.layers import yolo_heads

    return yolo_heads(model)[0].num_classes


def _resolve_anchors(settings, model_name):
    if settings.anchors is None:
        return None
    if model_name not in ("yolov3", "yolov3-tiny", "yolov3_tiny"):
        raise ConfigError(f"custom anchors apply to the built-in models only; {model_name} carries its own")
    if isinstance(settings.anchors, str):
        if settings.anchors != "kmeans":
            raise ConfigError(f"anchors must be None, 'kmeans' or an (A, 2) array, got {settings.anchors!r}")
        from defi1.yolo.anchors import dataset_box_sizes, kmeans_anchors

        count = 9 if model_name == "yolov3" else 6
        sizes = dataset_box_sizes(settings.data, input_size=settings.input_size, split="train")
        if len(sizes) < count:
            raise ConfigError(f"{settings.data}: {len(sizes)} training boxes, too few for {count} k-means anchors")
        anchors, _ = kmeans_anchors(sizes, count, seed=settings.seed)
        return np.asarray(anchors, dtype=np.float64)
    return np.asarray(settings.anchors, dtype=np.float64).reshape(-1, 2)


def load_initial_weights(model, weights) -> dict | None:
    """Load ``weights`` (darknet ``.weights``, a ``.keras`` model, or ``None``/``"none"``) into ``model``.

    Darknet files go through :func:`defi1.yolo.darknet.load_darknet_weights` with ``skip_mismatched_heads`` (COCO
    weights for another class count); files named ``*.conv.*`` (``darknet53.conv.74``) are backbone-only.
    A ``.keras`` file gives its weights to the layers of ``model`` with the same name and weight shapes.
    Returns the loader's report, or ``None`` when nothing was loaded.
    """
    if weights is None or str(weights).lower() in ("", "none"):
        return None
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".keras":
        return _transfer_keras_weights(model, path)
    from defi1.yolo.darknet import load_darknet_weights

    backbone_only = ".conv." in path.name
    return load_darknet_weights(model, path, skip_mismatched_heads=True, backbone_only=backbone_only)


def _transfer_keras_weights(model, path) -> dict:
    source = keras.saving.load_model(path, compile=False, safe_mode=True)
    source_layers = {layer.name: layer for layer in source.layers}
    copied, skipped = [], []
    for layer in model.layers:
        other = source_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        values = other.get_weights()
        if [tuple(weight.shape) for weight in layer.weights] == [value.shape for value in values]:
            layer.set_weights(values)
            copied.append(layer.name)
        else:
            skipped.append(layer.name)
    if not copied:
        raise WeightsError(f"{path}: no layer of this model matches a layer of {model.name!r} by name and shape")
    return {"source": str(path), "copied_layers": copied, "skipped_layers": skipped}


def set_backbone_trainable(model, trainable: bool) -> list[str]:
    """Freeze (``trainable=False``) or unfreeze the backbone layers; returns their names. Frozen BatchNormalization
    layers run in inference mode (Keras 3), so their moving statistics are kept."""
    from defi1.yolo.model import backbone_layer_names

    names = set(backbone_layer_names(model))
    for layer in model.layers:
        layer.trainable = (layer.name not in names) or trainable
    return sorted(names)


def set_batchnorm_momentum(model, momentum: float) -> int:
    """Set the moving-statistics momentum of every batch normalisation layer; returns how many were changed."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"batch normalisation momentum must be in [0, 1), got {momentum}")
    changed = 0
    for layer in model.layers:
        if "BatchNormalization" in type(layer).__name__ and hasattr(layer, "momentum"):
            layer.momentum = float(momentum)
            changed += 1
    return changed


# --------------------------------------------------------------------------------------------------------------------
# Callbacks


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite and remembers where it happened."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None  # (epoch, batch, value)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if value is not None and not math.isfinite(float(value)) and self.diverged_at is None:
            self.diverged_at = (self._epoch, batch, float(value))
            self.model.stop_training = True


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the first batch that ends after ``max_time_s`` seconds (counted from the creation of the
    callback, so across both stages); the interrupted epoch still ends normally (validation, checkpoint)."""

    def __init__(self, max_time_s):
        super().__init__()
        import time

        self.max_time_s = float(max_time_s)
        self.started = time.monotonic()
        self.reached = False

    def fraction_spent(self) -> float:
        """The share of the budget spent so far (may exceed 1)."""
        import time

        return (time.monotonic() - self.started) / self.max_time_s if self.max_time_s > 0 else 1.0

    def on_train_batch_end(self, batch, logs=None):
        import time

        if time.monotonic() - self.started >= self.max_time_s:
            self.reached = True
            self.model.stop_training = True


class CosineLearningRate(keras.callbacks.Callback):
    """Sets the optimizer's learning rate before every batch: a linear warm-up from 0 over ``warmup_steps``, then a
    half cosine from ``peak`` down to ``peak * final_fraction`` at the end of the stage.

    Steps count from the stage's first epoch (``initial_step``: where a resumed stage starts). Progress is the larger
    of the steps done over ``total_steps`` and, with a ``time_limit`` (a :class:`TimeLimit`),
    the time spent over its budget: a run cut short by its time limit still ends at the low rates.
    """

    def __init__(self, peak, *, total_steps, warmup_steps=0, final_fraction=0.01, time_limit=None, initial_step=0):
        super().__init__()
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.final_fraction = float(final_fraction)
        self.time_limit = time_limit
        self.step = int(initial_step)

    def rate(self, step, time_fraction=0.0) -> float:
        """The learning rate at ``step`` (counted from the stage's start), ``time_fraction`` of the budget spent."""
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min(max((step - self.warmup_steps) / span, time_fraction), 1.0)
        low = self.peak * self.final_fraction
        return low + (self.peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def on_train_batch_begin(self, batch, logs=None):
        fraction = self.time_limit.fraction_spent() if self.time_limit is not None else 0.0
        self.model.optimizer.learning_rate.assign(self.rate(self.step, fraction))
        self.step += 1


class AtomicCheckpoint(keras.callbacks.Callback):
    """After each complete epoch with a finite loss: ``last.keras``, ``best.keras`` when ``monitor`` improved, and
    ``state.json``, each written atomically (a temporary file renamed), so an interruption never leaves half a file.
    An epoch whose loss is not finite writes nothing."""

    def __init__(self, out_dir, *, monitor="val_loss", best_value=None, stage=1, settings_record=None):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.monitor = monitor
        self.best_value = best_value
        self.stage = stage
        self.settings_record = settings_record or {}
        self.last_epoch_saved = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None or not math.isfinite(float(loss)):
            return
        value = logs.get(self.monitor, loss)
        value = float(value) if value is not None else None
        atomic_save_model(self.model, self.out_dir / LAST_MODEL)
        if value is not None and math.isfinite(value) and (self.best_value is None or value < self.best_value):
            self.best_value = value
            atomic_save_model(self.model, self.out_dir / BEST_MODEL)
        self.last_epoch_saved = epoch
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        atomic_write_json(self.out_dir / STATE_FILE, {
            "epochs_completed": epoch + 1, "stage": self.stage, "monitor": self.monitor,
            "best_value": self.best_value, "learning_rate": learning_rate, "settings": self.settings_record})


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
# Training


def _settings_record(settings):
    record = {}
    for key, value in dataclasses.asdict(settings).items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            record[key] = value
        elif isinstance(value, Path):
            record[key] = str(value)
        else:
            record[key] = repr(value)
    return record


def _read_state(out_dir):
    path = Path(out_dir) / STATE_FILE
    last = Path(out_dir) / LAST_MODEL
    if not path.is_file() or not last.is_file():
        raise FileNotFoundError(f"{out_dir}: nothing to resume (expected {STATE_FILE} and {LAST_MODEL} from an "
                                "earlier run with the same --out)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from error


def _jit_compile(settings):
    if settings.jit_compile != "auto":
        return settings.jit_compile
    from defi1.environment import accelerator_name

    return False if accelerator_name().startswith("CPU") else "auto"


def _stages(settings):
    """``[(first_epoch, end_epoch, learning_rate, backbone_frozen, stage_number)]`` of the run."""
    freeze = settings.resolved_freeze_epochs()
    if freeze == 0:
        return [(0, settings.epochs, settings.learning_rate, False, 1)]
    stages = [(0, freeze, settings.learning_rate, True, 1)]
    if settings.epochs > freeze:
        stages.append((freeze, settings.epochs, settings.fine_tune_learning_rate, False, 2))
    return stages


def train_detector(settings: TrainingSettings | None = None, *, callbacks=(), log=print, **overrides) -> TrainingResult:
    """Train a YOLOv3 detector (see the module docstring for the stages and the files written).

    Args:
        settings: a :class:`TrainingSettings`; keyword ``overrides`` replace its fields (or build one:
            ``train_detector(data="data.yaml", epochs=5)``).
        callbacks: extra Keras callbacks for both stages.
        log: where progress messages go.
    Returns:
        a :class:`TrainingResult`.
    Raises:
        TrainingDivergedError: the loss became NaN or infinite (the last good checkpoint is kept).
        FileNotFoundError, ConfigError, DataError, WeightsError: bad input, named in the message.
    """
    from defi1.detection.dataset import DetectionDataset, split_images_dir
    from defi1.detection.labels import list_samples
    from defi1.yolo.loss import yolo_losses
    from defi1.yolo.targets import head_specs

    if settings is None:
        settings = TrainingSettings(**overrides)
    elif overrides:
        settings = dataclasses.replace(settings, **overrides)
    settings.check()
    out_dir = ensure_output_dir(settings.out_dir)
    config, train_dir = split_images_dir(settings.data, "train")
    validation_dir = config.val
    class_names = list(config.names)
    initial_epoch, best_value, resumed_learning_rate = 0, None, None
    if settings.resume:
        state = _read_state(out_dir)
        initial_epoch = int(state["epochs_completed"])
        best_value = state.get("best_value")
        resumed_learning_rate = state.get("learning_rate")
        log(f"Resuming from {out_dir / LAST_MODEL} after epoch {initial_epoch}")
    else:  # a fresh run: an old state must not be resumed by mistake later, nor an old log continued
        for name in (STATE_FILE, LOG_FILE):
            if (out_dir / name).exists():
                (out_dir / name).unlink()
    if settings.resume and initial_epoch >= settings.epochs:
        log(f"Nothing to do: {initial_epoch} epochs already completed (epochs={settings.epochs})")
        return _result(out_dir, initial_epoch, best_value, stopped_early=False, settings=settings)

    keras.utils.set_random_seed(settings.seed)
    monitor = "val_loss" if validation_dir is not None else "loss"
    nan_guard = NanGuard()
    stopped_early = False
    with _precision_policy(settings.mixed_precision), distribution_scope(settings.distribute):
        if settings.resume:
            model = keras.saving.load_model(out_dir / LAST_MODEL, compile=False, safe_mode=True)
        else:
            model = build_model(settings, class_names=class_names)
        if settings.batchnorm_momentum is not None:
            set_batchnorm_momentum(model, settings.batchnorm_momentum)
        heads = head_specs(model)
        dataset_options = dict(heads=heads, input_size=settings.input_size, batch_size=settings.batch_size,
                               max_boxes=settings.max_boxes, seed=settings.seed, workers=settings.workers,
                               assign_threshold=settings.assign_threshold,
                               use_multiprocessing=settings.use_multiprocessing)
        train_data = DetectionDataset(list_samples(train_dir), augment=settings.augment,
                                      augmentation=settings.augmentation, multi_scale=settings.multi_scale,
                                      multi_scale_sizes=settings.multi_scale_sizes,
                                      repeat=settings.repeat,
                                      epoch=initial_epoch, **dataset_options)
        validation_data = None
        if validation_dir is not None:
            validation_data = DetectionDataset(list_samples(validation_dir), augment=False, **dataset_options)
        checkpoint = AtomicCheckpoint(out_dir, monitor=monitor, best_value=best_value,
                                      settings_record=_settings_record(settings))
        csv_logger = keras.callbacks.CSVLogger(str(out_dir / LOG_FILE), append=True)  # one log over both stages
        time_limit = TimeLimit(settings.max_time_s) if settings.max_time_s is not None else None
        for first, end, learning_rate, frozen, stage in _stages(settings):
            if end <= initial_epoch:
                continue
            start = max(first, initial_epoch)
            if resumed_learning_rate is not None and first < initial_epoch and \
                    settings.learning_rate_schedule == "plateau":
                learning_rate = resumed_learning_rate  # resuming inside this stage: keep its reduced rate
            frozen_names = set_backbone_trainable(model, not frozen)
            log(f"Stage {stage}: epochs {start + 1}-{end}, learning rate {learning_rate:g}, "
                + (f"{len(frozen_names)} backbone layers frozen" if frozen else "all layers trained"))
            ema = settings.ema_momentum is not None
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate, use_ema=ema,
                                              ema_momentum=settings.ema_momentum if ema else 0.99)
            model.compile(optimizer=optimizer, loss=yolo_losses(model, max_boxes=settings.max_boxes),
                          jit_compile=_jit_compile(settings))
            checkpoint.stage = stage
            # With EMA, the averaged weights are swapped in for validation and for the checkpoint that follows.
            stage_callbacks = [nan_guard] + ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else [])
            stage_callbacks += [checkpoint, csv_logger] + ([time_limit] if time_limit else [])
            if settings.learning_rate_schedule == "cosine":
                steps_per_epoch = settings.steps_per_epoch or len(train_data)
                stage_callbacks.append(CosineLearningRate(  # a resumed stage continues its schedule
                    learning_rate, total_steps=(end - first) * steps_per_epoch,
                    warmup_steps=round(settings.warmup_epochs * steps_per_epoch),
                    final_fraction=settings.final_learning_rate_fraction, time_limit=time_limit,
                    initial_step=(start - first) * steps_per_epoch))
            elif settings.reduce_lr_patience > 0:
                stage_callbacks.append(keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor, factor=settings.reduce_lr_factor, patience=settings.reduce_lr_patience,
                    verbose=1 if settings.verbose else 0))
            early_stopping = None
            if settings.early_stopping_patience > 0:
                early_stopping = keras.callbacks.EarlyStopping(monitor=monitor,
                                                               patience=settings.early_stopping_patience)
                stage_callbacks.append(early_stopping)
            stage_callbacks.extend(callbacks)
            model.fit(train_data, validation_data=validation_data, initial_epoch=start, epochs=end,
                      steps_per_epoch=settings.steps_per_epoch, callbacks=stage_callbacks, verbose=settings.verbose)
            if nan_guard.diverged_at is not None:
                break
            if time_limit is not None and time_limit.reached:
                log(f"Time limit of {settings.max_time_s:g} s reached: training stopped")
                break
            if early_stopping is not None and early_stopping.stopped_epoch > 0:
                stopped_early = True
                log(f"Stage {stage}: validation loss stopped improving (early stopping at epoch "
                    f"{early_stopping.stopped_epoch + 1})")
                if stage == 2 or len(_stages(settings)) == 1:
                    break
    epochs_completed = (checkpoint.last_epoch_saved + 1) if checkpoint.last_epoch_saved is not None else initial_epoch
    result = _result(out_dir, epochs_completed, checkpoint.best_value, stopped_early=stopped_early, settings=settings)
    if nan_guard.diverged_at is not None:
        epoch, batch, value = nan_guard.diverged_at
        if epochs_completed:
            kept = f"the last good checkpoint is {out_dir / LAST_MODEL} (epoch {epochs_completed}), best " \
                   f"{out_dir / BEST_MODEL}"
        else:
            kept = "no epoch completed, so no checkpoint was written"
        raise TrainingDivergedError(f"training stopped: the loss became {value} at epoch {epoch + 1}, batch "
                                    f"{batch + 1}; {kept}. Lower the learning rate or check the labels, then "
                                    "continue with --resume")
    log(f"Best model: {result.best_model_path} ({monitor} {checkpoint.best_value})")
    return result


def _result(out_dir, epochs_completed, best_value, *, stopped_early, settings):
    history = read_training_log(out_dir / LOG_FILE)
    curves = None
    if history.get("epoch"):
        curves = save_loss_curves(history, out_dir / CURVES_FILE, unfreeze_epoch=settings.resolved_freeze_epochs())
    return TrainingResult(out_dir=out_dir, best_model_path=out_dir / BEST_MODEL, last_model_path=out_dir / LAST_MODEL,
                          log_path=out_dir / LOG_FILE, curves_path=curves, epochs_completed=epochs_completed,
                          best_validation_loss=best_value, history=history, stopped_early=stopped_early)


def read_training_log(path) -> dict:
    """The CSV log as ``{column: [values per epoch]}`` (empty when the file does not exist)."""
    import csv

    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(float("nan"))
    return columns


def save_loss_curves(history: dict, path, *, unfreeze_epoch=0) -> Path:
    """Plot training (and validation) loss per epoch to a PNG, with a line where the backbone is unfrozen."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.asarray(history["epoch"]) + 1
    figure, axis = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        if key in history:
            axis.plot(epochs, history[key], marker="o", markersize=3, label=label)
    if 0 < unfreeze_epoch < epochs.max():
        axis.axvline(unfreeze_epoch + 0.5, color="grey", linestyle="--", label="backbone unfrozen")
    axis.set_xlabel("epoch")
    axis.set_ylabel("YOLO loss")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
