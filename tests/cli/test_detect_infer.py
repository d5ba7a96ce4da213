"""``defi1 detect predict`` and ``defi1 detect anchors`` end to end, with a model whose detections are known."""

import math

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from defi1.cli import main
from defi1.yolo.layers import YoloHead

# The constant model (below) on a 128 x 64 image: four 40 x 20-ish boxes, class 1, score 0.72, written normalised.
WIDE_LINES = ("1 0.250000 0.156250 0.312500 0.312500 0.720000\n"
              "1 0.750000 0.156250 0.312500 0.312500 0.720000\n"
              "1 0.250000 0.843750 0.312500 0.312500 0.720000\n"
              "1 0.750000 0.843750 0.312500 0.312500 0.720000\n")


@pytest.fixture
def constant_model_path(tmp_path):
    """A saved 64 x 64 detector whose every 32-pixel cell predicts a 20 x 20 box at the cell centre, objectness 0.8,
    class 1 with probability 0.9 (score 0.72), whatever the image."""
    inputs = keras.Input((None, None, 3))
    convolution = keras.layers.Conv2D(7, 32, strides=32, name="constant")
    outputs = [YoloHead(anchors=[[20, 20]], num_classes=2, stride=32, input_size=64, head_index=0,
                        class_names=["circle", "square"])(convolution(inputs))]
    model = keras.Model(inputs, outputs)
    convolution.set_weights([np.zeros((32, 32, 3, 7), np.float32),
                             np.array([0, 0, 0, 0, math.log(4), -5, math.log(9)], np.float32)])
    path = tmp_path / "constant.keras"
    model.save(path)
    return path


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_folder_writes_images_and_txt_and_skips_unreadable_files(constant_model_path, tmp_path, capsys):
    source = tmp_path / "images"
    source.mkdir()
    Image.new("RGB", (128, 64), "white").save(source / "wide.png")
    Image.new("L", (64, 128), 90).save(source / "tall.jpg")
    (source / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source", str(source),
                           "--out", str(out), "--save-txt"], capsys)
    assert code == 0
    assert "2 image(s) at 64x64, 8 detection(s)" in stdout
    assert "broken.jpg" in stdout and "1 file(s) skipped" in stdout
    assert (out / "labels" / "wide.txt").read_text() == WIDE_LINES
    # 64 x 128: scale 0.5, pad_x 16; cell boxes [0, 12, 20, 52], [44, 12, 64, 52], ... normalised by 64 x 128.
    first_tall = (out / "labels" / "tall.txt").read_text().splitlines()[0]
    assert first_tall == "1 0.156250 0.250000 0.312500 0.312500 0.720000"
    annotated = np.asarray(Image.open(out / "wide.png"))
    assert annotated.shape == (64, 128, 3) and np.any(annotated != 255)
    assert (out / "tall.jpg").is_file() and not (out / "broken.jpg").exists()


def test_predict_unreadable_single_image_names_it(constant_model_path, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"garbage")
    code, _, stderr = run(["detect", "predict", "--model", str(constant_model_path), "--source",
                           str(tmp_path / "broken.png"), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "broken.png" in stderr and "cannot decode image" in stderr


def test_predict_video_writes_an_annotated_video_and_one_txt_per_frame(constant_model_path, tmp_path, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 64))
    assert writer.isOpened()
    for index in range(5):
        writer.write(np.full((64, 128, 3), 40 * index, np.uint8))
    writer.release()
    out = tmp_path / "out"
    code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source", str(video), "--out",
                           str(out), "--save-txt", "--batch-size", "2"], capsys)
    assert code == 0 and "5 image(s)" in stdout and "20 detection(s)" in stdout
    assert sorted(path.name for path in (out / "labels").iterdir()) == [f"clip_{index:06d}.txt" for index in range(5)]
    assert (out / "labels" / "clip_000004.txt").read_text() == WIDE_LINES
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 5 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 128
    capture.release()
    assert not list(out.glob(".*tmp*"))


