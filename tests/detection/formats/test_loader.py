"""The one dataset loader (:func:`defi1.detection.formats.load_dataset`) on datasets as students have them: exports
of Roboflow, CVAT and LabelMe built here as those tools write them, Ultralytics' YAML forms, VOC's split lists, and
BCCD (real labelImg annotations, ../shared)."""

import json

import numpy as np
import pytest

from defi1.detection.formats import detect_format, load_dataset
from defi1.detection.labels import load_dataset_yaml, load_ground_truth, write_yolo_labels
from defi1.errors import ConfigError
from defi1.images import write_image

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend

ROBOFLOW_YAML = """train: ../train/images
val: ../valid/images
test: ../test/images

nc: 2
names: ['cat', 'dog']

roboflow:
  workspace: course
  project: pets
  version: 1
  license: CC BY 4.0
  url: https://universe.roboflow.com/course/pets/dataset/1
"""


def _yolo_image(folder, stem, class_ids, size=(40, 60), value=0):
    """``folder/images/<stem>.jpg`` (height 40, width 60, filled with ``value``) and its label file (boxes centred,
    0.5 x 0.5)."""
    write_image(folder / "images" / f"{stem}.jpg", np.full(size + (3,), value, np.uint8))
    write_yolo_labels(folder / "labels" / f"{stem}.txt", class_ids, [[0.5, 0.5, 0.5, 0.5]] * len(class_ids))


@pytest.fixture
def roboflow_export(tmp_path):
    """Roboflow's "YOLOv8" export: data.yaml beside train/, valid/, test/, each with images/ and labels/."""
    root = tmp_path / "pets.v1i.yolov8"
    for split, count in (("train", 3), ("valid", 2), ("test", 1)):
        for index in range(count):
            _yolo_image(root / split, f"{split}_{index}", [index % 2])
    (root / "data.yaml").write_text(ROBOFLOW_YAML)
    (root / "README.roboflow.txt").write_text("exported from roboflow.com\n")
    return root


def test_roboflow_yaml_falls_back_as_ultralytics_does(roboflow_export):
    # "../train/images" does not exist beside the YAML: Ultralytics (and defi1) read it as "train/images".
    config = load_dataset_yaml(roboflow_export / "data.yaml")
    assert config.train == roboflow_export / "train" / "images" and config.names == ["cat", "dog"]
    index = load_dataset(roboflow_export)  # the folder holding the YAML is enough
    assert index.format == "yolo" and index.names == ["cat", "dog"]
    assert {split: len(index.samples(split)) for split in ("train", "val", "test")} == {"train": 3, "val": 2,
                                                                                      "test": 1}
    sample = index.samples("val")[1]
    assert sample.label_path == roboflow_export / "valid" / "labels" / "valid_1.txt"
    boxes, class_ids = load_ground_truth(sample, (60, 40))
    assert boxes.tolist() == [[15.0, 10.0, 45.0, 30.0]] and class_ids.tolist() == [1]


def test_a_parent_path_that_exists_is_kept(roboflow_export):
    # The same YAML one folder down: "../train/images" now exists from the YAML's folder and is used as written.
    (roboflow_export / "config").mkdir()
    (roboflow_export / "config" / "data.yaml").write_text(ROBOFLOW_YAML)
    assert load_dataset_yaml(roboflow_export / "config" / "data.yaml").train == roboflow_export / "train" / "images"


def test_path_lists_of_folders_and_image_lists(tmp_path):
    for index in range(2):
        _yolo_image(tmp_path / "data" / "part_a", f"a{index}", [0])
    _yolo_image(tmp_path / "data" / "part_b", "b0", [1])
    # CVAT's Ultralytics export: a train.txt of image paths relative to the dataset root (one with "./").
    (tmp_path / "data" / "train.txt").write_text("part_a/images/a0.jpg\n./part_b/images/b0.jpg\n\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mixed.yaml").write_text(
        "path: ../data\ntrain:\n  - part_a/images\n  - part_b/images\nval: train.txt\nnames:\n  0: cat\n  1: dog\n")
    index = load_dataset(tmp_path / "configs" / "mixed.yaml")
    assert [sample.image_path.name for sample in index.samples("train")] == ["a0.jpg", "a1.jpg", "b0.jpg"]
    assert [sample.image_path.name for sample in index.samples("val")] == ["a0.jpg", "b0.jpg"]
    assert index.samples("val")[1].label_path == tmp_path / "data" / "part_b" / "labels" / "b0.txt"
    assert index.sources["train"] == (tmp_path / "data" / "part_a" / "images", tmp_path / "data" / "part_b" / "images")


def test_names_forms_and_bad_class_counts_name_the_file_and_key(tmp_path):
    _yolo_image(tmp_path, "x", [0])
    path = tmp_path / "data.yaml"
    path.write_text("train: images\nnames: [cat, dog]\n")
    assert load_dataset_yaml(path).names == ["cat", "dog"]
    path.write_text("train: images\nnc: 3\n")  # Ultralytics: nc alone names the classes
    assert load_dataset_yaml(path).names == ["class0", "class1", "class2"]
    path.write_text("train: images\nval: images\nnc: five\nnames: [cat, dog]\n")
    with pytest.raises(ConfigError, match=r"data\.yaml, line 3: 'nc' is 'five', expected the number of classes"):
        load_dataset_yaml(path)
    path.write_text("train: images\nnc: 3\nnames: [cat, dog]\n")
    with pytest.raises(ConfigError, match=r"data\.yaml, line 2: nc = 3 but 2 names"):
        load_dataset_yaml(path)
    path.write_text("train: 7\nnames: [cat]\n")
    with pytest.raises(ConfigError, match=r"data\.yaml, line 1: 'train' must be an image folder, a \.txt file"):
        load_dataset_yaml(path)


def _voc(root, stem, objects, size=(48, 64), value=0):
    height, width = size
    write_image(root / "JPEGImages" / f"{stem}.jpg", np.full((height, width, 3), value, np.uint8))
    parts = [f"<annotation><filename>{stem}.jpg</filename><size><width>{width}</width><height>{height}</height>"
             "</size>"]
    for name, box in objects:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}"
                     f"</xmax><ymax>{box[3]}</ymax></bndbox></object>")
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{stem}.xml").write_text("".join(parts) + "</annotation>")


def test_voc_split_lists_are_kept(tmp_path):
    root = tmp_path / "voc"
    for index in range(4):
        _voc(root, f"img{index}", [("cell", (4, 4, 20, 20))])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("img0\nimg2\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("img1\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("img3\n")
    index = load_dataset(root)
    assert index.format == "voc" and index.names == ["cell"]
    assert {split: [sample.image_path.stem for sample in samples] for split, samples in index.splits.items()} == {
        "train": ["img0", "img2"], "val": ["img1"], "test": ["img3"]}
    sample = index.samples("val")[0]
    assert sample.label_path == root / "Annotations" / "img1.xml" and sample.relative_path.as_posix() == "img1.jpg"
    boxes, class_ids = load_ground_truth(sample, (64, 48))
    assert boxes.tolist() == [[4.0, 4.0, 20.0, 20.0]] and class_ids.tolist() == [0]


@pytest.mark.parametrize("wrapping", ["BCCD", "VOCdevkit/VOC2007"])
def test_a_folder_wrapping_one_voc_folder_is_read_with_its_images_and_splits(tmp_path, wrapping):
    """A dataset repository as students clone it (BCCD's has its VOC folder in BCCD/, VOC's own in
    VOCdevkit/VOC2007/): pointed at the repository, the images and split lists are found (before: every image 'not
    found', looked for beside the repository)."""
    repository = tmp_path / "repository"
    root = repository / wrapping
    for index in range(3):
        _voc(root, f"img{index}", [("cell", (4, 4, 20, 20))])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("img0\nimg2\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("img1\n")
    (repository / "LICENSE").write_text("MIT\n")
    assert detect_format(repository) == "voc"
    index = load_dataset(repository)
    assert {split: [sample.image_path for sample in samples] for split, samples in index.splits.items()
            if samples} == {"train": [root / "JPEGImages" / "img0.jpg", root / "JPEGImages" / "img2.jpg"],
                            "test": [root / "JPEGImages" / "img1.jpg"]}


def _cvat_coco(root):
    """CVAT's "COCO 1.0" export: annotations/instances_default.json, images in images/default/; label ids 1, 2 and
    4 (label 3 was deleted from the task)."""
    for index in range(2):
        write_image(root / "images" / "default" / f"frame_{index:06d}.jpg", np.zeros((50, 80, 3), np.uint8))
    payload = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": [{"id": 1, "name": "car", "supercategory": ""}, {"id": 2, "name": "bus", "supercategory": ""},
                       {"id": 4, "name": "bike", "supercategory": ""}],
        "images": [{"id": index + 1, "width": 80, "height": 50, "file_name": f"frame_{index:06d}.jpg", "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0} for index in range(2)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 4, "segmentation": [], "area": 200.0,
             "bbox": [10.0, 5.0, 20.0, 10.0], "iscrowd": 0, "attributes": {"occluded": False}},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [], "area": 600.0,
             "bbox": [0.0, 0.0, 30.0, 20.0], "iscrowd": 0, "attributes": {"occluded": False}}]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_default.json").write_text(json.dumps(payload))
    return root


