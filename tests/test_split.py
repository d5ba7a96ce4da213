"""Tests of defi1.split (``defi1 data split`` as a function): the dispatch between detection and classification
datasets, and the report it prints."""

import numpy as np
import pytest

from defi1.detection.labels import load_dataset_yaml, write_yolo_labels
from defi1.images import write_image
from defi1.split import is_detection_folder, split_folder

from .classification.conftest import write_tree

pytestmark = pytest.mark.backend_agnostic


def test_a_class_folder_is_split_stratified_with_its_leak_check(tmp_path):
    source = write_tree(tmp_path / "digits", classes=(0, 1), per_class=10)
    (source / "1" / "broken.png").write_bytes(b"not a png")
    assert not is_detection_folder(source)
    report = split_folder(source, tmp_path / "split", test_size=0.2, val_size=0.25, seed=0)
    assert report.kind == "classification" and report.num_images == 20 and report.num_classes == 2
    assert report.counts == {"train": 12, "val": 4, "test": 4} and report.leaks == []
    assert [str(path) for path, _ in report.skipped] == [str(source / "1" / "broken.png")]
    lines = report.lines()
    assert lines[0].startswith(f"skipped {source / '1' / 'broken.png'}: ")
    assert lines[1:] == ["20 images in 2 classes (1 file(s) skipped)",
                         f"train: 12, val: 4, test: 4 -> {tmp_path / 'split'}", "no image found in two splits"]
    assert len(list((tmp_path / "split" / "test" / "0").iterdir())) == 2  # stratified: 2 of each class


def test_a_detection_folder_is_split_with_its_yaml(tmp_path):
    source = tmp_path / "boxes"
    for index in range(10):
        write_image(source / "images" / f"{index}.png", np.zeros((8, 8, 3), np.uint8))
        write_yolo_labels(source / "labels" / f"{index}.txt", [index % 2], [[0.5, 0.5, 0.5, 0.5]])
    (source / "classes.txt").write_text("even\nodd\n")
    assert is_detection_folder(source)
    report = split_folder(source, tmp_path / "split", test_size=0.2, val_size=0.2, seed=0)
    assert report.kind == "detection" and report.data_yaml == tmp_path / "split" / "data.yaml"
    assert report.lines() == [f"detection dataset split; dataset file: {report.data_yaml}"]
    config = load_dataset_yaml(report.data_yaml)
    assert config.names == ["even", "odd"]
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [6, 2, 2]
