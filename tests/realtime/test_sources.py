"""Tests of defi1.realtime.sources: source parsing, files, folders, cameras, lost streams, the capture thread."""

import os
import time

import numpy as np
import pytest

from defi1.errors import ImageReadError, SourceError
from defi1.images import write_image
from defi1.realtime.sources import (CaptureThread, FolderSource, FrameSource, VideoCaptureSource, default_mode,
                                    open_source, parse_source_spec)
from defi1.realtime.video import synthetic_frame

pytestmark = pytest.mark.backend_agnostic  # numpy / OpenCV / threads only, or the backend's compiled pass


class FakeCapture:
    """Stands in for cv2.VideoCapture: delivers ``frames`` BGR frames, then fails (a stream dropping)."""

    opened = []

    def __init__(self, target, frames=3, can_open=True):
        FakeCapture.opened.append(target)
        self.remaining = frames
        self.can_open = can_open

    def isOpened(self):
        return self.can_open

    def read(self):
        if self.remaining <= 0:
            return False, None
        self.remaining -= 1
        return True, np.full((4, 6, 3), (10, 20, 30), dtype=np.uint8)  # BGR

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def factory(*plans):
    """A capture factory whose successive captures follow ``plans``: (frames, can_open) each."""
    plans = list(plans)

    def make(target):
        frames, can_open = plans.pop(0) if plans else (0, False)
        return FakeCapture(target, frames, can_open)
    return make


def test_parse_source_spec():
    assert parse_source_spec("0") == 0 and parse_source_spec(" 2 ") == 2 and parse_source_spec(1) == 1
    assert parse_source_spec(np.int64(3)) == 3
    assert parse_source_spec("video.mp4") == "video.mp4"
    assert parse_source_spec("rtsp://host/stream") == "rtsp://host/stream"


def test_string_zero_opens_camera_zero():
    FakeCapture.opened.clear()
    source = open_source("0", capture_factory=factory((2, True)))
    assert FakeCapture.opened == [0] and source.name == "camera 0" and source.is_live
    assert default_mode(source) == "drop"
    frame = source.read()
    assert frame.index == 0 and frame.image[0, 0].tolist() == [30, 20, 10]  # converted to RGB


def test_missing_camera_raises_source_error_naming_index():
    with pytest.raises(SourceError, match="camera 97: cannot be opened"):
        open_source("97")  # the real cv2.VideoCapture: no such device here


