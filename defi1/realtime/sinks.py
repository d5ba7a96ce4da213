"""Where annotated frames go during streaming: a window, a video file, a folder of images.

A sink receives RGB ``uint8`` frames ``(height, width, 3)`` with their detections already drawn. ``write`` returns
``True`` when the user asked to stop (a key pressed in the window). :func:`defi1.realtime.stream.run_stream` closes
every sink in ``finally``, so a recording interrupted by Ctrl-C or an exception keeps the frames written so far.
"""

from __future__ import annotations

import cv2
import numpy as np

from defi1.errors import Defi1Error
from defi1.files import ensure_output_dir
from defi1.images import bgr_from_rgb, write_image
from defi1.realtime.video import AtomicVideoWriter

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Escape


class FrameSink:
    """Base class: :meth:`write` one annotated frame (``info`` is the per-frame dictionary of
    :func:`~defi1.realtime.stream.run_stream`), :meth:`close` at the end."""

    def write(self, image: np.ndarray, info: dict) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the sink holds (called once, in ``finally``)."""


class VideoFileSink(FrameSink):
    """Record the annotated frames to a video file (``.mp4`` or ``.avi``) at ``fps`` frames per second.

    The file is written beside its final name and moved into place by :meth:`close` (see
    :class:`~defi1.realtime.video.AtomicVideoWriter`). The folder is checked at construction: an unwritable path
    raises ``PermissionError`` naming it before any frame is processed.
    """

    def __init__(self, path, *, fps: float = 30.0):
        self.writer = AtomicVideoWriter(path, fps=fps)
        self.path = self.writer.path

    def write(self, image, info) -> bool:
        self.writer.write(image)
        return False

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def close(self) -> None:
        self.writer.close()


class FolderSink(FrameSink):
    """Write each annotated frame as ``<prefix><index>.jpg`` into ``folder`` (atomic writes)."""

    def __init__(self, folder, *, prefix: str = "frame_", extension: str = ".jpg"):
        self.folder = ensure_output_dir(folder)
        self.prefix = prefix
        self.extension = extension
        self.frames_written = 0

    def write(self, image, info) -> bool:
        write_image(self.folder / f"{self.prefix}{info['index']:06d}{self.extension}", image)
        self.frames_written += 1
        return False


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True


class WindowSink(FrameSink):
    """Show the annotated frames in an OpenCV window; ``q`` or Escape asks to stop.

    Raises :class:`defi1.errors.Defi1Error` at construction when OpenCV has no GUI (the headless wheel, a server,
    Colab), with what to do instead.
    """

    def __init__(self, title: str = "defi1"):
        if not gui_available():
            raise Defi1Error("cannot show a window: this OpenCV build has no GUI support (opencv-python-headless, "
                             "GUI: NONE). Install opencv-python on a desktop, record with --save OUT.mp4 instead, "
                             "or on Colab use defi1.realtime.colab")
        self.title = title
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as error:
            raise Defi1Error(f"cannot open a window (no display? {error.msg if hasattr(error, 'msg') else error})") \
                from error

    def write(self, image, info) -> bool:
        cv2.imshow(self.title, bgr_from_rgb(image))
        key = cv2.waitKey(1) & 0xFF
        return key in QUIT_KEYS

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass

