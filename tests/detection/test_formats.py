"""Conversions between VOC, keras-yolo3, LabelMe, COCO and YOLO: round trips exact to the pixel."""

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from defi1.detection.formats import convert_dataset, read_annotations
from defi1.detection.labels import load_dataset_yaml, read_difficult_flags
from defi1.errors import DataError
from defi1.images import write_image

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


def _voc_xml(filename, width, height, objects):
    parts = [f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, (x_min, y_min, x_max, y_max), difficult in objects:
        parts.append(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x_min}</xmin>"
                     f"<ymin>{y_min}</ymin><xmax>{x_max}</xmax><ymax>{y_max}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


VOC_OBJECTS = {
    "course": (300, 208, [("dog", (6, 21, 293, 202), 0)]),
    "street": (640, 427, [("person", (12, 33, 201, 400), 0), ("dog", (300, 200, 639, 427), 1),
                          ("person", (0, 0, 1, 1), 0)]),
}


@pytest.fixture
def voc_source(tmp_path):
    root = tmp_path / "voc"
    for stem, (width, height, objects) in VOC_OBJECTS.items():
        write_image(root / "JPEGImages" / f"{stem}.jpg", np.zeros((height, width, 3), np.uint8))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", width, height, objects))
    return root


def _read_voc_objects(folder):
    result = {}
    for xml_file in sorted((folder / "Annotations").glob("*.xml")):
        root = ElementTree.parse(xml_file).getroot()
        result[xml_file.stem] = (int(root.findtext("size/width")), int(root.findtext("size/height")), [
            (element.findtext("name"), tuple(int(element.findtext(f"bndbox/{key}"))
                                             for key in ("xmin", "ymin", "xmax", "ymax")),
             int(element.findtext("difficult"))) for element in root.findall("object")])
    return result


def test_voc_to_yolo_to_voc_keeps_pixels_and_difficult(voc_source, tmp_path):
    data_yaml = convert_dataset(voc_source, tmp_path / "yolo", source_format="voc", target_format="yolo")
    config = load_dataset_yaml(data_yaml)
    assert config.names == ["dog", "person"]  # sorted class names when none are given
    # The course's example, to the character.
    assert (tmp_path / "yolo/labels/course.txt").read_text() == "0 0.498333 0.536058 0.956667 0.870192\n"
    assert read_difficult_flags(tmp_path / "yolo/labels/street.txt", 3).tolist() == [False, True, False]
    convert_dataset(data_yaml, tmp_path / "back", source_format="yolo", target_format="voc")
    assert _read_voc_objects(tmp_path / "back") == VOC_OBJECTS
    assert (tmp_path / "back/JPEGImages/street.jpg").is_file()


def test_keras_yolo3_round_trip(tmp_path):
    source = tmp_path / "k"
    write_image(source / "imgs" / "a.jpg", np.zeros((100, 200, 3), np.uint8))
    write_image(source / "imgs" / "b.png", np.zeros((50, 60, 3), np.uint8))
    lines = "imgs/a.jpg 10,20,110,90,1 0,0,200,100,0\nimgs/b.png\n"
    (source / "annotations.csv").write_text(lines)
    data_yaml = convert_dataset(source / "annotations.csv", tmp_path / "yolo", source_format="keras-yolo3",
                                target_format="yolo", names=["cat", "dog"])
    assert (tmp_path / "yolo/labels/imgs/a.txt").read_text() == ("1 0.300000 0.550000 0.500000 0.700000\n"
                                                                 "0 0.500000 0.500000 1.000000 1.000000\n")
    out = convert_dataset(data_yaml, tmp_path / "back" / "annotations.csv", source_format="yolo",
                          target_format="keras-yolo3")
    assert out.read_text() == "images/imgs/a.jpg 10,20,110,90,1 0,0,200,100,0\nimages/imgs/b.png\n"
    assert (tmp_path / "back/images/imgs/b.png").is_file()


def test_labelme_round_trip(tmp_path):
    source = tmp_path / "lm"
    write_image(source / "x.png", np.zeros((120, 160, 3), np.uint8))
    shapes = [{"label": "cup", "points": [[100.5, 80.25], [20.0, 10.0]], "shape_type": "rectangle", "flags": {}},
              {"label": "mug", "points": [[5, 5], [40, 8], [30, 60]], "shape_type": "polygon",
               "flags": {"difficult": True}}]
    (source / "x.json").write_text(json.dumps({"shapes": shapes, "imagePath": "x.png", "imageWidth": 160,
                                               "imageHeight": 120}))
    data_yaml = convert_dataset(source, tmp_path / "yolo", source_format="labelme", target_format="yolo")
    convert_dataset(data_yaml, tmp_path / "back", source_format="yolo", target_format="labelme")
    payload = json.loads((tmp_path / "back/x.json").read_text())
    assert [shape["label"] for shape in payload["shapes"]] == ["cup", "mug"]
    # The rectangle's corners are ordered; the polygon became its bounding box (5, 5)-(40, 60).
    np.testing.assert_allclose(payload["shapes"][0]["points"], [[20.0, 10.0], [100.5, 80.25]], atol=1e-3)
    np.testing.assert_allclose(payload["shapes"][1]["points"], [[5, 5], [40, 60]], atol=1e-3)
    assert payload["shapes"][1]["flags"] == {"difficult": True} and payload["imageWidth"] == 160


def test_coco_round_trip_and_category_order(tmp_path):
    source = tmp_path / "coco"
    write_image(source / "images" / "p.jpg", np.zeros((80, 100, 3), np.uint8))
    write_image(source / "images" / "q.jpg", np.zeros((80, 100, 3), np.uint8))
    payload = {"images": [{"id": 7, "file_name": "p.jpg", "width": 100, "height": 80},
                          {"id": 9, "file_name": "q.jpg", "width": 100, "height": 80}],
               "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [10.0, 12.5, 30.0, 40.0],
                                "area": 1200.0, "iscrowd": 0},
                               {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 100, 80], "area": 8000,
                                "iscrowd": 1}],
               "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]}
    (source / "instances.json").write_text(json.dumps(payload))
    data_yaml = convert_dataset(source / "instances.json", tmp_path / "yolo", source_format="coco",
                                target_format="yolo")
    assert load_dataset_yaml(data_yaml).names == ["car", "dog"]  # by category id
    assert (tmp_path / "yolo/labels/p.txt").read_text() == ("1 0.250000 0.406250 0.300000 0.500000\n"
                                                            "0 0.500000 0.500000 1.000000 1.000000\n")
    assert (tmp_path / "yolo/labels/q.txt").read_text() == ""
    json_file = convert_dataset(data_yaml, tmp_path / "back", source_format="yolo", target_format="coco")
    back = json.loads(json_file.read_text())
    assert [category["name"] for category in back["categories"]] == ["car", "dog"]
    assert [entry["bbox"] for entry in back["annotations"]] == [[10.0, 12.5, 30.0, 40.0], [0.0, 0.0, 100.0, 80.0]]
    assert [entry.get("difficult", 0) for entry in back["annotations"]] == [0, 1]
    assert [image["file_name"] for image in back["images"]] == ["p.jpg", "q.jpg"]


