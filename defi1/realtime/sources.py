"""Frame sources for streaming: cameras, video files, network streams and folders of images.

Every frame that leaves this module is a :class:`Frame` holding an RGB ``uint8`` image ``(height, width, 3)``.

:func:`open_source` turns what a user types into a source: ``0`` or ``"0"`` is camera 0 (a string of digits is a
camera index, never a file name), ``rtsp://``, ``http(s)://`` ... URLs are network streams, a folder is read image by
image in name order, anything else is a video file.

:class:`CaptureThread` reads a source on its own thread. In ``drop`` mode it keeps only the newest frame, so that a
model slower than the camera always works on the latest picture and the latency stays bounded (the frames it
overwrites are counted as dropped); in ``every`` mode it hands over every frame through a small blocking queue.

OpenCV's and FFmpeg's own messages ("moov atom not found", "No JPEG data found in image") are kept out of the
terminal (:func:`quiet_video_messages`) unless ``--verbose`` / ``DEFI1_VERBOSE=1``: defi1 reports the same failures
in its own words (an error naming the file, or a count of unreadable frames).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from defi1.errors import SourceError
from defi1.images import list_images, read_image, rgb_from_bgr
from defi1.keras_runtime import verbose

#: Consecutive failed reads after which a video file is taken to have ended, whatever its frame count says.
MAX_CONSECUTIVE_UNREADABLE = 30

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
MODES = ("drop", "every")


def quiet_video_messages() -> None:
    """Silence FFmpeg's and OpenCV's own log lines, unless :func:`defi1.keras_runtime.verbose`.

    ``OPENCV_FFMPEG_LOGLEVEL`` is read when OpenCV's FFmpeg back end opens its first file, so this is called before
    every capture is opened (cheap; an explicit value in the environment is kept)."""
    if verbose():
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None and hasattr(logging, "setLogLevel"):
        logging.setLogLevel(getattr(logging, "LOG_LEVEL_SILENT", 0))
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)


@dataclass
class Frame:
    """One captured frame: ``image`` RGB ``uint8`` ``(height, width, 3)``, its position in the source and the
    ``time.perf_counter()`` at which it was read."""

    index: int
    image: np.ndarray
    captured_at: float


class FrameSource:
    """Base class of the sources. Subclasses implement :meth:`read` and may override :meth:`close`.

    Attributes: ``name`` (what to show in messages), ``fps`` (nominal rate, 0 when unknown), ``is_live`` (a camera
    or network stream: frames keep coming whether or not they are read), ``reconnects`` (times a lost stream was
    reopened), ``end_reason`` (why :meth:`read` returned ``None``), ``unreadable`` (frames or images skipped because
    they could not be decoded; :attr:`skipped` names them where they have names).
    """

    name = "source"
    fps = 0.0
    is_live = False

    def __init__(self):
        self.reconnects = 0
        self.end_reason = ""
        self.skipped: list[str] = []
        self._unreadable_frames = 0
        self._next_index = 0

    @property
    def unreadable(self) -> int:
        """Frames (of a video) or images (of a folder) skipped because they could not be decoded."""
        return self._unreadable_frames + len(self.skipped)

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end (then :attr:`end_reason` says why)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def _frame(self, image: np.ndarray) -> Frame:
        frame = Frame(index=self._next_index, image=image, captured_at=time.perf_counter())
        self._next_index += 1
        return frame

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class VideoCaptureSource(FrameSource):
    """A camera (integer index), a video file or a network stream read with ``cv2.VideoCapture``.

    Raises :class:`defi1.errors.SourceError` when the source cannot be opened (naming the camera index, file or URL)
    or when a video file opens but its first frame cannot be decoded. In a video file, a frame that cannot be decoded
    (a damaged chunk) is skipped and counted in :attr:`unreadable`; reading goes on while frames read plus frames
    skipped stay below the container's frame count and fewer than :data:`MAX_CONSECUTIVE_UNREADABLE` reads in a row
    failed (without a frame count, the first failure ends the file). A frame's ``index`` stays its position in the
    file. A live source (camera, stream) that stops
    delivering frames is reopened up to ``reconnect_attempts`` times, ``reconnect_delay`` seconds apart; after that
    :meth:`read` ends cleanly with :attr:`end_reason` saying so. ``capture_factory`` (default ``cv2.VideoCapture``)
    lets tests stand in for a device.

    ``file_decoder_threads``: FFmpeg's decoding threads for a video file (default 1; ``None`` or 0: FFmpeg's own
    choice, one per core). In a stream the detector's engine already keeps every core busy, so decoding in parallel
    gains no time: alone, one thread decodes a 640×480 H.264 frame in 0.5 ms of CPU time where FFmpeg's default takes
    0.8 ms, in the same wall time; inside a stream the difference is within the noise (``benchmarks/RESULTS.md``,
    Part 3). Cameras and network streams keep FFmpeg's default, so that a large live stream is always decoded at its
    own rate.
    """

    def __init__(self, spec, *, reconnect_attempts: int = 3, reconnect_delay: float = 0.5,
                 capture_factory=cv2.VideoCapture, file_decoder_threads: int | None = 1):
        super().__init__()
        self.spec = spec
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_delay = float(reconnect_delay)
        self._capture_factory = capture_factory
        self.file_decoder_threads = file_decoder_threads
        if isinstance(spec, int):
            self.kind, self.name, self.is_live = "camera", f"camera {spec}", True
        elif str(spec).lower().startswith(STREAM_PREFIXES):
            self.kind, self.name, self.is_live = "stream", f"stream {spec}", True
        else:
            path = Path(spec)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such video file")
            self.kind, self.name, self.is_live = "file", str(path), False
        self._capture = self._open()
        self._pending = None
        if self.kind == "file":
            # Decode the first frame now: a file OpenCV opens but cannot decode is bad input, reported at once.
            ok, image = self._capture.read()
            if not ok or image is None:
                self._capture.release()
                raise SourceError(f"{self.name}: cannot decode any frame of this video (expected a video file "
                                  "OpenCV's FFmpeg can read, e.g. .mp4 H.264/MPEG-4 or .avi MJPG)")
            self._pending = image
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < self.fps < 1000:
            self.fps = 0.0
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        #: Frames in a video file as its container says (0 when unknown, and for cameras and streams).
        self.frame_count = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0) if self.kind == "file" else 0

    def _open(self):
        quiet_video_messages()
        target = self.spec if isinstance(self.spec, int) else str(self.spec)
        capture = None
        if self.kind == "file" and self.file_decoder_threads and self._capture_factory is cv2.VideoCapture:
            threads = [cv2.CAP_PROP_N_THREADS, int(self.file_decoder_threads)]
            capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, threads)
            if not capture.isOpened():  # not a file FFmpeg reads: let OpenCV try its other back ends
                capture.release()
                capture = None
        if capture is None:
            capture = self._capture_factory(target)
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            if self.kind == "camera":
                raise SourceError(f"camera {self.spec}: cannot be opened (no such device, busy, or no permission; "
                                  "on Colab use the browser webcam, see defi1.realtime.colab)")
            if self.kind == "stream":
                raise SourceError(f"{self.spec}: the stream cannot be opened (check the URL and the network)")
            raise SourceError(f"{self.spec}: OpenCV cannot open this video (corrupt or unsupported format)")
        return capture

    def read(self) -> Frame | None:
        if self._capture is None:
            return None
        if self._pending is not None:
            image, self._pending = self._pending, None
            return self._frame(rgb_from_bgr(image))
        failures = 0
        while True:
            ok, image = self._capture.read()
            if ok and image is not None:
                return self._frame(rgb_from_bgr(image))
            if self.is_live:
                return self._reconnect()
            if self._next_index + 1 < self.frame_count and failures + 1 < MAX_CONSECUTIVE_UNREADABLE:
                failures += 1  # a damaged frame before the container's end: skip it, keep its position
                self._unreadable_frames += 1
                self._next_index += 1
                continue
            if failures:  # the failures were the end of the file after all, not damaged frames
                self._unreadable_frames -= failures
                self._next_index -= failures
            self.end_reason = "end of file"
            return None

    def _reconnect(self) -> Frame | None:
        self._capture.release()
        for attempt in range(1, self.reconnect_attempts + 1):
            time.sleep(self.reconnect_delay)
            try:
                self._capture = self._open()
            except SourceError:
                continue
            ok, image = self._capture.read()
            if ok and image is not None:
                self.reconnects += 1
                return self._frame(rgb_from_bgr(image))
            self._capture.release()
        self._capture = None
        self.end_reason = (f"{self.name} lost: no frame after {self.reconnect_attempts} reconnect attempt(s)"
                           if self.reconnect_attempts else f"{self.name} lost (no reconnect attempted)")
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class FolderSource(FrameSource):
    """The images of a folder, in name order, as frames (``fps`` 0: not live). An image that cannot be decoded is
    skipped and named in :attr:`skipped` (as ``detect predict`` skips it), or with ``skip_unreadable=False`` raises
    :class:`defi1.errors.ImageReadError` naming it."""

    def __init__(self, folder, *, skip_unreadable: bool = True):
        super().__init__()
        self.paths = list_images(folder)
        if not self.paths:
            raise SourceError(f"{folder}: no images in this folder (expected .jpg, .png ... files)")
        self.name = str(folder)
        self.skip_unreadable = skip_unreadable
        self._position = 0
        self.current_path = None

    def read(self) -> Frame | None:
        while self._position < len(self.paths):
            path = self.paths[self._position]
            self._position += 1
            try:
                image = read_image(path)
            except (OSError, ValueError):  # what detect predict skips (ImageReadError is a ValueError)
                if not self.skip_unreadable:
                    raise
                self.skipped.append(str(path))
                continue
            self.current_path = path
            return self._frame(image)
        self.end_reason = "end of folder"
        return None


def parse_source_spec(spec):
    """What the user typed -> a camera index (``int``) or a string: ``"0"`` and ``0`` are camera 0."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return int(spec)
    text = str(spec).strip()
    return int(text) if text.isdigit() else text


