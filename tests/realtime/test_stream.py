"""Tests of defi1.realtime.stream.run_stream with a stand-in detector (see conftest.py)."""

import os
import time

import cv2
import numpy as np
import pytest

from defi1.realtime.sinks import VideoFileSink
from defi1.realtime.sources import FrameSource, VideoCaptureSource
from defi1.realtime.stream import DetectorStages, StreamStats, draw_overlay, latency_percentiles, run_stream
from defi1.realtime.video import synthetic_frame, video_properties

from .conftest import BrightestPixelDetector, draw_box

pytestmark = pytest.mark.backend_agnostic  # numpy / OpenCV / threads only, or the backend's compiled pass


def collect_scores(video, **options):
    scores = {}

    def on_frame(image, detection, info):
        scores[info["index"]] = float(detection.scores[0])
    stats = run_stream(str(video), BrightestPixelDetector(), on_frame=on_frame, draw=draw_box, **options)
    return stats, scores


def test_every_frame_mode_processes_every_frame_in_order(small_video):
    stats, scores = collect_scores(small_video)
    assert stats.mode == "every" and stats.frames_processed == 30 and stats.frames_dropped == 0
    assert list(scores) == list(range(30))
    assert stats.end_reason == "end of file"
    assert len(stats.latency_ms) == 30 and stats.fps_end_to_end > 0


def test_pipeline_and_single_thread_give_the_same_detections(small_video):
    _, pipelined = collect_scores(small_video, pipeline=True)
    _, sequential = collect_scores(small_video, pipeline=False)
    assert list(pipelined) == list(range(30))  # every frame detected, not two empty runs
    assert pipelined == sequential


def test_realtime_mode_on_a_file_drops_stale_frames(small_video):
    # The file plays at 30 fps (1 s); a 100 ms detector can only take about one frame in three. How many it takes
    # and how far it lags depend on the machine: benchmarks/bench_frame_dropping.py measures them.
    processed = []
    stats = run_stream(str(small_video), BrightestPixelDetector(delay_s=0.1), mode="drop", draw=draw_box,
                       on_frame=lambda image, detection, info: processed.append(info["index"]))
    assert stats.mode == "drop" and stats.frames_captured == 30
    assert stats.frames_processed + stats.frames_dropped == 30
    assert processed == sorted(set(processed)) and processed[-1] == 29  # forward only; the newest frame is seen
    assert len(stats.latency_ms) == stats.frames_processed == len(processed)


def test_max_frames_and_stop_by_callback(small_video):
    stats = run_stream(str(small_video), BrightestPixelDetector(), max_frames=7, draw=draw_box)
    assert stats.frames_processed == 7 and stats.end_reason == "max_frames (7) reached"
    stats = run_stream(str(small_video), BrightestPixelDetector(), draw=draw_box,
                       on_frame=lambda image, detection, info: info["processed"] == 2)
    assert stats.frames_processed == 3 and stats.end_reason == "stopped by the user"


def test_keyboard_interrupt_keeps_the_recording(small_video, tmp_path):
    output = tmp_path / "out.mp4"

    def interrupt_at_fifth_frame(image, detection, info):
        if info["processed"] == 4:
            raise KeyboardInterrupt("Ctrl-C at the fifth frame")
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C at the fifth frame"):
        run_stream(str(small_video), BrightestPixelDetector(), sinks=[VideoFileSink(output, fps=30)],
                   on_frame=interrupt_at_fifth_frame, draw=draw_box)
    assert video_properties(output)["frames"] == 5  # the frames written before Ctrl-C are all there


def test_recording_has_boxes_and_overlay(small_video, tmp_path):
    output = tmp_path / "annotated.mp4"
    run_stream(str(small_video), BrightestPixelDetector(), sinks=[VideoFileSink(output, fps=30)], draw=draw_box)
    assert video_properties(output) == {"frames": 30, "fps": 30.0, "width": 160, "height": 120}
    capture = cv2.VideoCapture(str(output))
    ok, frame = capture.read()
    capture.release()
    original = synthetic_frame(0, width=160, height=120)[:, :, ::-1].astype(float)
    assert ok
    # The overlay band (top left, above the text) darkens the frame to 40 %.
    assert frame[0:4, 0:40].mean() < 0.6 * original[0:4, 0:40].mean()


def test_detector_errors_propagate_and_sinks_are_closed(small_video, tmp_path):
    class Failing(BrightestPixelDetector):
        def detect(self, images):
            if self.calls == 3:
                raise RuntimeError("model failed on frame 3")
            return super().detect(images)
    sink = VideoFileSink(tmp_path / "partial.mp4", fps=30)
    with pytest.raises(RuntimeError, match="frame 3"):
        run_stream(str(small_video), Failing(), sinks=[sink], draw=draw_box)
    assert video_properties(tmp_path / "partial.mp4")["frames"] == 3