def test_voc_to_coco_directly(voc_source, tmp_path):
    json_file = convert_dataset(voc_source, tmp_path / "c.json", source_format="voc", target_format="coco",
                                names=["person", "dog", "cat"])
    back = json.loads(json_file.read_text())
    assert [category["name"] for category in back["categories"]] == ["person", "dog", "cat"]
    annotations, names = read_annotations(json_file, "coco")
    assert [item.box for item in annotations[0].objects] == [(6.0, 21.0, 293.0, 202.0)]


def test_bad_sources_are_reported(voc_source, tmp_path):
    (voc_source / "Annotations" / "course.xml").write_text("<annotation><filename>course.jpg</filename>\n<oops>")
    with pytest.raises(DataError, match=r"course\.xml, line \d+: not valid XML"):
        convert_dataset(voc_source, tmp_path / "o", source_format="voc", target_format="yolo")
    write_image(tmp_path / "k" / "a.jpg", np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "k" / "ann.txt").write_text("a.jpg 1,2,3,4,0\na.jpg 1,2,3\n")
    with pytest.raises(DataError, match=r"ann\.txt, line 2: '1,2,3': expected x_min,y_min,x_max,y_max,class"):
        convert_dataset(tmp_path / "k" / "ann.txt", tmp_path / "o2", source_format="keras-yolo3",
                        target_format="yolo", names=["a"])
    (tmp_path / "k" / "ann.txt").write_text("missing.jpg 1,2,3,4,0\n")
    with pytest.raises(DataError, match=r"ann\.txt, line 1: image not found"):
        convert_dataset(tmp_path / "k" / "ann.txt", tmp_path / "o3", source_format="keras-yolo3",
                        target_format="yolo", names=["a"])
    with pytest.raises(ValueError, match="unknown format 'darknet'"):
        convert_dataset(voc_source, tmp_path / "o4", source_format="darknet", target_format="yolo")
    (voc_source / "Annotations" / "course.xml").write_text(_voc_xml("course.jpg", 300, 208, VOC_OBJECTS["course"][2]))
    # A class outside the names given is one bad object, not a bad dataset: dropped and listed (issue 11); --strict
    # makes it fatal.
    with pytest.raises(DataError, match="class.*dog.* not in the class names"):
        convert_dataset(voc_source, tmp_path / "o5", source_format="voc", target_format="yolo", names=["person"],
                        strict=True)
    problems = []
    convert_dataset(voc_source, tmp_path / "o6", source_format="voc", target_format="yolo", names=["person"],
                    problems=problems)
    assert [(problem.kind, problem.path.name, problem.location) for problem in problems] == [
        ("unknown_class", "course.xml", "object 1"), ("unknown_class", "street.xml", "object 2")]
    assert (tmp_path / "o6/labels/course.txt").read_text() == ""


def test_splits_survive_voc_and_keras_yolo3(tmp_path):
    from defi1.detection.shapes import generate_shapes_dataset

    data_yaml = generate_shapes_dataset(tmp_path / "shapes", num_images=3, num_val=2, seed=0, image_size=64)
    convert_dataset(data_yaml, tmp_path / "voc", source_format="yolo", target_format="voc")
    assert (tmp_path / "voc/ImageSets/Main/val.txt").read_text() == "val_00000\nval_00001\n"
    back = load_dataset_yaml(convert_dataset(tmp_path / "voc", tmp_path / "yolo", source_format="voc",
                                             target_format="yolo", names=data_yaml))
    assert len(back.samples("train")) == 3 and len(back.samples("val")) == 2
    original = sorted(p.read_text() for p in (tmp_path / "shapes/labels/val").glob("*.txt"))
    assert sorted(p.read_text() for p in (tmp_path / "yolo/labels/val").glob("*.txt")) == original
    lines = convert_dataset(data_yaml, tmp_path / "k.txt", source_format="yolo", target_format="keras-yolo3")
    back = load_dataset_yaml(convert_dataset(lines, tmp_path / "yolo2", source_format="keras-yolo3",
                                             target_format="yolo", names=data_yaml))
    assert len(back.samples("val")) == 2
    assert sorted(p.read_text() for p in (tmp_path / "yolo2/labels/val").glob("*.txt")) == original
