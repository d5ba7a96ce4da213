"""Real-time detection on a stream of frames: :func:`run_stream`, the library behind ``defi1 detect stream``.

The work is a pipeline of threads, so that reading, pre-processing, the model and drawing overlap and the
end-to-end rate approaches the model's own::

    capture thread ──▶ preprocess thread ──▶ model thread ──────▶ caller's thread
    (newest frame,      (letterbox,            (one compiled call:   (postprocess: threshold + NMS,
     stale ones          scale to [0, 1])       forward + decode,     draw boxes, FPS and latency,
     dropped)                                   batch 1)              sinks, on_frame callback)

The slots between stages hold one item, so at most a handful of frames are in flight and the latency stays
bounded. The pre-processing stage takes a frame only when the model has taken the previous one (the freshest frame
in drop mode); the model stage starts its next frame as soon as it has one, without waiting for the caller's thread
to take the previous result, so that the engine is never idle while frames are ready.

With ``model_workers=2`` (the default in every-frame mode when ONNX Runtime or Keras computes on a CPU of at least 2
cores), two model stages take alternate frames, each on its own engine instance (:func:`default_model_workers`,
:func:`defi1.realtime.engines.parallel_forwards`), and the caller's thread puts the results back in frame order.
On 2 cores, one ONNX Runtime session on both cores synchronises its two threads at every layer; two one-thread
sessions on alternate frames do not: 58.3 FPS end to end against 51.0 with one stage (Keras: 46.8 against 40.1),
with a median latency of 52 ms against 39 ms (``benchmarks/RESULTS.md``, Part 3). Real time (drop mode, a camera)
keeps one model stage: there the latency of each frame counts, and the newest frame is the one to show.

Sinks and the ``on_frame`` callback run in the caller's thread: an exception there (``KeyboardInterrupt`` included)
stops the pipeline and propagates, after every sink has been closed (a recording keeps its frames). A
``KeyboardInterrupt`` (Ctrl-C, the way to stop a webcam) carries the figures so far as its ``stream_stats``
attribute (a :class:`StreamStats`), so that the caller can still report them.

The detector is a :class:`defi1.yolo.detector.Detector`, split into its stages (:class:`DetectorStages`), or any
object with ``detect(image) -> list[Detection]``, which then runs whole in the model thread.

When the network runs on the CPU with an engine other than OpenCV's (ONNX Runtime, Keras), that engine already uses
every core, so OpenCV's own work around it (colour conversion, letterbox resize, drawing, recording) runs on one
thread for the duration of the stream (``cv2.setNumThreads(1)``, process-wide, restored at the end): OpenCV's
thread pool only added CPU time, taken from the forward pass (:func:`host_opencv_threads`).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from defi1.realtime.sources import CaptureThread, FrameSource, default_mode, open_source

_END = object()
_EMPTY = object()


@dataclass
class StreamStats:
    """What happened during :func:`run_stream`.

    ``fps_end_to_end`` counts frames from the end of the first one to the end of the last one (the first frame
    pays for compilation and is left out; it is reported as ``first_frame_ms``). ``latency_ms`` is capture to
    drawn-and-written, per frame; ``model_ms`` the model call alone. ``model_workers`` is the number of model stages
    that ran (frames in the model at once), and ``fps_model`` ``model_workers * 1000 / mean(model_ms)``, the rate
    those stages could sustain together. ``frames_unreadable`` counts the frames of a video (images of a folder)
    skipped because they could not be decoded; ``skipped`` names the skipped images of a folder.
    """

    source: str = ""
    mode: str = ""
    frames_captured: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    frames_unreadable: int = 0
    skipped: list = field(default_factory=list)
    engine: str = ""
    model_workers: int = 1
    elapsed_s: float = 0.0
    first_frame_ms: float = 0.0
    end_reason: str = ""
    latency_ms: list = field(default_factory=list)
    model_ms: list = field(default_factory=list)

    @property
    def fps_end_to_end(self) -> float:
        if self.frames_processed < 2 or self.elapsed_s <= 0:
            return 0.0
        return (self.frames_processed - 1) / self.elapsed_s

    @property
    def fps_model(self) -> float:
        steady = self.model_ms[1:] or self.model_ms
        return self.model_workers * 1000.0 / float(np.mean(steady)) if steady else 0.0

    def summary(self) -> dict:
        """Plain numbers for reports and JSON: FPS, latency and model-time percentiles (ms), counts."""
        figures = {"source": self.source, "mode": self.mode, "frames_processed": self.frames_processed,
                   "frames_captured": self.frames_captured, "frames_dropped": self.frames_dropped,
                   "reconnects": self.reconnects, "frames_unreadable": self.frames_unreadable,
                   "skipped": list(self.skipped), "engine": self.engine,
                   "model_workers": self.model_workers, "elapsed_s": round(self.elapsed_s, 4),
                   "fps_end_to_end": self.fps_end_to_end, "fps_model": self.fps_model,
                   "first_frame_ms": self.first_frame_ms, "end_reason": self.end_reason}
        figures.update(latency_percentiles(self.latency_ms[1:] or self.latency_ms, prefix="latency_ms"))
        figures.update(latency_percentiles(self.model_ms[1:] or self.model_ms, prefix="model_ms"))
        return figures

    def describe(self) -> str:
        """One line of the figures for people (what ``defi1 detect stream`` prints)."""
        summary = self.summary()
        return (f"{summary['frames_processed']} frames from {summary['source']} ({summary['mode']} mode): "
                f"{summary['fps_end_to_end']:.1f} FPS end to end, model {summary['fps_model']:.1f} FPS"
                + (f" ({self.model_workers} frames at once)" if self.model_workers > 1 else "") + ", "
                f"latency median {summary['latency_ms_median']:.0f} ms (p90 {summary['latency_ms_p90']:.0f}, "
                f"p99 {summary['latency_ms_p99']:.0f}), dropped {summary['frames_dropped']}, "
                f"reconnects {summary['reconnects']}, unreadable {summary['frames_unreadable']}"
                + (f", engine {self.engine}" if self.engine else "") + f"; ended: {summary['end_reason']}")


def latency_percentiles(values_ms, *, prefix: str) -> dict:
    """``{prefix_median, prefix_p90, prefix_p99}`` of a list of milliseconds (zeros when empty)."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        return {f"{prefix}_median": 0.0, f"{prefix}_p90": 0.0, f"{prefix}_p99": 0.0}
    median, p90, p99 = np.percentile(values, [50, 90, 99])
    return {f"{prefix}_median": float(median), f"{prefix}_p90": float(p90), f"{prefix}_p99": float(p99)}


