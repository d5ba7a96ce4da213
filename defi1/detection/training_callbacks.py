"""Keras callbacks of detection training: stop on a NaN loss (:class:`NanGuard`) or a time limit
(:class:`TimeLimit`), and the warm-up + cosine learning rate (:class:`CosineLearningRate`). Checkpoints are
:class:`defi1.runs.RunCheckpoint`'s.
"""

from __future__ import annotations

import math
import time

import keras


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
