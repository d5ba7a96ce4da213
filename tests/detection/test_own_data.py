"""defi1.detection.own_data: a student's dataset used as it is, or split into a copy; never written to."""

import numpy as np
import pytest

from defi1.detection.labels import load_dataset_yaml, write_dataset_yaml, write_yolo_labels
from defi1.detection.own_data import MARKER, prepare_own_dataset
from defi1.images import write_image


def write_folder(root, count=10):
    """``root/images`` and ``root/labels`` as labelImg leaves them (YOLO labels, no YAML, a classes.txt)."""
    for index in range(count):
        write_image(root / "images" / f"photo{index}.jpg", np.full((32, 32, 3), 20 * index, dtype=np.uint8))
        write_yolo_labels(root / "labels" / f"photo{index}.txt", [index % 2], np.array([[0.5, 0.5, 0.4, 0.4]]))
    (root / "labels" / "classes.txt").write_text("cup\nkey\n")
    return root


def listing(root):
    return sorted((path.relative_to(root).as_posix(), path.stat().st_size) for path in root.rglob("*"))


def test_a_complete_dataset_yaml_is_used_as_it_is(tmp_path):
    for split in ("train", "val", "test"):
        write_folder(tmp_path / "mine" / split, count=2)
    data_yaml = write_dataset_yaml(tmp_path / "mine" / "data.yaml", names=["cup", "key"], train="train/images",
                                   val="val/images", test="test/images")
    assert prepare_own_dataset(data_yaml, tmp_path / "copy") == data_yaml
    assert prepare_own_dataset(tmp_path / "mine", tmp_path / "copy") == data_yaml
    assert not (tmp_path / "copy").exists()


def test_an_annotation_folder_is_split_into_a_copy_and_left_untouched(tmp_path):
    source = write_folder(tmp_path / "photos")
    before = listing(source)
    data_yaml = prepare_own_dataset(source, tmp_path / "run" / "dataset", val_size=0.2, test_size=0.2, seed=0)
    config = load_dataset_yaml(data_yaml)
    assert config.names == ["cup", "key"]
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [6, 2, 2]
    assert (tmp_path / "run" / "dataset" / MARKER).is_file() and listing(source) == before
    # a rerun replaces its own copy
    assert prepare_own_dataset(source, tmp_path / "run" / "dataset", seed=0) == data_yaml
    assert listing(source) == before


def test_refuses_foreign_output_and_output_inside_the_dataset(tmp_path):
    source = write_folder(tmp_path / "photos")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty and not a copy made by defi1"):
        prepare_own_dataset(source, tmp_path / "busy")
    with pytest.raises(ValueError, match="must be written outside the dataset"):
        prepare_own_dataset(source, source / "split")
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        prepare_own_dataset(tmp_path / "nothing", tmp_path / "out")