def test_lost_stream_ends_cleanly_with_the_reason(small_video):
    from .test_sources import factory

    source = VideoCaptureSource("rtsp://camera/live", reconnect_attempts=1, reconnect_delay=0.0,
                                capture_factory=factory((4, True), (0, False)))
    stats = run_stream(source, BrightestPixelDetector(), draw=draw_box, mode="every")
    assert stats.frames_processed == 4
    assert stats.end_reason == "stream rtsp://camera/live lost: no frame after 1 reconnect attempt(s)"


def test_real_detector_in_stages_matches_detect(small_video, mini_model):
    from defi1.realtime.sources import open_source
    from defi1.yolo.detector import Detector

    detector = Detector(mini_model, input_size=64, conf_threshold=0.3)
    assert DetectorStages(detector).staged
    streamed = {}
    run_stream(str(small_video), detector, max_frames=6,
               on_frame=lambda image, detection, info: streamed.__setitem__(info["index"], detection))
    with open_source(str(small_video)) as source:
        frames = [frame.image for frame, _ in zip(source, range(6))]
    direct = detector.detect(frames)
    assert sum(len(detection) for detection in direct) > 0  # something to compare
    for index, expected in enumerate(direct):
        np.testing.assert_allclose(streamed[index].boxes, expected.boxes, atol=1e-4)
        np.testing.assert_allclose(streamed[index].scores, expected.scores, atol=1e-5)
        np.testing.assert_array_equal(streamed[index].class_ids, expected.class_ids)


def test_raw_head_engine_in_the_stream_matches_the_compiled_decoding(small_video, mini_model):
    import keras

    from defi1.yolo.detector import Detector

    detector = Detector(mini_model, input_size=64, conf_threshold=0.3)

    def raw_engine(batch):  # raw heads, as ONNX Runtime returns them: decoded on the host in the stream
        return [keras.ops.convert_to_numpy(output) for output in mini_model(batch, training=False)]

    results = {}
    for name, forward in (("compiled", None), ("raw", raw_engine)):
        results[name] = []
        run_stream(str(small_video), detector, forward=forward, max_frames=4,
                   on_frame=lambda image, detection, info, found=results[name]: found.append(detection))
    assert len(results["raw"]) == len(results["compiled"]) == 4
    assert sum(len(detection) for detection in results["compiled"]) > 0
    for found, expected in zip(results["raw"], results["compiled"], strict=True):
        np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-3)
        np.testing.assert_allclose(found.scores, expected.scores, atol=1e-5)
        np.testing.assert_array_equal(found.class_ids, expected.class_ids)


def test_the_model_stage_starts_the_next_frame_while_the_caller_is_still_busy(small_video):
    # The caller's thread (drawing, sinks, on_frame) spends 0.2 s on frame 0. The model stage must not sit idle
    # waiting for it to take result 1: it computes frame 2 meanwhile (it used to wait, leaving the engine idle
    # for the caller's wake-up on every frame).
    detector = BrightestPixelDetector()
    calls_after_first_frame = []

    def on_frame(image, detection, info):
        if info["processed"] == 0:
            time.sleep(0.2)
            calls_after_first_frame.append(detector.calls)
    stats = run_stream(str(small_video), detector, draw=draw_box, on_frame=on_frame, max_frames=5)
    assert stats.frames_processed == 5
    assert calls_after_first_frame == [3]  # frame 0 handed over, frame 1 waiting in the slot, frame 2 computed


def test_host_opencv_threads_follow_the_engine():
    from defi1.realtime.stream import host_opencv_threads

    class Engine:
        def __init__(self, engine, **attributes):
            self.engine = engine
            self.__dict__.update(attributes)
    assert host_opencv_threads(Engine("onnxruntime", providers=["CPUExecutionProvider"])) == 1
    assert host_opencv_threads(Engine("onnxruntime", providers=["CUDAExecutionProvider",
                                                                "CPUExecutionProvider"])) is None
    assert host_opencv_threads(Engine("opencv")) is None  # OpenCV's DNN module needs OpenCV's threads
    assert host_opencv_threads(lambda batch: batch) is None  # an unknown forward pass: left alone
    assert host_opencv_threads(Engine("keras")) == 1  # no accelerator in the tests


