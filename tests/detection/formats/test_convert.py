"""``defi1 data convert``: one bad object does not sink a dataset, in any source format; an output that already holds
a dataset is never mixed with the new one (issues 11 and 12)."""

import json

import numpy as np
import pytest

from defi1.cli import main
from defi1.detection.formats import convert_dataset
from defi1.detection.labels import load_dataset_yaml, write_dataset_yaml, write_yolo_labels
from defi1.errors import DataError
from defi1.images import write_image

from .test_loader import _voc

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


def _found(problems):
    return [(problem.kind, problem.path.name, problem.line, problem.location) for problem in problems]


def test_bccd_converts_with_its_two_empty_boxes_listed(shared_dir, tmp_path, capsys):
    bccd = shared_dir / "datasets" / "bccd" / "BCCD"
    if not bccd.is_dir():
        pytest.skip(f"BCCD not found at {bccd}")
    # Before issue 11: "BloodImage_00338.xml, object 13: box ... has no area" and nothing written.
    assert main(["data", "convert", "--from", "voc", "--to", "yolo", "--source", str(bccd), "--out",
                 str(tmp_path / "yolo")]) == 0
    out = capsys.readouterr().out
    assert "BloodImage_00338.xml, object 13: box [504.0, 337.0, 504.0, 337.0] has no area" in out
    assert "BloodImage_00343.xml, object 4: box [181.0, 329.0, 181.0, 329.0] has no area" in out
    assert "9 problem(s) found and handled as listed: 7 duplicate_box (warning), 2 zero_area_box (warning)" in out
    config = load_dataset_yaml(tmp_path / "yolo" / "data.yaml")
    assert config.names == ["Platelets", "RBC", "WBC"]
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [205, 87, 72]
    # BloodImage_00338.xml has 14 objects: the empty 13th is left out, the 13 others are written.
    [label] = (tmp_path / "yolo" / "labels").rglob("BloodImage_00338.txt")
    assert len(label.read_text().splitlines()) == 13
    assert main(["data", "convert", "--from", "voc", "--to", "yolo", "--source", str(bccd), "--out",
                 str(tmp_path / "strict"), "--strict"]) == 1
    error = capsys.readouterr().err
    assert "2 problem(s) in" in error and "BloodImage_00338.xml, object 13: box" in error
    assert not (tmp_path / "strict" / "data.yaml").exists()


