"""Keras callbacks of detection training: stop on a NaN loss (:class:`NanGuard`) or a time limit
(:class:`TimeLimit`), the warm-up + cosine learning rate (:class:`CosineLearningRate`), and the validation mAP after
every epoch (:class:`ValidationMap`). Checkpoints are :class:`defi1.runs.RunCheckpoint`'s.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np


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
        self.max_time_s = float(max_time_s)
        self.started = time.monotonic()
        self.reached = False

    def fraction_spent(self) -> float:
        """The share of the budget spent so far (may exceed 1)."""
        return (time.monotonic() - self.started) / self.max_time_s if self.max_time_s > 0 else 1.0

    def on_train_batch_end(self, batch, logs=None):
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


class ValidationMap(keras.callbacks.Callback):
    """After every epoch, the model's mAP on the validation images, added to the epoch's logs so that the progress
    line, the CSV log, the checkpoint (``best.keras`` chosen on it) and the curves see it::

        val_map50, val_map50_95       # defi1.detection.metrics, as `detect evaluate` computes them
        val_precision, val_recall     # at the confidence threshold of the best F1

    The detections are those of ``detect evaluate`` (:class:`defi1.yolo.detector.Detector`: letterbox, confidence
    threshold 0.005, NMS IoU 0.45, best class per box), with the network run by the compiled ``predict_on_batch``
    of the model being trained (with the averaged weights when ``keras.callbacks.SwapEMAWeights`` precedes this
    callback). The images are read again each epoch (nothing kept in memory); an epoch whose loss is not finite is
    not measured. Cost: see :attr:`seconds` (tiny-YOLOv3 at 160 px, 40 validation images, 2 CPU cores: 2 to 4 s,
    15 % of a 240-image epoch; ``benchmarks/bench_validation_map.py``).

    Args:
        samples: the validation :class:`~defi1.detection.formats.common.Sample` list. class_names: the dataset's.
        input_size: the network input side. batch_size: images per forward pass.
        eager: call the model directly instead of ``predict_on_batch`` (what a distributed run needs: TensorFlow's
            ``MirroredStrategy`` cannot trace ``predict_on_batch`` from inside ``fit``).

    Attributes:
        seconds: the wall time of each measurement. last_metrics: the full metrics dict of the last one.
    """

    KEYS = ("val_map50", "val_map50_95", "val_precision", "val_recall")

    def __init__(self, samples, class_names, *, input_size, batch_size=8, conf_threshold=0.005, iou_threshold=0.45,
                 eager=False):
        super().__init__()
        self.eager = eager
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.input_size = input_size
        self.batch_size = batch_size
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.seconds = []
        self.last_metrics = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not math.isfinite(float(logs.get("loss", 0.0))):
            return
        started = time.perf_counter()
        metrics = self.evaluate()
        self.seconds.append(time.perf_counter() - started)
        self.last_metrics = metrics
        best = metrics["best_f1"]
        for key, value in zip(self.KEYS, (metrics["map50"], metrics["map50_95"], best["precision"], best["recall"])):
            logs[key] = float(value)

    def evaluate(self) -> dict:
        """:func:`defi1.detection.evaluation.evaluate_split` of the model as it is now on the samples."""
        from defi1.detection.evaluation import evaluate_split
        from defi1.yolo.detector import Detector

        detector = Detector(self.model, input_size=self.input_size, conf_threshold=self.conf_threshold,
                            iou_threshold=self.iou_threshold, batch_size=self.batch_size, fold_batchnorm=False,
                            forward=_PredictOnBatch(self.model, eager=self.eager))
        metrics, _, _ = evaluate_split(detector, self.samples, self.class_names, batch_size=self.batch_size)
        return metrics


class _PredictOnBatch:
    """The network's raw heads through Keras's compiled ``predict_on_batch`` (traced once per batch shape), as
    float32 numpy arrays."""

    def __init__(self, model, eager=False):
        self.model = model
        self.eager = eager

    def __call__(self, batch):
        if self.eager:
            outputs = self.model(keras.ops.convert_to_tensor(batch), training=False)
            outputs = [keras.ops.convert_to_numpy(output) for output in (outputs if isinstance(outputs, (list, tuple))
                                                                          else [outputs])]
        else:
            outputs = self.model.predict_on_batch(batch)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [np.asarray(output, dtype=np.float32) for output in outputs]