def test_predict_reports_bad_arguments(constant_model_path, tmp_path, capsys):
    code, _, stderr = run(["detect", "predict", "--source", str(tmp_path)], capsys)
    assert code == 1 and "no model: give --model" in stderr
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    code, _, stderr = run(["detect", "predict", "--model", str(constant_model_path), "--source",
                           str(tmp_path / "a.png"), "--input-size", "50", "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "not a multiple of 32" in stderr
    code, _, stderr = run(["detect", "predict", "--model", str(tmp_path / "none.keras"), "--source",
                           str(tmp_path / "a.png")], capsys)
    assert code == 1 and "none.keras: no such model file" in stderr
    code, _, stderr = run(["detect", "predict", "--model", str(constant_model_path), "--source", str(tmp_path),
                           "--out", str(tmp_path)], capsys)
    assert code == 1 and "would overwrite the originals" in stderr


def test_anchors_prints_kmeans_anchors_of_a_dataset(tmp_path, capsys):
    from defi1.detection.labels import write_dataset_yaml

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "train" / "a.png")
    # At 416: scale 2.08, boxes 0.5 x 0.25 -> 208 x 52 px and 0.1 x 0.1 -> 41.6 x 20.8 px.
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.25\n0 0.2 0.2 0.1 0.1\n")
    data = write_dataset_yaml(tmp_path / "data.yaml", names=["a"])
    code, stdout, _ = run(["detect", "anchors", "--data", str(data), "-k", "2", "--input-size", "416"], capsys)
    assert code == 0
    assert "anchors = 42,21,  208,52" in stdout and "mean IoU: 1.0000" in stdout
    assert "2 boxes (train) at input 416" in stdout
    code, _, stderr = run(["detect", "anchors", "--data", str(data), "-k", "3"], capsys)
    assert code == 1 and "at least k=3 boxes" in stderr


def test_predict_with_the_onnxruntime_engine_writes_the_same_detections(constant_model_path, tmp_path, capsys,
                                                                        monkeypatch):
    pytest.importorskip("onnxruntime")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("ONNX export runs through tf2onnx under the TensorFlow backend")
    monkeypatch.setenv("DEFI1_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "images"
    source.mkdir()
    Image.new("RGB", (128, 64), "white").save(source / "wide.png")
    out = tmp_path / "out"
    code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source", str(source),
                           "--out", str(out), "--save-txt", "--engine", "onnxruntime"], capsys)
    assert code == 0, stdout
    assert (out / "labels" / "wide.txt").read_text() == WIDE_LINES


def test_predict_with_darknet_files_on_another_engine_names_a_missing_cfg(tmp_path, capsys):
    # darknet files now run on every engine (defi1 writes the ONNX file itself): a missing cfg is the error
    code, _, stderr = run(["detect", "predict", "--cfg", "a.cfg", "--weights", "a.weights", "--source", "x.jpg",
                           "--engine", "onnxruntime"], capsys)
    assert code == 1 and "a.cfg: darknet cfg file not found" in stderr


def test_predict_skips_a_decompression_bomb_in_a_folder_and_names_it_alone(constant_model_path, tmp_path, capsys,
                                                                          decompression_bomb):
    # Issue 12: PIL's DecompressionBombError is not an OSError and escaped as a traceback.
    Image.new("RGB", (128, 64), "white").save(decompression_bomb.parent / "wide.png")
    code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source",
                           str(decompression_bomb.parent), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "1 image(s) at 64x64, 4 detection(s)" in stdout
    assert "huge.png: image too large to read" in stdout and "1 file(s) skipped" in stdout
    code, _, stderr = run(["detect", "predict", "--model", str(constant_model_path), "--source",
                           str(decompression_bomb), "--out", str(tmp_path / "out2")], capsys)
    assert code == 1 and "huge.png: image too large to read" in stderr


def test_predict_multi_label_scores_every_class_above_the_threshold(constant_model_path, tmp_path, capsys):
    # Each cell: objectness 0.8, class 1 with 0.9 (score 0.72), class 0 with sigmoid(-5) = 0.00669 (score 0.00535).
    Image.new("RGB", (128, 64), "white").save(tmp_path / "wide.png")
    for flag, expected in (([], 4), (["--multi-label"], 8)):
        code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source",
                               str(tmp_path / "wide.png"), "--out", str(tmp_path / f"out{len(flag)}"), "--conf", "0.005",
                               "--save-txt", *flag], capsys)
        assert code == 0 and f"{expected} detection(s)" in stdout
    lines = (tmp_path / "out1" / "labels" / "wide.txt").read_text().splitlines()
    assert lines[:4] == WIDE_LINES.splitlines()
    assert [line.split()[0] for line in lines[4:]] == ["0"] * 4
    assert {line.split()[-1] for line in lines[4:]} == {f"{0.8 / (1 + math.exp(5)):.6f}"}


def test_predict_video_skips_a_damaged_frame_and_reports_it(constant_model_path, damaged_video, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run(["detect", "predict", "--model", str(constant_model_path), "--source", str(damaged_video),
                           "--out", str(out), "--save-txt", "--no-images"], capsys)
    assert code == 0 and "59 image(s)" in stdout and "1 unreadable video frame(s) skipped" in stdout
    names = sorted(path.name for path in (out / "labels").iterdir())
    assert len(names) == 59 and "damaged_000006.txt" not in names and names[-1] == "damaged_000059.txt"
