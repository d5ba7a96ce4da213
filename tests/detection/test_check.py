"""``check_dataset``: one test per kind of problem, plus the counts."""

import numpy as np
import pytest

from defi1.detection.check import check_before_training, check_dataset
from defi1.detection.labels import write_dataset_yaml
from defi1.errors import DataError
from defi1.images import write_image

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


def _image(root, relative, value=0, size=(40, 80)):
    """An 80×40 image (width 80, height 40) filled with ``value``."""
    write_image(root / relative, np.full(size + (3,), value, np.uint8))


def _label(root, relative, text):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def clean_dataset(tmp_path):
    """train: a.png (2 objects of class 0, 1 of class 1), b.png (1 of class 1); val: c.png (1 of class 0)."""
    _image(tmp_path, "images/train/a.png", 10)
    _image(tmp_path, "images/train/b.png", 20)
    _image(tmp_path, "images/val/c.png", 30)
    _label(tmp_path, "labels/train/a.txt", "0 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.1 0.2\n1 0.5 0.5 1.0 1.0\n")
    _label(tmp_path, "labels/train/b.txt", "1 0.5 0.5 0.2 0.2\n")
    _label(tmp_path, "labels/val/c.txt", "0 0.5 0.5 0.4 0.4\n")
    write_dataset_yaml(tmp_path / "data.yaml", names=["cat", "dog"])
    return tmp_path


def test_clean_dataset_counts(clean_dataset):
    report = check_dataset(clean_dataset / "data.yaml")
    assert report.ok and report.problems == []
    assert report.splits["train"].instances_per_class == {0: 2, 1: 2}
    assert report.splits["train"].images_per_class == {0: 1, 1: 2}
    assert report.splits["val"].instances_per_class == {0: 1} and report.splits["val"].num_images == 1
    sizes = report.box_size_summary()
    # Boxes in pixels (80×40 images): 40×20, 8×8, 80×40, 16×8, 32×16.
    assert sizes["count"] == 5 and sizes["width_percentiles"] == [8.0, 16.0, 32.0, 40.0, 80.0]
    assert sizes["small"] == 4 and sizes["medium"] == 1 and sizes["large"] == 0
    text = report.format()
    assert "cat" in text and "no problem found" in text
    # A folder without YAML works too (its single YAML is used).
    assert check_dataset(clean_dataset).splits["train"].num_images == 2
    # A named class without any object is listed with zeros.
    write_dataset_yaml(clean_dataset / "data.yaml", names=["cat", "dog", "bird"])
    rows = check_dataset(clean_dataset / "data.yaml").format().splitlines()
    assert [row.split() for row in rows if row.startswith(("cat", "bird"))] == [
        ["cat", "2", "(1)", "1", "(1)"], ["bird", "0", "(0)", "0", "(0)"]]


def test_class_out_of_range(clean_dataset):
    _label(clean_dataset, "labels/train/b.txt", "1 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n")
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "class_out_of_range" and problem.line == 2 and problem.path.name == "b.txt"
    assert "class 2 out of range (expected 0..1)" in str(problem) and not report.ok


def test_box_outside_image_is_reported_as_clipped(clean_dataset):
    _label(clean_dataset, "labels/val/c.txt", "0 0.9 0.5 0.4 0.4\n")
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "box_outside_image" and problem.line == 1 and "clipped" in problem.message
    # The box spans x 0.7..1.1 of an 80-pixel image, clipped to 56..80: 24 pixels wide.
    assert report.splits["val"].box_sizes[0, 0] == pytest.approx(24)


def test_zero_area_box_is_reported_as_dropped(clean_dataset):
    _label(clean_dataset, "labels/val/c.txt", "0 0.5 0.5 0.4 0.4\n1 0.5 0.5 0.0 0.3\n")
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "zero_area_box" and problem.line == 2
    assert report.splits["val"].instances_per_class == {0: 1}


def test_image_without_label_is_a_background(clean_dataset):
    _image(clean_dataset, "images/train/empty.png", 40)
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "background_image" and problem.severity == "info"
    assert report.ok and report.splits["train"].num_backgrounds == 1


def test_label_without_image(clean_dataset):
    _label(clean_dataset, "labels/train/ghost.txt", "0 0.5 0.5 0.2 0.2\n")
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "label_without_image" and problem.path.name == "ghost.txt"


def test_unreadable_image_is_skipped(clean_dataset):
    (clean_dataset / "images/train/broken.jpg").write_bytes(b"not a jpeg")
    report = check_dataset(clean_dataset / "data.yaml")
    [problem] = report.problems
    assert problem.kind == "unreadable_image" and problem.path.name == "broken.jpg"
    assert report.splits["train"].num_images == 2


def test_same_image_in_two_splits(clean_dataset):
    _image(clean_dataset, "images/val/copy_of_a.png", 10)
    report = check_dataset(clean_dataset / "data.yaml")
    duplicates = report.problems_of("duplicate_across_splits")
    assert len(duplicates) == 1 and duplicates[0].path.name == "copy_of_a.png"
    assert "a.png (train split)" in duplicates[0].message


