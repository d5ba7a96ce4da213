"""``defi1 data convert | check | shapes | paste`` through the CLI entry point (in process)."""

import json

import numpy as np

from defi1.cli import main
from defi1.detection.labels import load_dataset_yaml
from defi1.images import write_image


def test_shapes_then_check(tmp_path, capsys):
    assert main(["data", "shapes", "--out", str(tmp_path / "s"), "--images", "4", "--size", "64", "--val", "2",
                 "--test", "1", "--seed", "3"]) == 0
    config = load_dataset_yaml(tmp_path / "s" / "data.yaml")
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [4, 2, 1]
    assert main(["data", "check", "--data", str(tmp_path / "s" / "data.yaml"), "--strict",
                 "--json", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and report["splits"]["train"]["images"] == 4
    assert "objects (images) per class and split" in capsys.readouterr().out
    # A class id out of range makes --strict fail and names the file and line.
    label = sorted((tmp_path / "s" / "labels" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "9 0.5 0.5 0.1 0.1\n")
    line = len(label.read_text().splitlines())
    assert main(["data", "check", "--data", str(tmp_path / "s"), "--strict"]) == 1
    assert f"{label}, line {line}: class 9 out of range (expected 0..4)" in capsys.readouterr().out
    # An error fails the check without --strict too (issue 11); a warning alone (a box clipped) does not.
    assert main(["data", "check", "--data", str(tmp_path / "s")]) == 1
    assert "defi1: check failed: errors found" in capsys.readouterr().out
    label.write_text(label.read_text().replace("9 0.5 0.5 0.1 0.1\n", "0 0.98 0.5 0.1 0.1\n"))
    assert main(["data", "check", "--data", str(tmp_path / "s")]) == 0
    assert "box_outside_image (warning)" in capsys.readouterr().out
    assert main(["data", "check", "--data", str(tmp_path / "s"), "--strict"]) == 1


def test_convert_voc_to_yolo(tmp_path, capsys):
    write_image(tmp_path / "voc" / "JPEGImages" / "a.jpg", np.zeros((208, 300, 3), np.uint8))
    (tmp_path / "voc" / "Annotations").mkdir()
    (tmp_path / "voc" / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>300</width><height>208</height></size><object>"
        "<name>dog</name><difficult>0</difficult><bndbox><xmin>6</xmin><ymin>21</ymin><xmax>293</xmax>"
        "<ymax>202</ymax></bndbox></object></annotation>")
    assert main(["data", "convert", "--from", "voc", "--to", "yolo", "--source", str(tmp_path / "voc"), "--out",
                 str(tmp_path / "yolo")]) == 0
    assert (tmp_path / "yolo" / "labels" / "a.txt").read_text() == "0 0.498333 0.536058 0.956667 0.870192\n"
    # Bad input: one line on stderr, exit code 1.
    assert main(["data", "convert", "--from", "coco", "--to", "yolo", "--source", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "o")]) == 1
    assert "defi1: error:" in capsys.readouterr().err


def test_paste(tmp_path):
    write_image(tmp_path / "objects" / "box" / "a.png", np.full((10, 10, 3), 200, np.uint8))
    write_image(tmp_path / "bg" / "b.jpg", np.zeros((50, 70, 3), np.uint8))
    assert main(["data", "paste", "--objects", str(tmp_path / "objects"), "--backgrounds", str(tmp_path / "bg"),
                 "--out", str(tmp_path / "out"), "--images", "2", "--val", "1", "--size", "48", "--max-objects",
                 "2", "--format", "png"]) == 0
    config = load_dataset_yaml(tmp_path / "out" / "data.yaml")
    assert config.names == ["box"] and len(config.samples("train")) == 2
    assert main(["data", "paste", "--objects", str(tmp_path / "objects"), "--backgrounds", str(tmp_path / "bg"),
                 "--out", str(tmp_path / "out2"), "--images", "2", "--min-scale", "0.9", "--max-scale",
                 "0.1"]) == 1
    assert not (tmp_path / "out2").exists()
