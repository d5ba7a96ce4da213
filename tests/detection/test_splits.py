"""Seeded train/val/test splits of a detection dataset."""

import numpy as np
import pytest

from defi1.detection.labels import load_dataset_yaml, read_difficult_flags, write_yolo_labels
from defi1.detection.splits import split_detection_dataset
from defi1.images import write_image

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


@pytest.fixture
def source(tmp_path):
    """20 tiny images: 10 of class 0, 8 of class 1 (one in a subfolder, one with a difficult box), 2 backgrounds."""
    root = tmp_path / "source"
    for index in range(20):
        relative = f"sub/img{index:02d}" if index == 3 else f"img{index:02d}"
        write_image(root / "images" / f"{relative}.png", np.full((8, 8, 3), index, np.uint8))
        if index < 18:
            write_yolo_labels(root / "labels" / f"{relative}.txt", [0 if index < 10 else 1], [[0.5, 0.5, 0.5, 0.5]],
                              difficult=[index == 12])
    (root / "classes.txt").write_text("cat\ndog\n")
    return root


def _stems(config, split):
    return sorted(sample.image_path.stem for sample in config.samples(split))


def test_split_sizes_names_and_determinism(source, tmp_path):
    data_yaml = split_detection_dataset(source, tmp_path / "a", val_size=0.2, test_size=0.1, seed=5)
    config = load_dataset_yaml(data_yaml)
    assert config.names == ["cat", "dog"]
    train, val, test = (_stems(config, split) for split in ("train", "val", "test"))
    # 20 images: round(0.2 * 20) = 4 validation, round(0.1 * 20) = 2 test, 14 training; a partition.
    assert (len(train), len(val), len(test)) == (14, 4, 2)
    assert sorted(train + val + test) == [f"img{index:02d}" for index in range(20)]
    # Stratified on the dominant class: both classes appear in validation.
    val_classes = {int(sample.label_path.read_text().split()[0]) for sample in config.samples("val")
                   if sample.label_path.is_file()}
    assert val_classes == {0, 1}
    again = load_dataset_yaml(split_detection_dataset(source, tmp_path / "b", val_size=0.2, test_size=0.1, seed=5))
    assert [_stems(again, split) for split in ("train", "val", "test")] == [train, val, test]
    other = load_dataset_yaml(split_detection_dataset(source, tmp_path / "c", val_size=0.2, test_size=0.1, seed=6))
    assert [_stems(other, split) for split in ("train", "val", "test")] != [train, val, test]


def test_labels_subfolders_and_difficult_flags_travel(source, tmp_path):
    config = load_dataset_yaml(split_detection_dataset(source, tmp_path / "out", val_size=3, test_size=0, seed=0))
    assert config.test is None and len(config.samples("val")) == 3
    samples = {sample.image_path.stem: sample for split in ("train", "val") for sample in config.samples(split)}
    assert samples["img03"].image_path.parent.name == "sub" and samples["img03"].label_path.is_file()
    assert read_difficult_flags(samples["img12"].label_path, 1).tolist() == [True]
    assert samples["img19"].is_background


def test_bad_requests(source, tmp_path):
    with pytest.raises(ValueError, match="still leave training images"):
        split_detection_dataset(source, tmp_path / "x", val_size=0.6, test_size=0.5)
    with pytest.raises(FileNotFoundError, match="images/ subfolder"):
        split_detection_dataset(tmp_path / "nothing", tmp_path / "y")
    split_detection_dataset(source, tmp_path / "z")
    with pytest.raises(FileExistsError, match=r"z: already holds images/ or labels/"):
        split_detection_dataset(source, tmp_path / "z")