def test_opencv_is_single_threaded_during_a_cpu_engine_stream_then_restored(small_video, mini_model):
    from defi1.yolo.detector import Detector

    detector = Detector(mini_model, input_size=64, conf_threshold=0.3)
    previous = cv2.getNumThreads()
    seen = []
    try:
        cv2.setNumThreads(3)
        run_stream(str(small_video), detector, max_frames=3,
                   on_frame=lambda image, detection, info: seen.append(cv2.getNumThreads()))
        assert seen == [1, 1, 1] and cv2.getNumThreads() == 3
        with pytest.raises(RuntimeError, match="stop here"):  # restored when the stream fails too
            run_stream(str(small_video), detector, max_frames=3,
                       on_frame=lambda image, detection, info: (_ for _ in ()).throw(RuntimeError("stop here")))
        assert cv2.getNumThreads() == 3
        seen.clear()
        run_stream(str(small_video), BrightestPixelDetector(), draw=draw_box, max_frames=2,
                   on_frame=lambda image, detection, info: seen.append(cv2.getNumThreads()))
        assert seen == [3, 3]  # a detector of unknown engine: OpenCV left as it was
    finally:
        cv2.setNumThreads(previous)


def test_engine_only_with_a_real_detector():
    with pytest.raises(ValueError, match="only be used with a defi1.yolo.detector.Detector"):
        DetectorStages(BrightestPixelDetector(), forward=lambda batch: [batch])


def test_latency_percentiles_and_stats():
    figures = latency_percentiles(list(range(1, 101)), prefix="latency_ms")
    assert figures == {"latency_ms_median": 50.5, "latency_ms_p90": pytest.approx(90.1),
                       "latency_ms_p99": pytest.approx(99.01)}
    stats = StreamStats(frames_processed=11, elapsed_s=0.5, model_ms=[100.0, 20.0, 30.0])
    assert stats.fps_end_to_end == 20.0 and stats.fps_model == 40.0  # first (compiling) call left out
    stats = StreamStats(source="clip.mp4", mode="every", frames_processed=11, frames_dropped=2, elapsed_s=0.5,
                        latency_ms=[500.0] + [40.0] * 10, model_ms=[100.0, 20.0, 30.0], end_reason="end of file")
    assert stats.describe() == ("11 frames from clip.mp4 (every mode): 20.0 FPS end to end, model 40.0 FPS, latency "
                                "median 40 ms (p90 40, p99 40), dropped 2, reconnects 0, unreadable 0; ended: end of file")


def test_draw_overlay_darkens_band_and_writes_text():
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    draw_overlay(image, ["FPS 10"])
    assert image[100:, 100:].min() == 200  # untouched outside the band
    band = image[:20, :60]
    assert band.min() == 80 and band.max() >= 240  # 200 * 2 / 5 background, white text


def test_source_given_as_object_is_not_closed():
    class Source(FrameSource):
        name = "two frames"
        closed = False

        def read(self):
            return self._frame(np.zeros((4, 4, 3), np.uint8)) if self._next_index < 2 else None

        def close(self):
            Source.closed = True
    stats = run_stream(Source(), BrightestPixelDetector(), draw=draw_box)
    assert stats.frames_processed == 2 and not Source.closed


def test_pipeline_slot_hands_over_one_item_and_waits_without_spinning():
    import threading
    import time

    from defi1.realtime.stream import _EMPTY, _Slot

    slot, stop = _Slot(), threading.Event()
    assert slot.get(timeout=0.01) is _EMPTY
    assert slot.put("first", stop) and not slot.wait_empty(timeout=0.01)
    stop.set()
    assert not slot.put("second", stop)  # a full slot and a stop request: the put gives up
    assert slot.get() == "first" and slot.wait_empty(timeout=0.01)

    # A stage waiting for its next stage (or for work) sleeps on a condition: about no CPU in half a second.
    cpu_seconds = {}

    def wait_for_half_a_second():
        started = time.thread_time()
        full = _Slot()
        full.put("taken by nobody", threading.Event())
        full.wait_empty(timeout=0.25)
        _Slot().get(timeout=0.25)
        cpu_seconds["waiting"] = time.thread_time() - started

    thread = threading.Thread(target=wait_for_half_a_second)
    thread.start()
    thread.join()
    assert cpu_seconds["waiting"] < 0.02


class RawHeadEngine:
    """Raw heads of ``model``, as ONNX Runtime returns them, after ``delay_s``; ``replicas(count)`` gives ``count``
    copies, the first one slow (``slow_s``) so that the model stages finish their frames out of order;
    ``fail_at_call`` makes a copy raise on that call."""

    engine = "onnxruntime"
    providers = ["CPUExecutionProvider"]

    def __init__(self, model, *, delay_s=0.0, slow_s=0.08, fail_at_call=None):
        self.model, self.delay_s, self.slow_s, self.fail_at_call = model, delay_s, slow_s, fail_at_call
        self.calls = 0
        self.copies = []

    def __call__(self, batch):
        import keras

        time.sleep(self.delay_s)
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise RuntimeError(f"engine failed at call {self.calls}")
        return [keras.ops.convert_to_numpy(output) for output in self.model(batch, training=False)]

    def replicas(self, count):
        self.copies = [RawHeadEngine(self.model, delay_s=self.slow_s if index == 0 else 0.0,
                                     fail_at_call=self.fail_at_call if index == 1 else None)
                       for index in range(count)]
        return self.copies


def test_two_model_stages_give_every_frame_in_order_with_the_detections_of_one(small_video, mini_model):
    from defi1.yolo.detector import Detector

    detector = Detector(mini_model, input_size=64, conf_threshold=0.3)
    found = {}
    for workers in (1, 2):
        engine = RawHeadEngine(mini_model)
        found[workers] = []
        stats = run_stream(str(small_video), detector, forward=engine, model_workers=workers, mode="every",
                           on_frame=lambda image, detection, info, seen=found[workers]: seen.append(
                               (info["index"], detection)))
        assert stats.frames_processed == 30 and stats.end_reason == "end of file"  # every stage saw the end
        assert stats.model_workers == workers and stats.summary()["model_workers"] == workers
        assert [index for index, _ in found[workers]] == list(range(30))
    copies = engine.copies
    # The slow copy took few frames, the fast one the others: they finished out of order, and came out in order.
    assert copies[0].calls + copies[1].calls == 30 and copies[1].calls > copies[0].calls > 0
    assert sum(len(detection) for _, detection in found[1]) > 0
    for (_, expected), (_, detection) in zip(found[1], found[2], strict=True):
        np.testing.assert_array_equal(detection.boxes, expected.boxes)
        np.testing.assert_array_equal(detection.scores, expected.scores)


def test_an_error_in_one_of_two_model_stages_stops_the_stream(small_video, mini_model):
    from defi1.yolo.detector import Detector

    class ClosingSink:
        closed = False

        def write(self, image, info):
            return False

        def close(self):
            self.closed = True
    detector = Detector(mini_model, input_size=64, conf_threshold=0.3)
    sink = ClosingSink()
    with pytest.raises(RuntimeError, match="engine failed at call 3"):
        run_stream(str(small_video), detector, forward=RawHeadEngine(mini_model, fail_at_call=3), model_workers=2,
                   sinks=[sink])
    assert sink.closed


def test_default_model_workers_follow_the_mode_the_engine_and_the_cores(monkeypatch):
    from defi1.realtime import stream

    class Engine:
        def __init__(self, engine, providers=("CPUExecutionProvider",)):
            self.engine, self.providers = engine, list(providers)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert stream.default_model_workers(Engine("onnxruntime"), "every") == 2
    assert stream.default_model_workers(Engine("keras"), "every") == 2  # no accelerator in the tests
    assert stream.default_model_workers(Engine("onnxruntime"), "drop") == 1  # a camera: latency first
    assert stream.default_model_workers(Engine("onnxruntime", ["CUDAExecutionProvider"]), "every") == 1
    assert stream.default_model_workers(Engine("opencv"), "every") == 1
    assert stream.default_model_workers(lambda batch: batch, "every") == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert stream.default_model_workers(Engine("onnxruntime"), "every") == 1


def test_model_workers_that_cannot_run_are_refused(small_video, mini_model):
    from defi1.realtime.stream import model_stage_forwards
    from defi1.yolo.detector import Detector

    class OpenCVEngine:
        engine = "opencv"
    with pytest.raises(ValueError, match="the opencv engine cannot run 2 frames at once"):
        model_stage_forwards(OpenCVEngine(), "every", model_workers=2)
    with pytest.raises(ValueError, match="model workers: 0, expected 1 or more"):
        model_stage_forwards(OpenCVEngine(), "every", model_workers=0)
    with pytest.raises(ValueError, match="2 model workers need the pipeline"):
        run_stream(str(small_video), Detector(mini_model, input_size=64), model_workers=2, pipeline=False)
    with pytest.raises(ValueError, match="2 model workers need a defi1 Detector"):
        run_stream(str(small_video), BrightestPixelDetector(), draw=draw_box, model_workers=2)
    assert model_stage_forwards(OpenCVEngine(), "every")[0].engine == "opencv"  # default: one stage


def test_model_fps_counts_the_frames_in_the_model_at_once():
    stats = StreamStats(model_ms=[500.0, 40.0, 40.0], model_workers=2)
    assert stats.fps_model == pytest.approx(50.0)  # two stages of 40 ms each: 2 x 25 frames a second
    assert "model 50.0 FPS (2 frames at once)" in stats.describe()