class DetectorStages:
    """The detector split in three callables for the pipeline: ``preprocess(image) -> prepared``,
    ``infer(prepared) -> raw``, ``postprocess(raw, prepared) -> detection``.

    A :class:`defi1.yolo.detector.Detector` is split into letterbox (``Detector.preprocess``), the network with
    its decoding (``forward`` if given, e.g. an ONNX Runtime engine from :func:`defi1.realtime.engines.make_forward`,
    else the detector's own compiled one; see :func:`defi1.yolo.detector.infer_decoded`: decoding compiled with the
    network when the engine offers ``detect``, NumPy decoding of the raw heads otherwise) and thresholds + NMS
    (``Detector.postprocess``). Any other object runs whole through ``detect`` in the model stage.
    :meth:`infer_on` gives the ``infer`` of another instance of the same engine (a model stage of its own).
    """

    def __init__(self, detector, *, forward=None):
        from defi1.yolo.detector import Detector

        self.detector = detector
        self.staged = isinstance(detector, Detector)
        if self.staged:
            forward = forward or detector.forward
            self.forward = forward
            self.preprocess = lambda image: detector.preprocess([image])  # (batch, letterboxes, image sizes)
            self.infer = self.infer_on(forward)
            self.postprocess = lambda decoded, prepared: detector.postprocess(decoded, *prepared[1:])[0]
        elif forward is not None:
            raise ValueError("an engine (forward=) can only be used with a defi1.yolo.detector.Detector")
        else:
            self.forward = None
            self.preprocess = lambda image: image
            self.infer = lambda image: detector.detect(image)[0]
            self.postprocess = lambda raw, prepared: raw

    def infer_on(self, forward):
        """``infer(prepared) -> raw`` running the network on ``forward`` (an instance of this detector's engine; a
        detector that is not split keeps its own ``detect``)."""
        from defi1.yolo.detector import infer_decoded

        if not self.staged:
            return self.infer
        detector = self.detector
        return lambda prepared: infer_decoded(forward, prepared[0], detector.heads, input_size=detector.input_size,
                                              min_objectness=detector.conf_threshold)


def host_opencv_threads(forward) -> int | None:
    """The OpenCV thread count for the host stages of a stream whose network runs in ``forward`` (an engine of
    :mod:`defi1.realtime.engines` or a compiled Keras pass): ``1`` when that engine computes on the CPU and is not
    OpenCV itself; ``None`` (leave OpenCV as it is) for OpenCV's engine, a GPU, or an unknown forward pass.

    On 2 cores, with ONNX Runtime on both, a 640×480 stream's OpenCV pool worker took 0.7 ms of CPU a frame beside
    the pre-processing thread's 0.76 ms; single-threaded, pre-processing takes 0.72–0.87 ms in all
    (``benchmarks/RESULTS.md``, Part 3).
    """
    engine = getattr(forward, "engine", None)
    if engine == "onnxruntime":
        providers = getattr(forward, "providers", None) or ["CPUExecutionProvider"]
        return 1 if providers[0] == "CPUExecutionProvider" else None
    if engine == "keras":
        from defi1.realtime.engines import on_gpu

        return None if on_gpu() else 1
    return None


def default_model_workers(forward, mode: str) -> int:
    """How many frames the model stages of :func:`run_stream` work on at once: ``2`` in ``"every"`` mode (files,
    folders: throughput counts) when ``forward`` computes on a CPU of at least 2 cores with ONNX Runtime or Keras
    (:func:`host_opencv_threads`), else ``1`` (drop mode: a camera's latency counts; GPU; OpenCV's engine).

    Measured on 2 cores (``benchmarks/RESULTS.md``, Part 3, alternating rounds): two one-thread ONNX Runtime
    sessions on alternate frames gave 58.3 FPS end to end, one two-thread session 51.0 FPS.
    """
    if mode != "every" or (os.cpu_count() or 1) < 2 or host_opencv_threads(forward) != 1:
        return 1
    return 2


def model_stage_forwards(forward, mode: str, *, model_workers: int | None = None, pipeline: bool = True) -> list:
    """The engine instances that :func:`run_stream`'s model stages run on, one per stage: ``model_workers`` of them
    (default :func:`default_model_workers`; 1 without the pipeline or without an engine, ``forward=None``) from
    :func:`defi1.realtime.engines.parallel_forwards`. Benchmarks time these same instances as the model-only figure.

    Raises ``ValueError`` for fewer than 1, for more than 1 without the pipeline, and for an engine that cannot run
    several frames at once.
    """
    from defi1.realtime.engines import parallel_forwards

    if model_workers is None:
        model_workers = default_model_workers(forward, mode) if pipeline and forward is not None else 1
    model_workers = int(model_workers)
    if model_workers < 1:
        raise ValueError(f"model workers: {model_workers}, expected 1 or more")
    if model_workers > 1 and not pipeline:
        raise ValueError(f"{model_workers} model workers need the pipeline (leave out --no-pipeline)")
    if forward is None:
        if model_workers > 1:
            raise ValueError(f"{model_workers} model workers need a defi1 Detector (a detector given only as an "
                             "object with detect() runs in one model stage)")
        return [None]
    return parallel_forwards(forward, model_workers)


