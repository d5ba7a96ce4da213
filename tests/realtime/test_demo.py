"""Test of defi1.realtime.demo (Part 3 of ``defi1 demo``)."""

import json

import pytest

from defi1.realtime.demo import run_realtime_demo
from defi1.realtime.video import video_properties


@pytest.mark.smoke
def test_smoke_realtime_demo(tmp_path):
    outcome = run_realtime_demo(tmp_path, smoke=True, input_size=128)
    assert outcome["metrics"]["frames"] == 20 and outcome["metrics"]["fps_end_to_end"] > 0
    assert video_properties(tmp_path / "annotated.mp4")["frames"] == 20
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["metrics"]["fps_model"] == outcome["metrics"]["fps_model"]
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"
