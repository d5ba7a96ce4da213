"""Part 2 of ``defi1 demo`` (defi1.detection.demo): the full demo ends with a detector that works."""

import time

import pytest


@pytest.mark.slow
def test_the_full_demo_detector_reaches_map50_07_within_five_minutes(tmp_path):
    """Issue 11: a newcomer's first look at Part 2 is a detector that visibly works: test map50 >= 0.7 on the demo's
    shapes, its gallery written, in at most 5 minutes of Part 2 on 2 CPU cores (the training itself is time-limited;
    on a machine shared with other jobs the map50 is lower: benchmarks/RESULTS.md gives the figures and the load)."""
    from defi1.detection.demo import run_localisation_demo

    started = time.perf_counter()
    outcome = run_localisation_demo(tmp_path / "part2", verbose=0, log=lambda message: None)
    elapsed = time.perf_counter() - started
    assert outcome["metrics"]["map50"] >= 0.7, outcome["metrics"]
    assert elapsed <= 300, f"{elapsed:.0f} s"
    assert (tmp_path / "part2" / "evaluation" / "gallery.png").stat().st_size > 10_000
