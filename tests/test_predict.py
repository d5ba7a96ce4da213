"""Tests of defi1.predict (the library behind ``defi1 detect predict``) with a stand-in detector: what is written
for images and videos, what is refused, and that an interrupted video leaves nothing behind.

The end-to-end runs with a real model are the command-line tests (tests/cli/test_detect_infer.py)."""

import numpy as np
import pytest

from defi1.images import write_image
from defi1.predict import VIDEO_EXTENSIONS, is_video_path, predict_source
from defi1.realtime.video import video_properties, write_synthetic_video
from defi1.yolo.decode import Detection

pytestmark = pytest.mark.backend_agnostic  # no model involved


class OneBoxDetector:
    """One box ``[2, 2, 12, 8]`` of class 0 with score 0.5 in every image; fails on the batch ``fail_at``."""

    batch_size = 2

    def __init__(self, fail_at=None):
        self.fail_at, self.batches = fail_at, 0

    def detect_batch(self, images):
        self.batches += 1
        if self.batches == self.fail_at:
            raise RuntimeError(f"model failed on batch {self.batches}")
        return [Detection(boxes=np.array([[2.0, 2.0, 12.0, 8.0]]), scores=np.array([0.5]), class_ids=np.array([0]),
                          class_names=["thing"], image_size=(image.shape[1], image.shape[0])) for image in images]


def test_video_extensions():
    assert is_video_path("clip.MP4") and is_video_path("a/b.webm") and not is_video_path("frame.png")
    assert ".avi" in VIDEO_EXTENSIONS


def test_folder_of_images(tmp_path):
    for name in ("a.png", "b.jpg", "c.png"):
        write_image(tmp_path / "in" / name, np.full((20, 40, 3), 128, np.uint8))
    report = predict_source(OneBoxDetector(), tmp_path / "in", tmp_path / "out", save_txt=True)
    assert (report["images"], report["detections"], report["skipped"]) == (3, 3, [])
    assert [path.name for path in report["outputs"]] == ["a.png", "b.jpg", "c.png"]
    # [2, 2, 12, 8] in a 40 x 20 image: centre (7, 5), size 10 x 6, normalised.
    assert (tmp_path / "out" / "labels" / "b.txt").read_text() == "0 0.175000 0.250000 0.250000 0.300000 0.500000\n"


def test_video_gives_an_annotated_video_and_one_file_per_frame(tmp_path):
    video = write_synthetic_video(tmp_path / "clip.avi", frames=5, width=64, height=48, fps=10)
    report = predict_source(OneBoxDetector(), video, tmp_path / "out", save_txt=True)
    assert (report["images"], report["detections"]) == (5, 5)
    assert report["outputs"] == [tmp_path / "out" / "clip.mp4"]
    assert video_properties(tmp_path / "out" / "clip.mp4") == {"frames": 5, "fps": 10.0, "width": 64, "height": 48}
    assert sorted(path.name for path in (tmp_path / "out" / "labels").iterdir()) == [
        f"clip_{index:06d}.txt" for index in range(5)]


def test_a_failure_mid_video_leaves_no_partial_video(tmp_path):
    video = write_synthetic_video(tmp_path / "clip.avi", frames=5, width=64, height=48, fps=10)
    with pytest.raises(RuntimeError, match="model failed on batch 2"):
        predict_source(OneBoxDetector(fail_at=2), video, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # neither clip.mp4 nor its temporary file


def test_refused_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png: no such image, folder or video"):
        predict_source(OneBoxDetector(), tmp_path / "nothing.png", tmp_path / "out")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes.txt: not an image \(.jpg"):
        predict_source(OneBoxDetector(), tmp_path / "notes.txt", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no image files in this folder"):
        predict_source(OneBoxDetector(), tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match="the output folder is the source folder"):
        predict_source(OneBoxDetector(), tmp_path / "empty", tmp_path / "empty")
