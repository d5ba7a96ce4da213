"""Video files: a generated test video (moving coloured shapes) and checked, atomic video output.

Recordings are H.264 in ``.mp4`` (``.m4v``, ``.mov``, ``.mkv``) when the FFmpeg of ``imageio-ffmpeg`` is installed
(a dependency of defi1, and on Colab): the codec browsers play, so a notebook can show a recording inline. Without
it, OpenCV's own ``mp4v`` (MPEG-4 part 2) codec writes the file, which OpenCV and desktop players read but browsers
do not. ``.avi`` is always Motion-JPEG through OpenCV.

Tests, ``defi1 bench`` and the Part 3 notebook use :func:`write_synthetic_video`, so that everything runs without a
camera and without downloaded footage.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from defi1.files import AtomicOutput, ensure_output_dir
from defi1.images import bgr_from_rgb

#: Container extension -> OpenCV FourCC, when OpenCV writes the file (all in the OpenCV wheels' FFmpeg).
FOURCC_BY_EXTENSION = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
#: Extensions written as H.264 when FFmpeg (``imageio-ffmpeg``) is available.
H264_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")


def ffmpeg_executable() -> str | None:
    """The FFmpeg binary shipped by ``imageio-ffmpeg`` (``None`` when that package is not installed)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package without a usable binary for this platform
        return None


class _FfmpegH264Writer:
    """Raw RGB frames piped into FFmpeg, encoded as H.264 (``yuv420p``, ``+faststart`` for browsers).

    FFmpeg runs in its own session, so Ctrl-C in the terminal reaches only Python, whose ``finally`` then closes
    the pipe: FFmpeg finishes the file with every frame written so far.
    """

    def __init__(self, executable, path, fps, size):
        width, height = size
        self._log = tempfile.TemporaryFile()
        command = [executable, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-an",
                   "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
                   "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                   "-movflags", "+faststart", str(path)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._log, start_new_session=True)

    def write(self, rgb):
        self._process.stdin.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())

    def release(self):
        """Close the pipe and wait for FFmpeg; returns its error output when it failed, else ``None``."""
        try:
            self._process.stdin.close()
        except OSError:
            pass
        code = self._process.wait()
        self._log.seek(0)
        message = self._log.read().decode("utf-8", errors="replace").strip()
        self._log.close()
        return message or f"exit status {code}" if code else None