def test_cvat_coco_with_a_gap_in_category_ids(tmp_path):
    root = _cvat_coco(tmp_path / "cvat")
    assert detect_format(root) == "coco"
    index = load_dataset(root)
    assert index.names == ["car", "bus", "bike"]  # ids 1, 2, 4 -> classes 0, 1, 2
    [first, second] = index.samples("all")
    assert first.objects.class_ids.tolist() == [2] and first.objects.boxes.tolist() == [[10.0, 5.0, 30.0, 15.0]]
    assert second.objects.class_ids.tolist() == [0]


def test_roboflow_coco_keeps_splits_and_drops_its_placeholder_category(tmp_path):
    root = tmp_path / "pets.v1i.coco"
    categories = [{"id": 0, "name": "pets", "supercategory": "none"},
                  {"id": 1, "name": "cat", "supercategory": "pets"}, {"id": 2, "name": "dog", "supercategory": "pets"}]
    for split, count in (("train", 2), ("valid", 1)):
        images, annotations = [], []
        for index in range(count):
            write_image(root / split / f"{split}{index}_jpg.rf.abc.jpg", np.zeros((30, 40, 3), np.uint8))
            images.append({"id": index, "license": 1, "file_name": f"{split}{index}_jpg.rf.abc.jpg", "height": 30,
                           "width": 40, "date_captured": "2024-01-01T00:00:00+00:00"})
            annotations.append({"id": index, "image_id": index, "category_id": 1 + index % 2,
                                "bbox": [2, 3, 10, 12], "area": 120, "segmentation": [], "iscrowd": 0})
        (root / split / "_annotations.coco.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "categories": categories, "images": images, "annotations": annotations}))
    index = load_dataset(root)
    assert index.format == "coco" and index.names == ["cat", "dog"]
    assert {split: len(samples) for split, samples in index.splits.items()} == {"train": 2, "val": 1}
    assert [sample.objects.class_ids.tolist() for sample in index.samples("train")] == [[0], [1]]


def test_labelme_folder_as_labelme_writes_it(tmp_path):
    root = tmp_path / "labelme"
    write_image(root / "images" / "a.jpg", np.zeros((30, 40, 3), np.uint8))
    # LabelMe on Windows: imagePath relative to the JSON, with backslashes; a rectangle drawn right to left.
    payload = {"version": "5.4.1", "flags": {}, "imagePath": "..\\images\\a.jpg", "imageData": None,
               "imageHeight": 30, "imageWidth": 40,
               "shapes": [{"label": "cup", "points": [[30.0, 25.0], [10.0, 5.0]], "group_id": None,
                           "description": "", "shape_type": "rectangle", "flags": {}, "mask": None}]}
    (root / "json").mkdir(parents=True)
    (root / "json" / "a.json").write_text(json.dumps(payload))
    index = load_dataset(root / "json")
    assert index.format == "labelme" and index.names == ["cup"]
    assert index.samples("all")[0].objects.boxes.tolist() == [[10.0, 5.0, 30.0, 25.0]]


def test_bccd_keeps_its_splits(shared_dir):
    bccd = shared_dir / "datasets" / "bccd" / "BCCD"
    if not bccd.is_dir():
        pytest.skip(f"BCCD not found at {bccd}")
    index = load_dataset(bccd)
    assert index.format == "voc" and index.names == ["Platelets", "RBC", "WBC"]
    assert {split: len(samples) for split, samples in index.splits.items()} == {"train": 205, "val": 87, "test": 72}
    # The two zero-area boxes are dropped; all 364 images stay.
    assert [(problem.path.name, problem.location) for problem in index.problems
            if problem.kind == "zero_area_box"] == [("BloodImage_00338.xml", "object 13"),
                                                    ("BloodImage_00343.xml", "object 4")]
    assert sum(len(sample.objects.class_ids) for samples in index.splits.values() for sample in samples) == 4886


def _same_dataset_in_three_forms(root):
    """One dataset (train: 3 images, val: 2; each 60 x 40 with one box (15, 10)-(45, 30) of class index % 2) as a
    Roboflow YOLOv8 export, Pascal VOC with split lists, and a Roboflow COCO export."""
    layout = {"train": 3, "val": 2}
    forms = {"yolo": root / "yolo", "voc": root / "voc", "coco": root / "coco"}
    categories = [{"id": 0, "name": "pets", "supercategory": "none"},
                  {"id": 1, "name": "cat", "supercategory": "pets"}, {"id": 2, "name": "dog", "supercategory": "pets"}]
    for split, count in layout.items():
        folder = "valid" if split == "val" else split
        images, annotations = [], []
        for index in range(count):
            stem, value = f"{split}{index}", 40 * index + (100 if split == "val" else 0)  # all different
            _yolo_image(forms["yolo"] / folder, stem, [index % 2], value=value)
            _voc(forms["voc"], stem, [(("cat", "dog")[index % 2], (15, 10, 45, 30))], size=(40, 60), value=value)
            write_image(forms["coco"] / folder / f"{stem}.jpg", np.full((40, 60, 3), value, np.uint8))
            images.append({"id": index, "file_name": f"{stem}.jpg", "width": 60, "height": 40})
            annotations.append({"id": index, "image_id": index, "category_id": 1 + index % 2,
                                "bbox": [15, 10, 30, 20], "iscrowd": 0})
        (forms["coco"] / folder / "_annotations.coco.json").write_text(json.dumps(
            {"categories": categories, "images": images, "annotations": annotations}))
        (forms["voc"] / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (forms["voc"] / "ImageSets" / "Main" / f"{split}.txt").write_text(
            "".join(f"{split}{index}\n" for index in range(count)))
    (forms["yolo"] / "data.yaml").write_text(ROBOFLOW_YAML.replace("test: ../test/images\n", ""))
    return forms


@pytest.mark.parametrize("form", ["yolo", "voc", "coco"])
def test_every_reader_accepts_every_form(tmp_path, form):
    from defi1.detection.anchors import dataset_box_sizes
    from defi1.detection.check import check_before_training, check_dataset
    from defi1.detection.metrics import evaluate_prediction_files
    from defi1.detection.splits import split_detection_dataset

    data = _same_dataset_in_three_forms(tmp_path)[form]
    report = check_dataset(data)
    assert report.ok and report.names == ["cat", "dog"]
    assert {split: summary.instances_per_class for split, summary in report.splits.items()} == {
        "train": {0: 2, 1: 1}, "val": {0: 1, 1: 1}}
    # Anchors: boxes 30 x 20 in 60 x 40 images, scaled by 416 / 60 at a 416 input.
    np.testing.assert_allclose(dataset_box_sizes(data, input_size=416), [[208.0, 138.666667]] * 3, rtol=1e-6)
    assert [sample.image_path.stem for sample in check_before_training(data, log=lambda _: None).samples("val")] \
        == ["val0", "val1"]
    # Perfect prediction files (the ground truth, confidence 0.9) give a map50 of 1 on the val split.
    predictions = tmp_path / "pred"
    for index in range(2):
        (predictions / f"val{index}.txt").parent.mkdir(exist_ok=True)
        (predictions / f"val{index}.txt").write_text(f"{index % 2} 0.5 0.5 0.5 0.5 0.9\n")
    metrics = evaluate_prediction_files(predictions, data, "val")
    assert metrics["map50"] == pytest.approx(1.0) and metrics["images_without_predictions"] == 0
    # data split re-splits the 5 images into a YOLO dataset with the same classes.
    config = load_dataset_yaml(split_detection_dataset(data, tmp_path / "split", val_size=1, test_size=1, seed=0))
    assert config.names == ["cat", "dog"]
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [3, 1, 1]
    labels = sorted(sample.label_path.read_text() for split in ("train", "val", "test")
                    for sample in config.samples(split))
    assert labels == ["0 0.500000 0.500000 0.500000 0.500000\n"] * 3 + ["1 0.500000 0.500000 0.500000 0.500000\n"] * 2
