"""``check_dataset``: one test per kind of problem, plus the counts."""

import numpy as np
import pytest

from defi1.detection.check import check_dataset
from defi1.detection.labels import write_dataset_yaml
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