class AtomicVideoWriter:
    """Writes a video to a temporary file beside ``path`` and renames it on :meth:`close`.

    Frames are RGB ``uint8`` arrays ``(height, width, 3)``; the size is fixed by the first frame (or ``size``,
    ``(width, height)``), later frames of another size are resized. :meth:`close` (call it in ``finally``, or use the
    writer as a context manager) finalises the container, so a recording interrupted by Ctrl-C keeps every frame
    written so far. Raises ``PermissionError`` naming ``path`` when its folder cannot be written and ``ValueError``
    for an extension that cannot be encoded.

    Args:
        codec: ``"auto"`` (H.264 through FFmpeg for ``.mp4``/``.m4v``/``.mov``/``.mkv`` when ``imageio-ffmpeg`` is
            installed, else OpenCV's FourCC of :data:`FOURCC_BY_EXTENSION`), ``"h264"`` or ``"opencv"``.

    Attributes:
        codec: what actually encodes the file: ``"h264"`` or the OpenCV FourCC (``"mp4v"``, ``"MJPG"``).
    """

    def __init__(self, path, *, fps: float = 30.0, size: tuple[int, int] | None = None, codec: str = "auto"):
        self.path = Path(path)
        extension = self.path.suffix.lower()
        if extension not in FOURCC_BY_EXTENSION:
            raise ValueError(f"{self.path}: cannot write video with extension {extension or '(none)'!r} "
                             f"(expected one of {', '.join(sorted(FOURCC_BY_EXTENSION))})")
        if codec not in ("auto", "h264", "opencv"):
            raise ValueError(f"codec {codec!r}: expected 'auto', 'h264' or 'opencv'")
        self._ffmpeg = ffmpeg_executable() if codec != "opencv" and extension in H264_EXTENSIONS else None
        if codec == "h264" and self._ffmpeg is None:
            raise ValueError(f"{self.path}: H.264 needs an .mp4/.m4v/.mov/.mkv name and FFmpeg (pip install "
                             "imageio-ffmpeg)")
        self.codec = "h264" if self._ffmpeg else FOURCC_BY_EXTENSION[extension]
        ensure_output_dir(self.path.parent)
        if self.path.is_dir():
            raise PermissionError(f"{self.path}: is a folder, expected a video file name")
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size = tuple(size) if size else None
        self.frames_written = 0
        self._output = AtomicOutput(self.path)
        self._writer = None
        if self.size:
            self._open()

    def _open(self):
        if self._ffmpeg:
            self._writer = _FfmpegH264Writer(self._ffmpeg, self._output.temporary, self.fps, self.size)
            return
        fourcc = cv2.VideoWriter_fourcc(*self.codec)
        self._writer = cv2.VideoWriter(str(self._output.temporary), fourcc, self.fps, self.size)
        if not self._writer.isOpened():
            self._writer = None
            raise PermissionError(f"{self.path}: OpenCV cannot open a video writer here "
                                  f"(codec {self.codec}, size {self.size})")

    def write(self, image: np.ndarray) -> None:
        """Append one RGB ``uint8`` frame ``(height, width, 3)``."""
        image = np.asarray(image)
        if self._writer is None:
            if self.size is None:
                self.size = (int(image.shape[1]), int(image.shape[0]))
            self._open()
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        try:
            self._writer.write(image if self._ffmpeg else bgr_from_rgb(image))
        except (BrokenPipeError, OSError) as error:
            raise OSError(f"{self.path}: the video encoder stopped ({error})") from error
        self.frames_written += 1

    def close(self) -> Path | None:
        """Finalise and move the file into place; returns its path (``None`` if no frame was written)."""
        if self._writer is None:
            return None
        failure = self._writer.release()
        self._writer = None
        if self.frames_written == 0:
            self._output.discard()
            return None
        if failure:
            self._output.discard()
            raise OSError(f"{self.path}: FFmpeg could not write the video ({failure})")
        return self._output.commit()

    def discard(self) -> None:
        """Abandon the recording: release the writer and delete what was written (nothing reaches :attr:`path`)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._output.discard()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def synthetic_frame(index: int, *, width: int = 640, height: int = 480, seed: int = 0,
                    num_shapes: int = 4) -> np.ndarray:
    """Frame ``index`` of the synthetic video: RGB ``uint8`` ``(height, width, 3)``, a gradient background and
    ``num_shapes`` filled shapes (circle, square, triangle, cycling) moving and bouncing at constant speeds."""
    generator = np.random.default_rng(seed)
    columns = np.linspace(40, 90, width, dtype=np.float32)
    rows = np.linspace(0, 60, height, dtype=np.float32)[:, None]
    background = (columns[None, :] + rows).astype(np.uint8)
    image = np.stack([background, background + 10, background + 25], axis=2)
    minimum_side = min(width, height)
    for shape_index in range(num_shapes):
        radius = int(generator.uniform(0.06, 0.14) * minimum_side)
        start = generator.uniform([radius, radius], [width - radius, height - radius])
        velocity = generator.uniform(2.0, 6.0, size=2) * generator.choice([-1, 1], size=2)
        color = tuple(int(channel) for channel in generator.integers(120, 256, size=3))
        center = [_bounce(start[axis] + velocity[axis] * index, radius, (width, height)[axis] - radius)
                  for axis in (0, 1)]
        center_x, center_y = int(round(center[0])), int(round(center[1]))
        kind = shape_index % 3
        if kind == 0:
            cv2.circle(image, (center_x, center_y), radius, color, thickness=-1, lineType=cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(image, (center_x - radius, center_y - radius), (center_x + radius, center_y + radius),
                          color, thickness=-1)
        else:
            points = np.array([[center_x, center_y - radius], [center_x - radius, center_y + radius],
                               [center_x + radius, center_y + radius]], dtype=np.int32)
            cv2.fillPoly(image, [points], color, lineType=cv2.LINE_AA)
    return image


def _bounce(position: float, low: float, high: float) -> float:
    """Reflect a position moving freely on a line into ``[low, high]`` (a ball bouncing between two walls)."""
    span = max(high - low, 1e-6)
    offset = (position - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)


def write_synthetic_video(path, *, frames: int, width: int = 640, height: int = 480, fps: float = 30,
                          seed: int = 0) -> Path:
    """Write a ``frames``-long video of moving coloured shapes to ``path`` (``.mp4`` or ``.avi``) and return it.

    Deterministic for a given ``seed``. The file appears atomically (see :class:`AtomicVideoWriter`).
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    with AtomicVideoWriter(path, fps=fps, size=(width, height)) as writer:
        for index in range(frames):
            writer.write(synthetic_frame(index, width=width, height=height, seed=seed))
    return Path(path)


def video_properties(path) -> dict:
    """``{"frames", "fps", "width", "height"}`` of a video file as OpenCV reports them (frames counted by decoding
    when the container does not say). Raises ``FileNotFoundError`` / :class:`defi1.errors.SourceError`."""
    from defi1.errors import SourceError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"{path}: OpenCV cannot decode this video")
        count = 0
        while capture.grab():
            count += 1
        return {"frames": count, "fps": float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}
    finally:
        capture.release()
