"""Speed of a detector: model-only and end-to-end FPS and latency, the library behind ``defi1 bench``.

* model only: the forward pass alone on one pre-processed ``(1, input, input, 3)`` batch, called ``frames`` times
  after ``warmup`` calls, half just before the end-to-end run and half just after it (:func:`time_forward_around`),
  in the configuration the stream uses (:func:`time_model_around`): with two model stages, two engine instances
  called at the same time, and also one call at a time; end to end is compared with the faster of the two;
* end to end: :func:`defi1.realtime.stream.run_stream` over a video (decode, letterbox, model, decode + NMS,
  drawing), every frame by default (``mode="drop"`` plays the file in real time and counts dropped frames).

Without a video, a generated 640×480 one (:func:`defi1.realtime.video.write_synthetic_video`) is used.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from defi1.environment import cpu_flags, describe, load_average
from defi1.realtime.engines import load_detector
from defi1.realtime.stream import latency_percentiles, model_stage_forwards, run_stream

DEFAULT_VIDEO_SIZE = (640, 480)


def _forward_latencies(forward, batch, *, calls: int, warmup: int) -> tuple[float, list[float], float]:
    """``warmup`` calls of each instance (the very first one timed: tracing and compilation), then ``calls`` timed
    calls. ``forward``: one callable (calls one after the other), or a list of instances called at the same time,
    each from its own thread, taking the calls in turn (an exception in one of them is raised here once all have
    stopped). Returns ``(warm-up ms, latencies in ms, seconds)``, the seconds being the sum of the latencies for one
    callable and the wall time of the timed calls for several."""
    instances = list(forward) if isinstance(forward, (list, tuple)) else [forward]
    started = time.perf_counter()
    instances[0](batch)
    warmup_ms = (time.perf_counter() - started) * 1000.0
    for instance in instances[1:]:
        instance(batch)
    for _ in range(max(0, warmup - 1)):
        for instance in instances:
            instance(batch)
    latencies: list[float] = []
    errors: list[BaseException] = []

    def timed_calls(instance, count):
        try:
            for _ in range(count):
                started = time.perf_counter()
                instance(batch)
                latencies.append((time.perf_counter() - started) * 1000.0)  # list.append is atomic
        except BaseException as error:  # raised below, in the calling thread
            errors.append(error)

    started = time.perf_counter()
    if len(instances) == 1:
        timed_calls(instances[0], calls)
    else:
        threads = [threading.Thread(target=timed_calls, args=(instance, calls // len(instances)
                                                              + (index < calls % len(instances))))
                   for index, instance in enumerate(instances)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall_seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return warmup_ms, latencies, sum(latencies) / 1000.0 if len(instances) == 1 else wall_seconds


def _forward_figures(latencies, seconds: float, warmup_ms: float) -> dict:
    figures = {"fps": len(latencies) / seconds if seconds > 0 else 0.0, "frames": len(latencies),
               "warmup_ms": warmup_ms}
    figures.update(latency_percentiles(latencies, prefix="latency_ms"))
    return figures


def time_forward(forward, batch: np.ndarray, *, frames: int = 100, warmup: int = 5) -> dict:
    """Call ``forward(batch)`` ``warmup`` times, then ``frames`` timed times. Returns ``fps`` (``1000 / mean``),
    ``latency_ms_median``, ``_p90``, ``_p99`` and ``warmup_ms`` (the first call: tracing and compilation).

    ``forward`` may be a list of engine instances (:func:`~defi1.realtime.stream.model_stage_forwards`): they are
    then called at the same time, one thread each, and ``fps`` is the calls completed per second of wall time."""
    warmup_ms, latencies, seconds = _forward_latencies(forward, batch, calls=frames, warmup=warmup)
    return _forward_figures(latencies, seconds, warmup_ms)


def time_forward_around(forward, batch: np.ndarray, task, *, frames: int = 100, warmup: int = 5):
    """Model-only figures of ``forward(batch)`` (as :func:`time_forward`) measured around ``task()``: ``warmup``
    calls, the first half of the ``frames`` timed calls, ``task()``, one more warm-up call, the second half.

    A shared machine's speed drifts within seconds; measured on both sides of an end-to-end run, the model-only
    figure belongs to the same moment, and end-to-end / model-only compares like with like. Returns ``(figures,
    task's result)``: the figures of :func:`time_forward` over all the timed calls, plus ``fps_before`` and
    ``fps_after`` (each half's own rate).
    """
    warmup_ms, before, seconds_before = _forward_latencies(forward, batch, calls=frames - frames // 2, warmup=warmup)
    result = task()
    _, after, seconds_after = _forward_latencies(forward, batch, calls=frames // 2, warmup=1)
    figures = _forward_figures(before + after, seconds_before + seconds_after, warmup_ms)
    figures["fps_before"] = len(before) / seconds_before if seconds_before > 0 else 0.0
    figures["fps_after"] = len(after) / seconds_after if after and seconds_after > 0 else figures["fps_before"]
    return figures, result


def time_model_around(forward, batch: np.ndarray, task, *, mode: str = "every", model_workers: int | None = None,
                      frames: int = 100, warmup: int = 5):
    """Model-only figures of the engine ``forward`` in the configuration a stream in ``mode`` runs it
    (:func:`~defi1.realtime.stream.model_stage_forwards`), measured around ``task(model_workers)`` (which runs that
    stream), as :func:`time_forward_around`.

    With one model stage, the figures are ``forward``'s, called one frame at a time. With several, the stages' own
    instances are timed at the same time, and ``forward`` one call at a time as well, outside (before the first and
    after the last): the stream is compared with the faster of the two, so that running frames in parallel cannot
    flatter end-to-end / model-only.

    Returns ``(figures, task's result)``: ``figures`` as :func:`time_forward_around` gives for the stages'
    configuration, plus ``model_workers``, ``one_at_a_time`` (``forward``'s own figures, ``None`` with one stage) and
    ``best_fps`` (the larger ``fps``).
    """
    forwards = model_stage_forwards(forward, mode, model_workers=model_workers)
    if len(forwards) == 1:
        figures, result = time_forward_around(forward, batch, lambda: task(1), frames=frames, warmup=warmup)
        return dict(figures, model_workers=1, one_at_a_time=None, best_fps=figures["fps"]), result
    one_at_a_time, (figures, result) = time_forward_around(
        forward, batch, lambda: time_forward_around(forwards, batch, lambda: task(len(forwards)), frames=frames,
                                                    warmup=warmup), frames=frames, warmup=warmup)
    return dict(figures, model_workers=len(forwards), one_at_a_time=one_at_a_time,
                best_fps=max(figures["fps"], one_at_a_time["fps"])), result


def benchmark(model, *, source=None, engine: str = "auto", input_size: int | None = None, frames: int = 100,
              warmup: int = 5, mode: str = "every", mixed_precision: bool = False, work_dir=None,
              model_workers: int | None = None) -> dict:
    """Measure a detector (a ``.keras`` path or a Keras model) model-only and end to end.

    Args:
        source: a video file (default: a generated 640×480 video of ``frames + 1`` frames in ``work_dir`` or a
            temporary folder).
        engine: ``"auto"`` (what the commands use by default), ``"keras"``, ``"opencv"`` or ``"onnxruntime"``
            (:func:`defi1.realtime.engines.load_detector`).
        input_size: network input side (multiple of 32); default the model's own.
        frames: frames timed in each measurement.
        mode: ``"every"`` (throughput, nothing dropped) or ``"drop"`` (the file played in real time).
        model_workers: frames in the model at once (default
            :func:`~defi1.realtime.stream.default_model_workers`, as ``detect stream``).
    Returns:
        a dictionary: ``model_only`` (:func:`time_model_around`: fps, latency percentiles, ``model_workers``,
        ``one_at_a_time``, ``best_fps``), ``end_to_end`` (the stream summary: fps, latency and model-time percentiles,
        frames dropped), ``end_to_end_over_model`` (end-to-end FPS over ``best_fps``), ``engine`` (the one used),
        ``engine_line`` (:func:`~defi1.realtime.engines.describe_engine`), ``threads``, ``model_workers``,
        ``cpu_flags``, ``load`` (``/proc/loadavg``), ``input_size``, ``source`` and ``environment`` (backend, device,
        versions).
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
        model_only, stats = time_model_around(
            forward, batch, lambda workers: run_stream(str(source), detector, forward=forward, max_frames=frames + 1,
                                                       mode=mode, model_workers=workers),
            mode=mode, model_workers=model_workers, frames=frames, warmup=warmup)
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
        "model_workers": model_only["model_workers"],
        "cpu_flags": cpu_flags(),
        "load": load_average(),
        "mixed_precision": bool(mixed_precision),
        "input_size": int(input_size),
        "source": str(source) if temporary is None else f"generated {DEFAULT_VIDEO_SIZE[0]}x{DEFAULT_VIDEO_SIZE[1]}",
        "model_only": model_only,
        "end_to_end": end_to_end,
        "end_to_end_over_model": (end_to_end["fps_end_to_end"] / model_only["best_fps"]
                                  if model_only["best_fps"] else 0.0),
        "environment": describe(),
    }


def format_benchmark(result: dict) -> str:
    """A plain-text table of :func:`benchmark`'s result."""
    model_only, end_to_end, environment = result["model_only"], result["end_to_end"], result["environment"]
    workers = model_only.get("model_workers", 1)

    def model_row(label, figures):
        return (label, f"{figures['fps']:.1f}", f"{figures['latency_ms_median']:.1f}",
                f"{figures['latency_ms_p90']:.1f}", f"{figures['latency_ms_p99']:.1f}")

    rows = [("", "FPS", "median ms", "p90 ms", "p99 ms"),
            model_row("model only" + (f", {workers} frames at once" if workers > 1 else ""), model_only)]
    if model_only.get("one_at_a_time"):
        rows.append(model_row("model only, 1 frame at a time", model_only["one_at_a_time"]))
    rows.append(("end to end", f"{end_to_end['fps_end_to_end']:.1f}", f"{end_to_end['latency_ms_median']:.1f}",
                 f"{end_to_end['latency_ms_p90']:.1f}", f"{end_to_end['latency_ms_p99']:.1f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) if column else cell.ljust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += [
        f"end-to-end / model-only{' (the faster model-only row)' if model_only.get('one_at_a_time') else ''}: "
        f"{result['end_to_end_over_model']:.2f}; frames processed "
        f"{end_to_end['frames_processed']}, dropped {end_to_end['frames_dropped']} ({end_to_end['mode']} mode)",
        f"model {result['model']}, input {result['input_size']}, source {result['source']}",
        result["engine_line"] + (f"; {workers} model stages, each on its own instance of the engine"
                                 if workers > 1 else ""),
        f"CPU flags: {' '.join(result['cpu_flags']) or 'unknown'}; load average {result['load']}",
        f"device {environment['device']}, backend {environment['backend']}, {environment['machine']}",
        "versions: " + ", ".join(f"{name} {version}" for name, version in environment["versions"].items()),
    ]
    return "\n".join(lines)
