"""Tests of defi1.realtime.bench (no timed assertions: counts, structure and the table)."""

import numpy as np
import pytest

from defi1.realtime.bench import benchmark, format_benchmark, time_forward, time_forward_around

pytestmark = pytest.mark.backend_agnostic  # numpy / OpenCV / threads only, or the backend's compiled pass


def test_time_forward_calls_and_figures():
    calls = []

    def forward(batch):
        calls.append(batch.shape)
        return [batch]
    figures = time_forward(forward, np.zeros((1, 8, 8, 3), np.float32), frames=7, warmup=3)
    assert len(calls) == 10 and figures["frames"] == 7
    assert figures["latency_ms_median"] <= figures["latency_ms_p90"] <= figures["latency_ms_p99"]
    assert figures["fps"] > 0 and figures["warmup_ms"] >= 0


def test_time_forward_around_a_task_times_half_before_and_half_after():
    events = []

    def forward(batch):
        events.append("forward")
        return [batch]

    def task():
        events.append("task")
        return "task result"
    figures, result = time_forward_around(forward, np.zeros((1, 8, 8, 3), np.float32), task, frames=7, warmup=2)
    assert result == "task result" and figures["frames"] == 7
    # 2 warm-up calls and 4 timed ones, the task, 1 warm-up call and 3 timed ones
    assert events == ["forward"] * 6 + ["task"] + ["forward"] * 4
    assert figures["fps_before"] > 0 and figures["fps_after"] > 0 and figures["fps"] > 0


@pytest.mark.smoke
def test_smoke_benchmark_on_generated_video(mini_model_path, tmp_path):
    result = benchmark(mini_model_path, input_size=64, frames=6, warmup=1, work_dir=tmp_path)
    assert result["end_to_end"]["frames_processed"] == 7 and result["end_to_end"]["frames_dropped"] == 0
    assert result["model_only"]["frames"] == 6 and result["input_size"] == 64
    assert result["environment"]["backend"] in ("tensorflow", "jax", "torch")
    table = format_benchmark(result)
    assert table.splitlines()[0].split() == ["FPS", "median", "ms", "p90", "ms", "p99", "ms"]
    assert "model only" in table and "end to end" in table and "device " in table


def test_format_benchmark_known_figures():
    result = {"model": "m.keras", "engine": "onnxruntime", "input_size": 416, "source": "generated 640x480",
              "model_only": {"fps": 40.0, "latency_ms_median": 25.0, "latency_ms_p90": 26.0, "latency_ms_p99": 30.0},
              "end_to_end": {"fps_end_to_end": 36.0, "latency_ms_median": 55.0, "latency_ms_p90": 60.0,
                             "latency_ms_p99": 70.0, "frames_processed": 101, "frames_dropped": 0, "mode": "every"},
              "end_to_end_over_model": 0.9, "engine_line": "engine: onnxruntime, 2 threads (--engine)",
              "cpu_flags": ["avx2", "fma"], "load": "1.00 0.50 0.20",
              "environment": {"device": "CPU (2 cores, x86_64)", "backend": "tensorflow",
                              "machine": "Linux x86_64, 2 CPU cores", "versions": {"keras": "3.15.1"}}}
    lines = format_benchmark(result).splitlines()
    assert lines[2].split() == ["model", "only", "40.0", "25.0", "26.0", "30.0"]
    assert lines[3].split() == ["end", "to", "end", "36.0", "55.0", "60.0", "70.0"]
    assert lines[4].startswith("end-to-end / model-only: 0.90; frames processed 101, dropped 0 (every mode)")
    assert lines[6] == "engine: onnxruntime, 2 threads (--engine)"
    assert lines[7] == "CPU flags: avx2 fma; load average 1.00 0.50 0.20"