def open_source(spec, **options) -> FrameSource:
    """Open a camera index, video file, stream URL or image folder (see the module docstring). ``options`` go to
    :class:`VideoCaptureSource` (``reconnect_attempts``, ``reconnect_delay``, ``capture_factory``,
    ``file_decoder_threads``) or
    :class:`FolderSource` (``skip_unreadable``)."""
    parsed = parse_source_spec(spec)
    if isinstance(parsed, str) and Path(parsed).is_dir():
        return FolderSource(parsed, **{key: value for key, value in options.items() if key == "skip_unreadable"})
    return VideoCaptureSource(parsed, **{key: value for key, value in options.items() if key != "skip_unreadable"})


def default_mode(source: FrameSource) -> str:
    """``"drop"`` (real time, stale frames dropped) for cameras and streams, ``"every"`` for files and folders."""
    return "drop" if source.is_live else "every"


class CaptureThread:
    """Reads ``source`` on a daemon thread and hands frames to :meth:`get`.

    ``mode="drop"``: one slot holding the newest frame; a frame replaced before it was taken counts in
    :attr:`dropped`. ``mode="every"``: a blocking queue of ``queue_size`` frames, nothing dropped; a frame's
    ``captured_at`` is then the moment :meth:`get` hands it over (time read ahead in the queue is not latency).
    For a file in ``drop`` mode, ``pace=True`` (default) reads at the file's own frame rate, as a camera would deliver it.
    Exceptions raised by the source are re-raised by :meth:`get`.
    """

    def __init__(self, source: FrameSource, *, mode: str = "drop", queue_size: int = 4, pace: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.source = source
        self.mode = mode
        self.pace = pace and mode == "drop" and not source.is_live and source.fps > 0
        self.captured = 0
        self.dropped = 0
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._finished = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture {source.name}", daemon=True)

    def start(self) -> "CaptureThread":
        self._thread.start()
        return self

    def _run(self):
        started = time.perf_counter()
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.captured += 1
                if self.pace:
                    delay = started + frame.index / self.source.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                        frame.captured_at = time.perf_counter()
                if self.mode == "drop":
                    with self._condition:
                        if self._latest is not None:
                            self.dropped += 1
                        self._latest = frame
                        self._condition.notify_all()
                else:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as error:  # re-raised in the consumer's thread by get()
            self._error = error
        finally:
            with self._condition:
                self._finished = True
                self._condition.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame to process (the newest one in ``drop`` mode); ``None`` when the source has ended."""
        if self.mode == "drop":
            with self._condition:
                self._condition.wait_for(lambda: self._latest is not None or self._finished, timeout=timeout)
                frame, self._latest = self._latest, None
        else:
            frame = None
            while frame is None:
                try:
                    frame = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if self._finished and self._queue.empty():
                        break
            if frame is not None:
                # A file read ahead has no wall clock: latency counts from when the pipeline takes the frame.
                frame.captured_at = time.perf_counter()
        if frame is None and self._error is not None:
            error, self._error = self._error, None
            raise error
        return frame

    @property
    def exhausted(self) -> bool:
        """True once the source has ended and every frame it produced has been taken."""
        return self._finished and self._latest is None and self._queue.empty()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (at most a few seconds: a blocked device read is abandoned)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5.0)
