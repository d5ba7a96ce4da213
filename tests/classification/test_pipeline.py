"""Tests of defi1.classification.pipeline: reading data folders the way ``defi1 classify`` does."""

import pytest

from defi1.classification.data import scan_class_folders, split_dataset, write_split_folders
from defi1.classification.pipeline import is_split_folder, load_folder_splits, make_datasets
from defi1.errors import DataError


def test_plain_folder_is_split_stratified(tiny_tree):
    splits = load_folder_splits(tiny_tree)
    assert not is_split_folder(tiny_tree)
    assert splits.class_names == ["0", "1", "2"]
    assert {name: len(labels) for name, (_, labels) in splits.parts.items()} == {"train": 14, "val": 4, "test": 6}
    assert splits.leaks == [] and splits.skipped == []


def test_split_folder_is_read_as_it_is(tiny_tree, tmp_path):
    dataset = scan_class_folders(tiny_tree)
    split = split_dataset(dataset.paths, dataset.labels, test_size=0.25, val_size=0.2, seed=5)
    write_split_folders(split, dataset.class_names, tmp_path / "split")
    splits = load_folder_splits(tmp_path / "split")
    assert is_split_folder(tmp_path / "split")
    for name in ("train", "val", "test"):
        expected = sorted(path.name for path in split.parts()[name][0])
        assert sorted(path.name for path in splits.parts[name][0]) == expected


def test_classes_other_than_the_models_are_refused(tiny_tree):
    with pytest.raises(DataError, match=r"class folders \['0', '1', '2'\] do not match the model's 2 classes"):
        load_folder_splits(tiny_tree, class_names=["0", "1"])


def test_make_datasets_shuffles_and_augments_training_only(tiny_tree):
    datasets = make_datasets(load_folder_splits(tiny_tree), image_size=(8, 8), batch_size=4, augment=True)
    assert datasets["train"].shuffle and datasets["train"].augment
    assert not datasets["val"].shuffle and not datasets["test"].augment
    images, labels = datasets["test"][1]
    assert images.shape == (2, 8, 8, 3) and len(labels) == 2  # 6 test images: batches of 4 and 2
