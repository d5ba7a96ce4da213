"""Tests of defi1.detection.training_callbacks: the warm-up + cosine learning rate at known steps."""

import pytest

from defi1.detection.training_callbacks import CosineLearningRate

pytestmark = pytest.mark.backend_agnostic


def test_cosine_schedule_values():
    schedule = CosineLearningRate(1e-3, total_steps=110, warmup_steps=10, final_fraction=0.01)
    assert schedule.rate(0) == pytest.approx(1e-4)  # warm-up: (step + 1) / 10 of the peak
    assert schedule.rate(9) == pytest.approx(1e-3)
    assert schedule.rate(10) == pytest.approx(1e-3)  # decay starts at the peak
    assert schedule.rate(60) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half way: the mean of peak and end
    assert schedule.rate(110) == pytest.approx(1e-5)
    assert schedule.rate(500) == pytest.approx(1e-5)
    # A time budget spent faster than the steps moves the schedule on: 3/4 of the time is cos(3 pi / 4).
    assert schedule.rate(20, time_fraction=0.75) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 - 0.5 ** 0.5))