def test_malformed_label_and_missing_split(clean_dataset):
    _label(clean_dataset, "labels/train/a.txt", "0 0.5 0.5 0.5\n")
    write_dataset_yaml(clean_dataset / "data.yaml", names=["cat", "dog"], test="images/test")
    report = check_dataset(clean_dataset / "data.yaml")
    assert {problem.kind for problem in report.problems} == {"malformed_label", "missing_split"}
    [malformed] = report.problems_of("malformed_label")
    assert malformed.line == 1 and malformed.message.startswith("4 values, expected 5")


def test_every_malformed_line_and_duplicate_lines_are_reported(clean_dataset):
    _label(clean_dataset, "labels/train/a.txt", "0 0.5 0.5 0.5\n0 0.5 0.5 0.5 0.5\nx 0.1 0.1 0.1 0.1\n"
                                                "0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.1 0.1\n1 0.205 0.2 0.1 0.1\n")
    report = check_dataset(clean_dataset / "data.yaml")
    assert [(problem.kind, problem.line) for problem in report.problems] == [
        ("malformed_label", 1), ("malformed_label", 3), ("duplicate_box", 4), ("duplicate_box", 6)]
    duplicates = report.problems_of("duplicate_box")
    assert duplicates[0].message.startswith("repeats line 2 (same class, same box)")
    # Line 6 is line 5 shifted by 0.005 (0.4 pixel of an 80-pixel image), as labelImg's copies are: IoU 0.095 / 0.105.
    assert duplicates[1].message.startswith("repeats line 5 (same class, IoU 0.90)")
    # Duplicated boxes are kept (reported, not dropped): a.txt 2 + 2, b.txt 1 of class 1.
    assert report.has_errors and report.splits["train"].instances_per_class == {0: 2, 1: 3}


def test_a_decompression_bomb_is_an_unreadable_image(clean_dataset):
    from tests.conftest import write_decompression_bomb

    write_decompression_bomb(clean_dataset / "images/val/huge.png")
    for decode in (True, False):
        report = check_dataset(clean_dataset / "data.yaml", decode_images=decode)
        [problem] = report.problems_of("unreadable_image")
        assert problem.path.name == "huge.png" and "image too large to read" in problem.message
        assert report.has_errors and report.splits["val"].num_images == 1


def test_headers_only_finds_truncated_images_without_decoding(clean_dataset):
    pixels = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)
    write_image(clean_dataset / "images/train/photo.jpg", pixels)
    data = (clean_dataset / "images/train/photo.jpg").read_bytes()
    (clean_dataset / "images/train/photo.jpg").write_bytes(data[:len(data) // 2])
    report = check_dataset(clean_dataset / "data.yaml", decode_images=False)
    [problem] = report.problems_of("unreadable_image")
    assert problem.path.name == "photo.jpg" and problem.split == "train"


def test_check_before_training_leaves_bad_images_out_once(clean_dataset):
    # A truncated image in val and a label training refuses in train: both found before the first epoch.
    pixels = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)
    write_image(clean_dataset / "images/val/photo.png", pixels)
    data = (clean_dataset / "images/val/photo.png").read_bytes()
    (clean_dataset / "images/val/photo.png").write_bytes(data[:len(data) // 2])
    _label(clean_dataset, "labels/train/b.txt", "7 0.5 0.5 0.2 0.2\n")
    logged = []
    index = check_before_training(clean_dataset / "data.yaml", log=logged.append)
    assert [sample.image_path.name for sample in index.samples("train")] == ["a.png"]
    assert [sample.image_path.name for sample in index.samples("val")] == ["c.png"]
    assert logged[0].startswith("data check: 1 class_out_of_range (error), 1 unreadable_image (error)")
    assert any("b.txt, line 1: class 7 out of range" in line for line in logged)
    assert logged[-1] == "2 image(s) left out of training"
    (clean_dataset / "images/val/c.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"no usable image in the 'val' split \(.*c\.png: cannot be read"):
        check_before_training(clean_dataset / "data.yaml", log=logged.append)


def test_bccd_lists_every_imperfect_annotation(shared_dir):
    bccd = shared_dir / "datasets" / "bccd" / "BCCD"
    if not bccd.is_dir():
        pytest.skip(f"BCCD not found at {bccd}")
    report = check_dataset(bccd, decode_images=False)
    found = [(problem.kind, problem.path.name, problem.location) for problem in report.problems]
    # What BCCD's labelImg annotations hold (found by this check, verified by reading the XML files): two boxes of
    # no area, and seven boxes drawn twice (the copy shifted by 2 pixels, IoU 0.92-0.93).
    assert found == [("duplicate_box", "BloodImage_00020.xml", "object 15"),
                     ("duplicate_box", "BloodImage_00100.xml", "object 3"),
                     ("duplicate_box", "BloodImage_00104.xml", "object 14"),
                     ("duplicate_box", "BloodImage_00251.xml", "object 8"),
                     ("duplicate_box", "BloodImage_00284.xml", "object 2"),
                     ("duplicate_box", "BloodImage_00331.xml", "object 3"),
                     ("zero_area_box", "BloodImage_00338.xml", "object 13"),
                     ("zero_area_box", "BloodImage_00343.xml", "object 4"),
                     ("duplicate_box", "BloodImage_00403.xml", "object 4")]
    assert "BloodImage_00338.xml, object 13: box [504.0, 337.0, 504.0, 337.0] has no area" in report.format()
    assert not report.has_errors and not report.ok  # warnings only: the command exits 0
    assert [report.splits[split].num_images for split in ("train", "val", "test")] == [205, 87, 72]
