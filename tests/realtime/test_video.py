"""Tests of defi1.realtime.video: the generated test video and the atomic video writer."""

import cv2
import numpy as np
import pytest

from defi1.realtime.video import (AtomicVideoWriter, _bounce, synthetic_frame, video_properties,
                                  write_synthetic_video)

pytestmark = pytest.mark.backend_agnostic  # numpy / OpenCV / threads only, or the backend's compiled pass


def test_bounce_reflects_between_walls():
    assert _bounce(5.0, 0.0, 10.0) == 5.0
    assert _bounce(12.0, 0.0, 10.0) == 8.0  # 2 past the far wall -> 2 before it
    assert _bounce(-3.0, 0.0, 10.0) == 3.0
    assert _bounce(23.0, 0.0, 10.0) == 3.0  # one full round trip (20) then 3


def test_synthetic_frames_are_deterministic_and_moving():
    first = synthetic_frame(0, width=160, height=120, seed=3)
    assert first.shape == (120, 160, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, synthetic_frame(0, width=160, height=120, seed=3))
    assert np.abs(first.astype(int) - synthetic_frame(5, width=160, height=120, seed=3)).sum() > 0
    assert np.abs(first.astype(int) - synthetic_frame(0, width=160, height=120, seed=4)).sum() > 0


def test_written_video_round_trips(tmp_path):
    path = write_synthetic_video(tmp_path / "v.mp4", frames=12, width=160, height=120, fps=25)
    assert video_properties(path) == {"frames": 12, "fps": 25.0, "width": 160, "height": 120}
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    expected = synthetic_frame(0, width=160, height=120)[:, :, ::-1]
    assert ok and np.abs(frame.astype(int) - expected).mean() < 6  # lossy MPEG-4, close to the original
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temporary file left


def test_unwritable_output_path(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not_a_folder"):
        write_synthetic_video(blocker / "v.mp4", frames=2)
    with pytest.raises(ValueError, match="extension '.gif'"):
        AtomicVideoWriter(tmp_path / "v.gif")


def test_writer_without_frames_leaves_nothing(tmp_path):
    writer = AtomicVideoWriter(tmp_path / "empty.mp4")
    assert writer.close() is None
    assert list(tmp_path.iterdir()) == []


def _codec_name(path):
    """The stream's codec as FFmpeg names it (``h264``, ``mpeg4``)."""
    import subprocess

    from defi1.realtime.video import ffmpeg_executable

    probe = subprocess.run([ffmpeg_executable(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    stream = next(line for line in probe.stderr.splitlines() if "Video:" in line)
    return stream.split("Video:")[1].split()[0]


def test_mp4_recordings_are_h264_when_ffmpeg_is_installed(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg (a dependency) provides the H.264 encoder")
    with AtomicVideoWriter(tmp_path / "odd.mp4", fps=30) as writer:  # odd sides: padded to even for yuv420p
        for index in range(5):
            writer.write(synthetic_frame(index, width=161, height=121))
    assert writer.codec == "h264" and _codec_name(tmp_path / "odd.mp4") == "h264"
    assert video_properties(tmp_path / "odd.mp4") == {"frames": 5, "fps": 30.0, "width": 162, "height": 122}
    capture = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    ok, frame = capture.read()
    capture.release()
    expected = synthetic_frame(0, width=161, height=121)[:, :, ::-1]
    assert ok and np.abs(frame[:121, :161].astype(int) - expected).mean() < 6


def test_without_ffmpeg_opencv_writes_mpeg4(tmp_path, monkeypatch):
    import defi1.realtime.video as video

    monkeypatch.setattr(video, "ffmpeg_executable", lambda: None)
    path = write_synthetic_video(tmp_path / "v.mp4", frames=4, width=160, height=120)
    with AtomicVideoWriter(tmp_path / "w.mp4") as writer:
        writer.write(synthetic_frame(0, width=160, height=120))
    assert writer.codec == "mp4v" and video_properties(path)["frames"] == 4
    with pytest.raises(ValueError, match="H.264 needs"):
        AtomicVideoWriter(tmp_path / "x.mp4", codec="h264")


def test_a_recording_interrupted_by_ctrl_c_keeps_its_frames(tmp_path):
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        with AtomicVideoWriter(tmp_path / "rec.mp4", fps=30) as writer:
            for index in range(7):
                writer.write(synthetic_frame(index, width=160, height=120))
            raise KeyboardInterrupt("Ctrl-C")
    assert video_properties(tmp_path / "rec.mp4")["frames"] == 7
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rec.mp4"]
