"""Every setting of a detection training run (:class:`TrainingSettings`), with its default and its checks.

:data:`FROM_SCRATCH_RECIPE` is the set of settings that makes a short run from random weights learn fast; a run
without pretrained weights uses it by default. The fields it sets default to ``"auto"``: :meth:`TrainingSettings.
resolved` replaces each by the recipe's value when training from scratch, by :data:`PRETRAINED_DEFAULTS`' otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from defi1.choices import BEST_METRICS, BOX_LOSSES, BOX_WEIGHTINGS, LEARNING_RATE_SCHEDULES
from defi1.detection.augment import AugmentationSettings
from defi1.detection.dataset import MULTI_SCALE_SIZES

BUILT_IN_MODELS = ("yolov3", "yolov3-tiny")
AUTO = "auto"

#: Lighter augmentation than darknet's: on a short run from scratch the model under-fits, and darknet's strength
#: only slows it down (benchmarks/RESULTS.md, run D).
LIGHT_AUGMENTATION = AugmentationSettings(scale_range=(0.9, 1.1), aspect_jitter=0.1, translate=0.05)

#: TrainingSettings fields that make a short run from random weights learn much faster than YOLOv3's own rules
#: (tiny-YOLOv3 on 800 shapes images, 12 minutes on 2 CPU cores: test map50 0.83 against 0.44; benchmarks/RESULTS.md,
#: run D). The default of a run without pretrained weights; ``TrainingSettings(..., **FROM_SCRATCH_RECIPE)`` or
#: ``dataclasses.replace(settings, **FROM_SCRATCH_RECIPE)`` sets them explicitly. Each has a ``detect train`` flag.
FROM_SCRATCH_RECIPE = {"assign_threshold": 0.213, "learning_rate_schedule": "cosine", "warmup_epochs": 1.0,
                       "ema_momentum": 0.99, "batchnorm_momentum": 0.95, "anchors": "kmeans", "learning_rate": 2e-3,
                       "augmentation": LIGHT_AUGMENTATION}

#: The values of the same fields for a run from pretrained weights (YOLOv3's own rules, darknet's augmentation).
PRETRAINED_DEFAULTS = {"assign_threshold": 1.0, "learning_rate_schedule": "plateau", "warmup_epochs": 0.0,
                       "ema_momentum": None, "batchnorm_momentum": None, "anchors": None, "learning_rate": 1e-3,
                       "augmentation": None}

#: Stage 1 length (backbone frozen) when ``freeze_epochs`` is ``None`` and the run starts from pretrained weights.
#: Measured on BCCD with darknet's released tiny weights (benchmarks/RESULTS.md, "Transfer learning on BCCD"): 3 frozen
#: epochs then all layers did as well as 10 frozen epochs then 1e-4 in a short budget, and reach stage 2, where the
#: boxes tighten, in a few minutes on a CPU. Stage 2's rate (``fine_tune_learning_rate``, 1e-3) was measured there too:
#: 1e-3 beat 5e-4 by 0.04 map50-95 in 10 minutes with the cosine schedule.
PRETRAINED_FREEZE_EPOCHS = 3


@dataclass
class TrainingSettings:
    """Every setting of :func:`defi1.detection.training.train_detector`, with its default.

    Attributes:
        data: the dataset YAML (``train`` and ``val`` image folders, ``names``).
        model: ``"yolov3"``, ``"yolov3-tiny"``, a darknet ``.cfg`` file, or a ``.keras`` model to continue from.
        weights: initial weights: a darknet ``.weights`` file (COCO weights with another class count load every layer
            but the head convolutions; backbone-only files such as ``darknet53.conv.74`` load into the backbone), a
            ``.keras`` model (layers with the same name and shapes are copied), or ``None`` (random initialisation).
        input_size: square network input side, a multiple of 32.
        epochs: total number of epochs, both stages together.
        freeze_epochs: epochs of stage 1 (backbone frozen); ``None``: :data:`PRETRAINED_FREEZE_EPOCHS` (3) with
            pretrained weights, 0 without.
        batch_size: images per batch (split over the devices with ``distribute``).
        learning_rate: Adam learning rate of stage 1 (of the only stage when ``freeze_epochs`` is 0).
            ``"auto"``: 2e-3 from scratch, 1e-3 with pretrained weights.
        fine_tune_learning_rate: Adam learning rate of stage 2, when a stage 1 exists.
        out_dir: the run folder (see :mod:`defi1.detection.training`). One that already holds a run is not reused:
            the run goes to ``out_dir2``, ``out_dir3`` ... (:func:`defi1.runs.new_run_dir`) unless ``exist_ok``.
        resume: continue from ``out_dir/last.keras`` at the epoch after the last complete one (the same data, model
            and input size, or the run is refused).
        exist_ok: a new run writes into ``out_dir`` even when it holds an earlier run (whose state and log are
            then replaced).
        mixed_precision: compute in float16 (``mixed_float16`` policy, loss scaling), variables in float32.
        multi_scale: every batch draws its input side in ``multi_scale_sizes``.
        multi_scale_sizes: the sides multi-scale training draws from (default 320 to 608 in steps of 32).
        distribute: data-parallel training on every visible device (MirroredStrategy under TensorFlow,
            ``keras.distribution.DataParallel`` under JAX).
        augment: random augmentation of the training images (:mod:`defi1.detection.augment`).
        augmentation: the augmentation settings: an :class:`AugmentationSettings`, ``None`` (darknet's defaults),
            a dict of fields changed from the resolved default, or ``"auto"`` (:data:`LIGHT_AUGMENTATION` from
            scratch, darknet's with pretrained weights).
        repeat: passes over the training images per epoch (small datasets: fewer checkpoints and validations).
        anchors: ``None`` (the architecture's COCO anchors), ``"kmeans"`` (k-means on the training boxes), or an
            ``(A, 2)`` array of ``[width, height]`` pixels; built-in models only. ``"auto"``: k-means from scratch
            (built-in models), COCO's with pretrained weights.
        learning_rate_schedule: ``"plateau"``: the stage's rate, multiplied by ``reduce_lr_factor`` after
            ``reduce_lr_patience`` epochs without improvement; ``"cosine"``: a linear warm-up over ``warmup_epochs``,
            then a cosine decay to ``final_learning_rate_fraction`` of the rate at the end of the stage (or of
            ``max_time_s``, whichever comes first: a time-limited run still ends on its low rates). ``"auto"``:
            cosine from scratch, and from pretrained weights when ``max_time_s`` is set (the budget is known);
            plateau from pretrained weights without a time limit.
        warmup_epochs: length of the cosine schedule's linear warm-up, in epochs (fractions allowed).
        final_learning_rate_fraction: the cosine schedule's last rate, as a fraction of the stage's rate.
        ema_momentum: keep an exponential moving average of the weights (Keras ``use_ema``) with this momentum and
            validate and checkpoint with the averaged weights (``keras.callbacks.SwapEMAWeights``); ``None``: off.
            Averaging smooths the last steps' noise: short runs gain most (0.99 averages ~100 steps).
        early_stopping_patience: epochs without validation improvement before a stage ends (``0`` disables); what
            counts as improvement: :meth:`stopping_monitor`.
        reduce_lr_patience: epochs without improvement before the learning rate is multiplied by
            ``reduce_lr_factor`` (``0`` disables).
        max_boxes: ground-truth boxes per image kept for the loss's ignore mask.
        assign_threshold: anchors whose shape IoU with a box exceeds this are responsible for it besides the best
            one (darknet's ``[yolo] iou_thresh``; 1.0, YOLOv3's rule: the best anchor only). More positives per box
            speed up learning from scratch; YOLOv4's cfgs use 0.213.
        box_weighting: weight of the loss's box terms (:class:`defi1.yolo.loss.YoloLoss`): ``"darknet"``
            (``2 - w * h``: a small box counts up to twice as much as one filling the image) or ``"uniform"``.
        box_loss: the loss's box term: ``"darknet"`` (centre cross-entropy and log-size squared error) or
            ``"ciou"`` (``1 - CIoU`` of the decoded box, :func:`defi1.yolo.loss.complete_iou`).
        batchnorm_momentum: override the momentum of every batch normalisation's moving statistics (darknet and
            the builders use 0.99, right for long runs; a run of a few hundred steps needs ~0.9, or the statistics
            used at inference still lag far behind those the weights were trained with).
        workers, use_multiprocessing: parallel batch loading (``keras.utils.PyDataset``).
        seed: seeds weights initialisation, shuffling and augmentation.
        steps_per_epoch: batches per epoch (default: the whole training split).
        max_time_s: stop once training has run this many seconds, the current epoch cut short (``None``: no limit).
        best_metric: what ``best.keras`` is chosen on: ``"map50-95"`` (default), ``"map50"`` (validation mAP, see
            ``validation_map``) or ``"val_loss"``. Without a validation split, the training loss.
        validation_map: measure the validation split's map50 and map50-95 after every epoch (logged as
            ``val_map50``, ``val_map50_95``, with precision and recall at the best-F1 confidence); ``False``: losses
            only (``best_metric`` then falls back to ``val_loss``).
        verbose: Keras ``fit`` verbosity (``"auto"``: progress bars).
        jit_compile: Keras ``compile`` option; ``"auto"`` means XLA on accelerators and no XLA on CPUs (where
            compiling the YOLO graph costs minutes, once per input size).

    Fields whose default is ``"auto"`` (those of :data:`FROM_SCRATCH_RECIPE`) are resolved by :meth:`resolved`.
    """

    data: str | Path
    model: str = "yolov3-tiny"
    weights: str | Path | None = None
    input_size: int = 416
    epochs: int = 50
    freeze_epochs: int | None = None
    batch_size: int = 8
    learning_rate: float | str = AUTO
    fine_tune_learning_rate: float = 1e-3
    out_dir: str | Path = "runs/detect/train"
    resume: bool = False
    exist_ok: bool = False
    mixed_precision: bool = False
    multi_scale: bool = False
    multi_scale_sizes: tuple = MULTI_SCALE_SIZES
    distribute: bool = False
    augment: bool = True
    augmentation: object = AUTO
    repeat: int = 1
    anchors: object = AUTO
    learning_rate_schedule: str = AUTO
    warmup_epochs: float | str = AUTO
    final_learning_rate_fraction: float = 0.01
    ema_momentum: float | str | None = AUTO
    early_stopping_patience: int = 10
    reduce_lr_patience: int = 3
    reduce_lr_factor: float = 0.1
    max_boxes: int = 100
    assign_threshold: float | str = AUTO
    box_weighting: str = "darknet"
    box_loss: str = "darknet"
    batchnorm_momentum: float | str | None = AUTO
    workers: int = 1
    use_multiprocessing: bool = False
    seed: int = 0
    steps_per_epoch: int | None = None
    max_time_s: float | None = None
    best_metric: str = "map50-95"
    validation_map: bool = True
    verbose: object = "auto"
    jit_compile: object = "auto"

    @property
    def pretrained(self) -> bool:
        """Whether training starts from trained weights (``weights``, or a ``.keras`` model to continue)."""
        return self.weights not in (None, "", "none") or str(self.model).endswith(".keras")

    def resolved(self) -> TrainingSettings:
        """A copy with every ``"auto"`` field set: :data:`FROM_SCRATCH_RECIPE`'s value from scratch,
        :data:`PRETRAINED_DEFAULTS`' with pretrained weights, except the cosine schedule when ``max_time_s`` is set
        (k-means anchors only for the built-in models, whose anchors can be replaced). A dict ``augmentation``
        changes fields of the resolved default."""
        defaults = PRETRAINED_DEFAULTS if self.pretrained else FROM_SCRATCH_RECIPE
        changes = {key: value for key, value in defaults.items() if _is_auto(getattr(self, key))}
        if self.pretrained and "learning_rate_schedule" in changes and self.max_time_s is not None:
            changes["learning_rate_schedule"] = "cosine"  # a known budget: decay to its end
        if changes.get("anchors") == "kmeans" and str(self.model) not in BUILT_IN_MODELS + ("yolov3_tiny",):
            changes["anchors"] = None
        augmentation = changes.get("augmentation", self.augmentation)
        if isinstance(augmentation, dict):
            base = defaults["augmentation"] or AugmentationSettings()
            changes["augmentation"] = dataclasses.replace(base, **augmentation)
        return dataclasses.replace(self, **changes)

    def resolved_freeze_epochs(self) -> int:
        """``freeze_epochs``, with ``None`` resolved (:data:`PRETRAINED_FREEZE_EPOCHS` with pretrained weights, 0
        without), capped at ``epochs``."""
        if self.freeze_epochs is None:
            return min(PRETRAINED_FREEZE_EPOCHS if self.pretrained else 0, self.epochs)
        return min(int(self.freeze_epochs), self.epochs)

    def best_monitor(self, has_validation: bool) -> tuple[str, str]:
        """``(logged quantity, "min" or "max")`` that chooses ``best.keras``: :data:`BEST_METRICS`' entry of
        ``best_metric``; ``val_loss`` when the validation mAP is off, the training loss without validation."""
        if not has_validation:
            return "loss", "min"
        if not self.validation_map:
            return "val_loss", "min"
        return BEST_METRICS[self.best_metric]

    def stopping_monitor(self, has_validation: bool) -> tuple[str, str]:
        """``(logged quantity, "min" or "max")`` that early stopping watches. With the cosine schedule, the one that
        chooses ``best.keras`` (:meth:`best_monitor`): the run's gains come as the rate decays, and meanwhile the
        validation loss rises and falls with the rate (on BCCD it stopped a 30-minute run after 17 minutes, halfway
        down the decay, while the validation map50-95 was still rising). With the plateau schedule, the smooth
        validation loss that its cuts watch; the training loss without validation."""
        if not has_validation:
            return "loss", "min"
        if self.learning_rate_schedule == "cosine":
            return self.best_monitor(True)
        return "val_loss", "min"

    def check(self):
        """Raise ``ValueError`` on impossible settings (``"auto"`` fields are checked once :meth:`resolved`)."""
        if any(_is_auto(getattr(self, key)) for key in FROM_SCRATCH_RECIPE):
            self.resolved().check()
            return
        if self.box_weighting not in BOX_WEIGHTINGS:
            raise ValueError(f"box_weighting must be one of {', '.join(BOX_WEIGHTINGS)}, got {self.box_weighting!r}")
        if self.box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {', '.join(BOX_LOSSES)}, got {self.box_loss!r}")
        if self.best_metric not in BEST_METRICS:
            raise ValueError(f"best_metric must be one of {', '.join(BEST_METRICS)}, got {self.best_metric!r}")
        if self.input_size <= 0 or self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {self.input_size}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if self.freeze_epochs is not None and self.freeze_epochs < 0:
            raise ValueError(f"freeze_epochs must be >= 0, got {self.freeze_epochs}")
        if self.learning_rate <= 0 or self.fine_tune_learning_rate <= 0:
            raise ValueError("learning rates must be positive")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(f"learning_rate_schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, got "
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

    def stages(self) -> list[tuple]:
        """``[(first_epoch, end_epoch, learning_rate, backbone_frozen, stage_number)]`` of the run: stage 1 with the
        backbone frozen for :meth:`resolved_freeze_epochs` epochs, then stage 2 (or one stage, nothing frozen)."""
        freeze = self.resolved_freeze_epochs()
        learning_rate = self.resolved().learning_rate
        if freeze == 0:
            return [(0, self.epochs, learning_rate, False, 1)]
        stages = [(0, freeze, learning_rate, True, 1)]
        if self.epochs > freeze:
            stages.append((freeze, self.epochs, self.fine_tune_learning_rate, False, 2))
        return stages

    def record(self) -> dict:
        """The settings as JSON-ready values (what ``state.json`` keeps): numbers, strings and ``None`` as they are,
        paths as text, anything else as its ``repr``."""
        record = {}
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                record[key] = value
            elif isinstance(value, Path):
                record[key] = str(value)
            else:
                record[key] = repr(value)
        return record


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO
