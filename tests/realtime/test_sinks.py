"""Tests of defi1.realtime.sinks: a recording appears whole, frames go to a folder under their index, and a window
without a GUI is a clear error."""

import numpy as np
import pytest

from defi1.errors import Defi1Error
from defi1.images import read_image
from defi1.realtime import sinks
from defi1.realtime.sinks import FolderSink, VideoFileSink, WindowSink, gui_available
from defi1.realtime.video import synthetic_frame, video_properties

pytestmark = pytest.mark.backend_agnostic  # OpenCV and files only


def test_video_file_sink_appears_only_when_closed(tmp_path):
    sink = VideoFileSink(tmp_path / "out" / "recording.avi", fps=12)
    for index in range(4):
        assert sink.write(synthetic_frame(index, width=96, height=64), {"index": index}) is False
    assert sink.frames_written == 4 and not sink.path.exists()  # still a hidden temporary file
    sink.close()
    assert video_properties(sink.path) == {"frames": 4, "fps": 12.0, "width": 96, "height": 64}
    assert sorted(entry.name for entry in sink.path.parent.iterdir()) == ["recording.avi"]


def test_video_file_sink_without_frames_writes_nothing(tmp_path):
    sink = VideoFileSink(tmp_path / "empty.mp4")
    sink.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"cannot write video with extension '.gif'"):
        VideoFileSink(tmp_path / "clip.gif")


def test_folder_sink_names_frames_by_their_index(tmp_path):
    sink = FolderSink(tmp_path / "frames", prefix="shot_", extension=".png")
    frame = np.zeros((4, 6, 3), dtype=np.uint8)
    frame[0, 0] = (255, 0, 0)
    sink.write(frame, {"index": 7})
    sink.write(frame, {"index": 12})
    sink.close()
    assert sink.frames_written == 2
    assert sorted(path.name for path in (tmp_path / "frames").iterdir()) == ["shot_000007.png", "shot_000012.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "frames" / "shot_000007.png"), frame)


def test_gui_detection_reads_opencv_build_information(monkeypatch):
    monkeypatch.setattr(sinks.cv2, "getBuildInformation", lambda: "Video I/O:\n  GUI:     NONE\n")
    assert gui_available() is False
    with pytest.raises(Defi1Error, match="no GUI support .* record with --save OUT.mp4 instead"):
        WindowSink("demo")
    monkeypatch.setattr(sinks.cv2, "getBuildInformation", lambda: "  GUI:     GTK3\n")
    assert gui_available() is True