def test_undecodable_video(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(SourceError, match="broken.mp4"):
        open_source(path)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        open_source(tmp_path / "missing.mp4")


def test_video_file_reads_every_frame_then_ends(small_video):
    source = open_source(str(small_video))
    assert not source.is_live and source.fps == 30.0 and default_mode(source) == "every"
    frames = list(source)
    source.close()
    assert [frame.index for frame in frames] == list(range(30))
    expected = synthetic_frame(7, width=160, height=120)
    assert np.abs(frames[7].image.astype(int) - expected).mean() < 6
    assert source.end_reason == "end of file"


def test_stream_lost_midway_reconnects_then_stops_cleanly():
    # 3 frames, connection lost; reconnect 1 fails, reconnect 2 gives 2 frames; lost again and never comes back.
    source = VideoCaptureSource("rtsp://camera/live", reconnect_attempts=2, reconnect_delay=0.0,
                                capture_factory=factory((3, True), (0, False), (2, True)))
    frames = list(source)
    assert len(frames) == 5 and source.reconnects == 1
    assert source.end_reason == "stream rtsp://camera/live lost: no frame after 2 reconnect attempt(s)"


def test_stream_that_cannot_be_opened():
    with pytest.raises(SourceError, match="rtsp://nowhere/x: the stream cannot be opened"):
        VideoCaptureSource("rtsp://nowhere/x", capture_factory=factory((0, False)))


def test_folder_source(tmp_path):
    for index in range(3):
        write_image(tmp_path / f"img_{index}.png", np.full((8, 8, 3), index * 50, dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource)
    assert [int(frame.image[0, 0, 0]) for frame in source] == [0, 50, 100]
    (tmp_path / "img_1b.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="img_1b.png"):
        list(FolderSource(tmp_path, skip_unreadable=False))
    skipping = FolderSource(tmp_path)  # skipped and counted by default, as detect predict does
    assert [int(frame.image[0, 0, 0]) for frame in skipping] == [0, 50, 100]
    assert skipping.skipped == [str(tmp_path / "img_1b.png")] and skipping.unreadable == 1


def test_a_video_file_is_decoded_on_one_ffmpeg_thread_with_the_same_frames(small_video):
    import cv2

    with open_source(str(small_video)) as one_thread, \
            open_source(str(small_video), file_decoder_threads=None) as ffmpeg_default:
        # FFmpeg's frame threads cost CPU time that the detector's engine needs (benchmarks/RESULTS.md, Part 3).
        assert one_thread._capture.get(cv2.CAP_PROP_N_THREADS) == 1
        assert ffmpeg_default._capture.get(cv2.CAP_PROP_N_THREADS) != 1 or (os.cpu_count() or 1) == 1
        frames = [(first.index, second.index, np.array_equal(first.image, second.image))
                  for first, second in zip(one_thread, ffmpeg_default, strict=True)]
    assert frames == [(index, index, True) for index in range(30)]


def test_damaged_video_frame_is_skipped_and_counted(damaged_video):
    source = open_source(str(damaged_video))
    frames = list(source)
    source.close()
    assert source.frame_count == 60 and len(frames) == 59 and source.unreadable == 1
    assert [frame.index for frame in frames] == [index for index in range(60) if index != 6]  # positions kept
    assert abs(int(frames[6].image[0, 0, 0]) - 7 * 4) <= 3  # the frame after the damaged one (grey 4 x index, JPEG)
    assert source.end_reason == "end of file"


def test_failed_reads_at_the_end_of_a_video_are_its_end_not_damage():
    class Overstated(FakeCapture):  # the container says 8 frames, 5 decode, then every read fails
        def get(self, prop):
            import cv2

            return 8.0 if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    source = VideoCaptureSource.__new__(VideoCaptureSource)
    FrameSource.__init__(source)
    source.kind, source.name, source.is_live, source.frame_count = "file", "x.avi", False, 8
    source._capture, source._pending = Overstated("x.avi", frames=5), None
    assert len(list(source)) == 5 and source.unreadable == 0 and source.end_reason == "end of file"


class CountingSource(FrameSource):
    """A live source producing ``count`` frames, one every ``period`` seconds; image value = frame index."""

    is_live = True
    name = "counting"

    def __init__(self, count, period):
        super().__init__()
        self.count, self.period = count, period

    def read(self):
        if self._next_index >= self.count:
            self.end_reason = "done"
            return None
        time.sleep(self.period)
        return self._frame(np.full((2, 2, 3), self._next_index, dtype=np.uint8))


def test_capture_thread_drop_mode_hands_newest_frame():
    capture = CaptureThread(CountingSource(20, 0.005), mode="drop").start()
    taken = []
    while (frame := capture.get(timeout=1.0)) is not None:
        taken.append(frame.index)
        time.sleep(0.03)  # a consumer 6x slower than the source
    capture.stop()
    assert capture.captured == 20
    assert len(taken) + capture.dropped == 20
    # How many are dropped depends on the machine's timing: benchmarks/bench_frame_dropping.py measures it.
    assert taken == sorted(set(taken)) and taken[-1] == 19  # always forward, and the last frame is seen


def test_capture_thread_every_mode_keeps_all_frames():
    capture = CaptureThread(CountingSource(15, 0.0), mode="every", queue_size=2).start()
    taken = []
    while (frame := capture.get(timeout=1.0)) is not None:
        taken.append(int(frame.image[0, 0, 0]))
        time.sleep(0.002)
    capture.stop()
    assert taken == list(range(15)) and capture.dropped == 0


def test_capture_thread_reraises_source_errors(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), dtype=np.uint8))
    (tmp_path / "b.png").write_bytes(b"broken")
    capture = CaptureThread(FolderSource(tmp_path, skip_unreadable=False), mode="every").start()
    assert capture.get(timeout=1.0).index == 0
    with pytest.raises(ImageReadError, match="b.png"):
        capture.get(timeout=1.0)
    capture.stop()


def test_capture_thread_stopped_before_it_started():
    # run_stream stops the capture in its finally block, also when the stream fails before starting it (a refused
    # --model-workers): that used to raise "cannot join thread before it is started" over the real error.
    capture = CaptureThread(CountingSource(3, 0.0), mode="every")
    capture.stop()
    assert capture.captured == 0
