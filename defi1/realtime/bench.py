"""Speed of a detector: model-only and end-to-end FPS and latency, the library behind ``defi1 bench``.

* model only: the forward pass alone on one pre-processed ``(1, input, input, 3)`` batch, called ``frames`` times
  after ``warmup`` calls, half just before the end-to-end run and half just after it (:func:`time_forward_around`);
* end to end: :func:`defi1.realtime.stream.run_stream` over a video (decode, letterbox, model, decode + NMS,
  drawing), every frame by default (``mode="drop"`` plays the file in real time and counts dropped frames).

Without a video, a generated 640×480 one (:func:`defi1.realtime.video.write_synthetic_video`) is used.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from defi1.environment import cpu_flags, describe, load_average
from defi1.realtime.engines import load_detector
from defi1.realtime.stream import latency_percentiles, run_stream

DEFAULT_VIDEO_SIZE = (640, 480)


def _forward_latencies(forward, batch, *, calls: int, warmup: int) -> tuple[float, list[float]]:
    """``warmup`` calls (the first one timed: tracing and compilation), then ``calls`` timed calls, in ms."""
    started = time.perf_counter()
    forward(batch)
    warmup_ms = (time.perf_counter() - started) * 1000.0
    for _ in range(max(0, warmup - 1)):
        forward(batch)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        forward(batch)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return warmup_ms, latencies


def _forward_figures(latencies, warmup_ms: float) -> dict:
    figures = {"fps": 1000.0 / float(np.mean(latencies)), "frames": len(latencies), "warmup_ms": warmup_ms}
    figures.update(latency_percentiles(latencies, prefix="latency_ms"))
    return figures


def time_forward(forward, batch: np.ndarray, *, frames: int = 100, warmup: int = 5) -> dict:
    """Call ``forward(batch)`` ``warmup`` times, then ``frames`` timed times. Returns ``fps`` (``1000 / mean``),
    ``latency_ms_median``, ``_p90``, ``_p99`` and ``warmup_ms`` (the first call: tracing and compilation)."""
    warmup_ms, latencies = _forward_latencies(forward, batch, calls=frames, warmup=warmup)
    return _forward_figures(latencies, warmup_ms)


def time_forward_around(forward, batch: np.ndarray, task, *, frames: int = 100, warmup: int = 5):
    """Model-only figures of ``forward(batch)`` measured around ``task()``: ``warmup`` calls, the first half of the
    ``frames`` timed calls, ``task()``, one more warm-up call, the second half.

    A shared machine's speed drifts within seconds; measured on both sides of an end-to-end run, the model-only
    figure belongs to the same moment, and end-to-end / model-only compares like with like. Returns ``(figures,
    task's result)``: the figures of :func:`time_forward` over all the timed calls, plus ``fps_before`` and
    ``fps_after`` (each half's own rate).
    """
    warmup_ms, before = _forward_latencies(forward, batch, calls=frames - frames // 2, warmup=warmup)
    result = task()
    _, after = _forward_latencies(forward, batch, calls=frames // 2, warmup=1)
    figures = _forward_figures(before + after, warmup_ms)
    figures["fps_before"] = 1000.0 / float(np.mean(before))
    figures["fps_after"] = 1000.0 / float(np.mean(after)) if after else figures["fps_before"]
    return figures, result


def benchmark(model, *, source=None, engine: str = "auto", input_size: int | None = None, frames: int = 100,
              warmup: int = 5, mode: str = "every", mixed_precision: bool = False, work_dir=None) -> dict:
    """Measure a detector (a ``.keras`` path or a Keras model) model-only and end to end.

    Args:
        source: a video file (default: a generated 640×480 video of ``frames + 1`` frames in ``work_dir`` or a
            temporary folder).
        engine: ``"auto"`` (what the commands use by default), ``"keras"``, ``"opencv"`` or ``"onnxruntime"``
            (:func:`defi1.realtime.engines.load_detector`).
        input_size: network input side (multiple of 32); default the model's own.
        frames: frames timed in each measurement.
        mode: ``"every"`` (throughput, nothing dropped) or ``"drop"`` (the file played in real time).
    Returns:
        a dictionary: ``model_only`` (fps, latency percentiles), ``end_to_end`` (the stream summary: fps, latency and
        model-time percentiles, frames dropped), ``end_to_end_over_model`` (ratio of FPS), ``engine`` (the one
        used), ``engine_line`` (:func:`~defi1.realtime.engines.describe_engine`), ``threads``, ``cpu_flags``,
        ``load`` (``/proc/loadavg``), ``input_size``, ``source`` and ``environment`` (backend, device, versions).
    """
    from defi1.realtime.engines import describe_engine
    from defi1.realtime.video import synthetic_frame, write_synthetic_video

    detector = load_detector(model, input_size=input_size, engine=engine, mixed_precision=mixed_precision)
    forward = detector.forward
    input_size = detector.input_size[0]
    batch = detector.preprocess([synthetic_frame(0, width=DEFAULT_VIDEO_SIZE[0], height=DEFAULT_VIDEO_SIZE[1])])[0]
    temporary = None
    if source is None:
        folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="defi1-bench-"))
        temporary = folder if not work_dir else None
        source = write_synthetic_video(folder / "bench_640x480.mp4", frames=frames + 1,
                                       width=DEFAULT_VIDEO_SIZE[0], height=DEFAULT_VIDEO_SIZE[1])
    try:
        model_only, stats = time_forward_around(
            forward, batch, lambda: run_stream(str(source), detector, forward=forward, max_frames=frames + 1,
                                               mode=mode), frames=frames, warmup=warmup)
    finally:
        if temporary is not None:
            import shutil

            shutil.rmtree(temporary, ignore_errors=True)
    end_to_end = stats.summary()
    return {
        "model": str(model) if isinstance(model, (str, os.PathLike)) else model.name,
        "engine": detector.engine_choice["engine"],
        "engine_line": describe_engine(detector),
        "threads": getattr(forward, "threads", None) or os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "load": load_average(),
        "mixed_precision": bool(mixed_precision),
        "input_size": int(input_size),
        "source": str(source) if temporary is None else f"generated {DEFAULT_VIDEO_SIZE[0]}x{DEFAULT_VIDEO_SIZE[1]}",
        "model_only": model_only,
        "end_to_end": end_to_end,
        "end_to_end_over_model": end_to_end["fps_end_to_end"] / model_only["fps"] if model_only["fps"] else 0.0,
        "environment": describe(),
    }


def format_benchmark(result: dict) -> str:
    """A plain-text table of :func:`benchmark`'s result."""
    model_only, end_to_end, environment = result["model_only"], result["end_to_end"], result["environment"]
    rows = [
        ("", "FPS", "median ms", "p90 ms", "p99 ms"),
        ("model only", f"{model_only['fps']:.1f}", f"{model_only['latency_ms_median']:.1f}",
         f"{model_only['latency_ms_p90']:.1f}", f"{model_only['latency_ms_p99']:.1f}"),
        ("end to end", f"{end_to_end['fps_end_to_end']:.1f}", f"{end_to_end['latency_ms_median']:.1f}",
         f"{end_to_end['latency_ms_p90']:.1f}", f"{end_to_end['latency_ms_p99']:.1f}"),
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) if column else cell.ljust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += [
        f"end-to-end / model-only: {result['end_to_end_over_model']:.2f}; frames processed "
        f"{end_to_end['frames_processed']}, dropped {end_to_end['frames_dropped']} ({end_to_end['mode']} mode)",
        f"model {result['model']}, input {result['input_size']}, source {result['source']}",
        result["engine_line"],
        f"CPU flags: {' '.join(result['cpu_flags']) or 'unknown'}; load average {result['load']}",
        f"device {environment['device']}, backend {environment['backend']}, {environment['machine']}",
        "versions: " + ", ".join(f"{name} {version}" for name, version in environment["versions"].items()),
    ]
    return "\n".join(lines)
