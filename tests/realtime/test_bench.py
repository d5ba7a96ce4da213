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


class RecordingEngine:
    """An engine that records its calls: ``(name, thread, start, end)`` in ``events`` (shared by its replicas,
    named ``stage-0``, ``stage-1`` ...); each call lasts ``call_s``."""

    engine = "onnxruntime"
    providers = ["CPUExecutionProvider"]

    def __init__(self, name="one", events=None, call_s=0.0):
        self.name, self.events, self.call_s = name, events if events is not None else [], call_s

    def __call__(self, batch):
        import threading
        import time

        started = time.perf_counter()
        time.sleep(self.call_s)
        self.events.append((self.name, threading.get_ident(), started, time.perf_counter()))
        return [batch]

    def replicas(self, count):
        return [RecordingEngine(f"stage-{index}", self.events, self.call_s) for index in range(count)]


def test_time_forward_calls_several_instances_at_the_same_time():
    events = []
    instances = RecordingEngine(events=events, call_s=0.02).replicas(2)
    figures = time_forward(instances, np.zeros((1, 8, 8, 3), np.float32), frames=7, warmup=2)
    warmup, timed = events[:4], events[4:]
    assert [name for name, *_ in warmup] == ["stage-0", "stage-1"] * 2  # each instance warmed up
    assert figures["frames"] == len(timed) == 7
    assert sorted(name for name, *_ in timed) == ["stage-0"] * 4 + ["stage-1"] * 3  # the calls taken in turn
    assert len({thread for _, thread, *_ in timed}) == 2  # one thread each
    first = [(start, end) for name, _, start, end in timed if name == "stage-0"]
    second = [(start, end) for name, _, start, end in timed if name == "stage-1"]
    assert any(start_a < end_b and start_b < end_a for start_a, end_a in first for start_b, end_b in second)
    assert figures["fps"] > 0


def test_time_model_around_times_the_stages_and_one_at_a_time_around_the_stream():
    from defi1.realtime.bench import time_model_around

    events, tasks = [], []
    engine = RecordingEngine(events=events)

    def task(workers):
        tasks.append(workers)
        events.append(("task",))
        return "stream"
    figures, result = time_model_around(engine, np.zeros((1, 8, 8, 3), np.float32), task, model_workers=2,
                                        frames=6, warmup=2)
    names = [event[0] for event in events]
    assert result == "stream" and tasks == [2]
    # one at a time: 2 warm-up + 3 timed calls; the two stages: 2 x 2 warm-up + 3 timed; the stream; the stages:
    # 2 warm-up + 3 timed; one at a time: 1 warm-up + 3 timed
    task_at = names.index("task")
    assert names[:5] == ["one"] * 5 and names[-4:] == ["one"] * 4
    assert sorted(names[5:task_at]) == ["stage-0"] * 4 + ["stage-1"] * 3
    assert sorted(names[task_at + 1:-4]) == ["stage-0"] * 3 + ["stage-1"] * 2
    assert figures["model_workers"] == 2 and figures["frames"] == 6 and figures["one_at_a_time"]["frames"] == 6
    assert figures["best_fps"] == max(figures["fps"], figures["one_at_a_time"]["fps"])

    events.clear()
    figures, _ = time_model_around(engine, np.zeros((1, 8, 8, 3), np.float32), task, model_workers=1, frames=4,
                                   warmup=1)
    assert tasks == [2, 1] and figures["one_at_a_time"] is None and figures["best_fps"] == figures["fps"]
    assert [event[0] for event in events] == ["one"] * 3 + ["task"] + ["one"] * 3


def test_an_engine_error_while_timing_instances_at_once_is_raised():
    class FailingEngine(RecordingEngine):
        def __call__(self, batch):
            if self.name == "stage-1" and sum(name == "stage-1" for name, *_ in self.events) == 3:
                raise RuntimeError("stage-1 failed at its fourth call")
            return super().__call__(batch)

        def replicas(self, count):
            return [FailingEngine(f"stage-{index}", self.events) for index in range(count)]
    with pytest.raises(RuntimeError, match="stage-1 failed at its fourth call"):
        time_forward(FailingEngine().replicas(2), np.zeros((1, 8, 8, 3), np.float32), frames=8, warmup=2)