def test_every_source_format_skips_and_lists_its_bad_objects(tmp_path):
    """One source per format, each with one good object and one object of no area, outside the image or of an
    unknown class."""
    image = np.zeros((40, 60, 3), np.uint8)
    # keras-yolo3: a box of no area (the second of line 1).
    write_image(tmp_path / "k" / "a.jpg", image)
    (tmp_path / "k" / "ann.txt").write_text("a.jpg 10,10,30,30,0 15,15,15,25,1\n")
    # LabelMe: a shape of an unknown class.
    write_image(tmp_path / "lm" / "a.jpg", image)
    shapes = [{"label": "cat", "points": [[1, 1], [20, 20]], "shape_type": "rectangle", "flags": {}},
              {"label": "cow", "points": [[5, 5], [25, 25]], "shape_type": "rectangle", "flags": {}}]
    (tmp_path / "lm" / "a.json").write_text(json.dumps({"shapes": shapes, "imagePath": "a.jpg", "imageWidth": 60,
                                                        "imageHeight": 40}))
    # COCO: a box entirely outside the 60 x 40 image.
    write_image(tmp_path / "coco" / "images" / "a.jpg", image)
    (tmp_path / "coco" / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 60, "height": 40}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
                        {"id": 6, "image_id": 1, "category_id": 2, "bbox": [70, 5, 10, 10]}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
    # VOC: a box partly outside (clipped, kept) and one of no area.
    _voc(tmp_path / "voc", "a", [("cat", (40, 20, 70, 30)), ("dog", (8, 8, 8, 30))], size=(40, 60))
    # YOLO: a line of zero width and a class beyond the names.
    write_image(tmp_path / "yolo" / "images" / "a.jpg", image)
    (tmp_path / "yolo" / "labels").mkdir(parents=True)
    (tmp_path / "yolo" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.0 0.2\n4 0.5 0.5 0.2 0.2\n")
    write_dataset_yaml(tmp_path / "yolo" / "data.yaml", names=["cat", "dog"], train="images", val=None)
    cases = {
        "keras-yolo3": (tmp_path / "k" / "ann.txt", [("zero_area_box", "ann.txt", 1, "box 2")]),
        "labelme": (tmp_path / "lm", [("unknown_class", "a.json", None, "shape 2")]),
        "coco": (tmp_path / "coco" / "instances.json", [("zero_area_box", "instances.json", None, "annotation 6")]),
        "voc": (tmp_path / "voc", [("box_outside_image", "a.xml", None, "object 1"),
                                   ("zero_area_box", "a.xml", None, "object 2")]),
        "yolo": (tmp_path / "yolo" / "data.yaml", [("zero_area_box", "a.txt", 2, None),
                                                   ("class_out_of_range", "a.txt", 3, None)]),
    }
    for source_format, (source, expected) in cases.items():
        problems = []
        out = convert_dataset(source, tmp_path / f"out_{source_format}", source_format=source_format,
                              target_format="coco", names=["cat", "dog"], problems=problems)
        assert sorted(_found(problems), key=str) == sorted(expected, key=str), source_format
        written = json.loads(out.read_text())
        assert len(written["images"]) == 1, source_format
        assert len(written["annotations"]) == 1, source_format
        with pytest.raises(DataError, match=rf"{source.name}"):
            convert_dataset(source, tmp_path / f"strict_{source_format}", source_format=source_format,
                            target_format="coco", names=["cat", "dog"], strict=True)
    # The VOC box partly outside the 60-wide image is clipped to it: (40, 20)-(60, 30).
    voc = json.loads((tmp_path / "out_voc" / "annotations.json").read_text())
    assert voc["annotations"][0]["bbox"] == [40.0, 20.0, 20.0, 10.0]


@pytest.fixture
def voc_source(tmp_path):
    root = tmp_path / "voc"
    for index in range(3):
        _voc(root, f"new{index}", [("cell", (4, 4, 20, 20))])
    return root


def test_convert_refuses_to_mix_datasets(voc_source, tmp_path, capsys):
    # Issue 12: converting into an existing dataset overwrote same-named files and kept the stale rest (exit 0).
    out = tmp_path / "out"
    write_image(out / "images" / "old.jpg", np.zeros((8, 8, 3), np.uint8))
    write_yolo_labels(out / "labels" / "old.txt", [0], [[0.5, 0.5, 0.5, 0.5]])
    write_dataset_yaml(out / "data.yaml", names=["old"], train="images", val=None)
    assert main(["data", "convert", "--from", "voc", "--to", "yolo", "--source", str(voc_source), "--out",
                 str(out)]) == 1
    assert "out: already holds images/, labels/, data.yaml (a dataset would be mixed" in capsys.readouterr().err
    assert sorted(path.name for path in (out / "images").iterdir()) == ["old.jpg"]  # nothing touched
    assert load_dataset_yaml(out / "data.yaml").names == ["old"]
    assert main(["data", "convert", "--from", "voc", "--to", "yolo", "--source", str(voc_source), "--out", str(out),
                 "--overwrite"]) == 0
    assert sorted(path.name for path in (out / "images").iterdir()) == ["new0.jpg", "new1.jpg", "new2.jpg"]
    assert load_dataset_yaml(out / "data.yaml").names == ["cell"]
    # COCO and VOC outputs are refused alike; an output inside the source is refused even with --overwrite.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "annotations.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds annotations.json"):
        convert_dataset(voc_source, tmp_path / "c", source_format="voc", target_format="coco")
    with pytest.raises(ValueError, match="would be written into the source"):
        convert_dataset(voc_source, voc_source, source_format="voc", target_format="voc", overwrite=True)
    assert len(list((voc_source / "Annotations").glob("*.xml"))) == 3


def test_a_failed_conversion_keeps_the_old_output(voc_source, tmp_path):
    out = tmp_path / "out"
    convert_dataset(voc_source, out, source_format="voc", target_format="yolo")
    (voc_source / "Annotations" / "new1.xml").write_text("<annotation><filename>new1.jpg</filename>")
    with pytest.raises(DataError, match=r"new1\.xml, line \d+: not valid XML"):
        convert_dataset(voc_source, out, source_format="voc", target_format="yolo", overwrite=True)
    assert len(load_dataset_yaml(out / "data.yaml").samples("train")) == 3  # the earlier output is intact