def draw_overlay(image: np.ndarray, lines) -> np.ndarray:
    """Write text ``lines`` (top left, white on a dark band) onto an RGB ``uint8`` image in place; returns it."""
    scale = max(0.45, min(image.shape[0], image.shape[1]) / 900)
    thickness = max(1, int(round(scale * 2)))
    line_height = int(26 * scale) + 6
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines) + 12
    band = image[: line_height * len(lines) + 6, : width]
    band[...] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for row, line in enumerate(lines):
        cv2.putText(image, line, (6, line_height * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
    return image


class _Slot:
    """A one-item hand-over between two pipeline threads. Both sides wait on a condition (no polling loop that
    would take CPU time from the model), and wake up at least every 50 ms to see a stop request."""

    def __init__(self):
        self._condition = threading.Condition()
        self._item = _EMPTY

    def put(self, item, stop: threading.Event) -> bool:
        """Hand ``item`` over once the slot is empty; ``False`` if ``stop`` was set first."""
        with self._condition:
            while self._item is not _EMPTY:
                if stop.is_set():
                    return False
                self._condition.wait(0.05)
            self._item = item
            self._condition.notify_all()
            return True

    def wait_empty(self, timeout: float = 0.05) -> bool:
        """Wait until the other side has taken the item (``False`` after ``timeout`` seconds)."""
        with self._condition:
            return self._condition.wait_for(lambda: self._item is _EMPTY, timeout)

    def get(self, timeout: float = 0.05):
        """The item, or ``_EMPTY`` after ``timeout`` seconds without one."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._item is not _EMPTY, timeout):
                return _EMPTY
            item, self._item = self._item, _EMPTY
            self._condition.notify_all()
            return item


class _Worker:
    """A pipeline stage on its own thread: ``function(item)`` from ``inputs`` to the :class:`_Slot` ``outputs``;
    ``_END`` passes through; an exception is kept for the caller and ends the stage. Several workers may take from
    the same :class:`_Slot` (``shared_inputs``): each puts ``_END`` back there for the next one, so that every one
    of them ends.

    ``on_demand=True``: take new work only once the next stage has taken the previous result (no finished item waits
    in this thread's hands: bounded latency, fresher frames in drop mode). ``False``: start the next item at once and
    hand its result over when the slot is free (the model stage: its input is prepared already, and waiting for the
    caller's thread to wake up would leave the engine idle on every frame).
    """

    def __init__(self, name, function, inputs, outputs: _Slot, stop: threading.Event, *, on_demand: bool = True,
                 shared_inputs: _Slot | None = None):
        self.function, self.inputs, self.outputs, self.stop = function, inputs, outputs, stop
        self.on_demand, self.shared_inputs = on_demand, shared_inputs
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self):
        try:
            while not self.stop.is_set():
                if self.on_demand and not self.outputs.wait_empty():
                    continue
                item = self.inputs()
                if item is _EMPTY:
                    continue
                if item is _END:
                    if self.shared_inputs is not None:
                        self.shared_inputs.put(_END, self.stop)
                    break
                result = self.function(item)
                if not self.outputs.put(result, self.stop):
                    return
        except BaseException as error:  # handed to the caller's thread
            self.error = error
        self.outputs.put(_END, self.stop)


@dataclass(frozen=True)
class _Numbered:
    """A pipeline item with its place in the stream (0, 1, 2 ...), so that stages finishing out of order can be put
    back in order."""

    number: int
    value: object


def _numbering(function):
    """The first stage's ``function``, numbering what it returns in the order of its calls (one thread calls it):
    ``item -> _Numbered(n, function(item))``."""
    counter = itertools.count()
    return lambda item: _Numbered(next(counter), function(item))


def _keeping_number(function):
    """A later stage's ``function``, keeping the item's number: ``_Numbered(n, x) -> _Numbered(n, function(x))``."""
    return lambda item: _Numbered(item.number, function(item.value))


class _InOrder:
    """The results of the model stages in the order of their numbers (stages working on alternate frames finish
    out of order): ``next()`` returns the next one, ``_EMPTY`` while it is not there yet, ``_END`` once every model
    stage has ended (or as soon as one has failed: the caller raises its error)."""

    def __init__(self, get, model_stages):
        self.get, self.model_stages = get, model_stages
        self.pending, self.expected, self.ended = {}, 0, 0

    def next(self):
        while self.expected not in self.pending:
            item = self.get()
            if item is _EMPTY:
                return _EMPTY
            if item is _END:
                self.ended += 1
                failed = any(stage.error is not None for stage in self.model_stages)
                if failed or self.ended == len(self.model_stages):
                    return _END
                continue
            self.pending[item.number] = item.value
        self.expected += 1
        return self.pending.pop(self.expected - 1)


def run_stream(source, detector, *, sinks=(), on_frame=None, max_frames: int | None = None, mode: str | None = None,
               forward=None, draw=None, overlay: bool = True, pipeline: bool = True,
               source_options: dict | None = None, progress=None, model_workers: int | None = None) -> StreamStats:
    """Run ``detector`` on every frame of ``source`` (newest-frame policy in ``drop`` mode) until the source ends,
    ``max_frames`` frames are processed, a sink or ``on_frame`` asks to stop, or an exception (Ctrl-C) is raised.

    Args:
        source: a :class:`~defi1.realtime.sources.FrameSource`, or what :func:`~defi1.realtime.sources.open_source`
            accepts (``0``, ``"0"``, a video path, a URL, a folder); a source opened here is closed here.
        detector: see the module docstring.
        forward: the engine running the network (see :class:`DetectorStages`), default the detector's own.
        sinks: :class:`~defi1.realtime.sinks.FrameSink` objects receiving the annotated frames.
        on_frame: ``callback(image, detection, info)`` per processed frame (``image`` RGB ``uint8`` annotated,
            ``info`` the per-frame figures: ``index``, ``latency_ms``, ``model_ms``, ``fps``, ``dropped``); returning
            ``True`` stops the stream.
        mode: ``"drop"`` (real time) or ``"every"`` (every frame); default: drop for cameras and streams, every frame
            for files and folders.
        draw: ``draw(image, detection) -> image`` (default :func:`defi1.yolo.drawing.draw_detections`).
        overlay: draw FPS, latency and dropped frames on the frame.
        pipeline: run pre-processing, model and post-processing in separate threads (``False``: one thread after
            capture, simpler to debug).
        model_workers: frames in the model at once, each model stage on its own instance of the engine (see the
            module docstring); default :func:`default_model_workers`. Results are always handed on in frame order.
            More than 1 needs the pipeline and an engine that :func:`~defi1.realtime.engines.parallel_forwards`
            can copy (``ValueError`` otherwise).
        progress: optional ``tqdm``-like object with ``update(n)``.

    Returns:
        :class:`StreamStats`; sinks are closed whatever happens.
    """
    opened_here = not isinstance(source, FrameSource)
    if opened_here:
        source = open_source(source, **(source_options or {}))
    if draw is None:
        from defi1.yolo.drawing import draw_detections as draw
    stats = StreamStats(source=source.name, mode=mode or default_mode(source))
    stages = DetectorStages(detector, forward=forward)
    stats.engine = getattr(stages.forward, "engine", "") or ""
    capture = CaptureThread(source, mode=stats.mode)
    stop = threading.Event()
    workers: list[_Worker] = []
    recent_done: list[float] = []
    first_done = None
    opencv_threads, previous_opencv_threads = host_opencv_threads(stages.forward), cv2.getNumThreads()
    try:
        forwards = model_stage_forwards(stages.forward, stats.mode, model_workers=model_workers, pipeline=pipeline)
        stats.model_workers = len(forwards)
        if opencv_threads:
            cv2.setNumThreads(opencv_threads)
        capture.start()

        def next_frame():
            frame = capture.get(timeout=0.05)
            if frame is None:
                return _END if capture.exhausted else _EMPTY
            return frame

        def preprocess(frame):
            return frame, stages.preprocess(frame.image)

        def timed(infer):
            def infer_timed(item):
                frame, prepared = item
                started = time.perf_counter()
                raw = infer(prepared)
                return frame, prepared, raw, (time.perf_counter() - started) * 1000.0
            return infer_timed

        if pipeline:
            prepared_slot, raw_slot = _Slot(), _Slot()
            workers = [_Worker("preprocess", _numbering(preprocess), next_frame, prepared_slot, stop)]
            for index, instance in enumerate(forwards):  # each model stage on its own engine instance
                workers.append(_Worker(f"model-{index}", _keeping_number(timed(stages.infer_on(instance))),
                                       prepared_slot.get, raw_slot, stop, on_demand=False, shared_inputs=prepared_slot))
            for worker in workers:
                worker.thread.start()
            next_result = _InOrder(raw_slot.get, workers[1:]).next
        else:
            infer = timed(stages.infer)

            def next_result():
                frame = next_frame()
                return frame if frame is _EMPTY or frame is _END else infer(preprocess(frame))

        while max_frames is None or stats.frames_processed < max_frames:
            item = next_result()
            if item is _EMPTY:
                continue
            if item is _END:
                for worker in workers:
                    if worker.error is not None:
                        raise worker.error
                stats.end_reason = source.end_reason or "source ended"
                break
            frame, prepared, raw, model_ms = item
            detection = stages.postprocess(raw, prepared)
            image = draw(frame.image, detection)
            now = time.perf_counter()
            recent_done.append(now)
            del recent_done[:-30]
            fps = (len(recent_done) - 1) / (recent_done[-1] - recent_done[0]) if len(recent_done) > 1 else 0.0
            latency_ms = (now - frame.captured_at) * 1000.0
            info = {"index": frame.index, "processed": stats.frames_processed, "latency_ms": latency_ms,
                    "model_ms": model_ms, "fps": fps, "dropped": capture.dropped,
                    "detections": len(getattr(detection, "scores", ()))}
            if overlay:
                draw_overlay(image, [f"FPS {fps:5.1f}  latency {latency_ms:4.0f} ms",
                                     f"model {model_ms:4.0f} ms  dropped {capture.dropped}"])
            stop_requested = False
            for sink in sinks:
                stop_requested = bool(sink.write(image, info)) or stop_requested
            if on_frame is not None:
                stop_requested = bool(on_frame(image, detection, info)) or stop_requested
            done = time.perf_counter()
            stats.latency_ms.append((done - frame.captured_at) * 1000.0)
            stats.model_ms.append(model_ms)
            stats.frames_processed += 1
            if first_done is None:
                first_done = done
                stats.first_frame_ms = stats.latency_ms[0]
            stats.elapsed_s = done - first_done
            if progress is not None:
                progress.update(1)
            if stop_requested:
                stats.end_reason = "stopped by the user"
                break
        else:
            stats.end_reason = f"max_frames ({max_frames}) reached"
    except KeyboardInterrupt as interrupt:
        stats.end_reason = "interrupted (Ctrl-C)"
        interrupt.stream_stats = stats  # the figures so far, complete once the finally below has run
        raise
    finally:
        stop.set()
        capture.stop()
        for worker in workers:
            worker.thread.join(timeout=5.0)
        if opencv_threads:
            cv2.setNumThreads(previous_opencv_threads)
        stats.frames_captured = capture.captured
        stats.frames_dropped = capture.dropped
        stats.reconnects = source.reconnects
        stats.frames_unreadable = getattr(source, "unreadable", 0)
        stats.skipped = list(getattr(source, "skipped", ()))
        errors = []
        for sink in sinks:
            try:
                sink.close()
            except Exception as error:  # close every sink even if one fails; report the first failure
                errors.append(error)
        if opened_here:
            source.close()
        if errors and sys.exc_info()[0] is None:
            raise errors[0]
    return stats
