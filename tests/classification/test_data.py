"""Tests of defi1.classification.data: scanning class folders, stratified splits, leakage, array loading."""

import shutil

import numpy as np
import pytest

from defi1.classification.data import (find_leaks, load_image_arrays, scan_class_folders, split_dataset,
                                       write_split_folders)
from defi1.classification.datasets import load_digits_arrays
from defi1.errors import DataError


def test_split_sizes_are_stratified_and_deterministic():
    items = np.arange(40).reshape(40, 1)
    labels = np.array([0] * 20 + [1] * 20)
    split = split_dataset(items, labels, test_size=0.25, val_size=0.2, seed=42)
    # 25 % of 40 = 10 test (5 per class); 20 % of the remaining 30 = 6 validation (3 per class); 24 train.
    assert split.sizes() == {"train": 24, "val": 6, "test": 10}
    assert np.bincount(split.test[1]).tolist() == [5, 5]
    assert np.bincount(split.val[1]).tolist() == [3, 3]
    assert np.bincount(split.train[1]).tolist() == [12, 12]
    everything = np.concatenate([split.train[0], split.val[0], split.test[0]]).ravel()
    assert sorted(everything.tolist()) == list(range(40))
    for part in (split.train, split.val, split.test):  # rows keep their labels
        assert np.array_equal(part[0].ravel() >= 20, part[1] == 1)
    again = split_dataset(items, labels, test_size=0.25, val_size=0.2, seed=42)
    assert np.array_equal(again.test[0], split.test[0])
    other = split_dataset(items, labels, test_size=0.25, val_size=0.2, seed=7)
    assert not np.array_equal(other.test[0], split.test[0])


def test_split_matches_the_course_train_test_split():
    from sklearn.model_selection import train_test_split

    items = np.arange(60).reshape(60, 1)
    labels = np.arange(60) % 3
    split = split_dataset(items, labels, test_size=0.25, val_size=0, seed=42)
    _, expected_test = train_test_split(items, test_size=0.25, random_state=42, stratify=labels)
    assert np.array_equal(split.test[0], expected_test)
    assert len(split.val[1]) == 0


def test_split_of_paths_returns_paths(tiny_tree):
    dataset = scan_class_folders(tiny_tree)
    split = split_dataset(dataset.paths, dataset.labels, test_size=0.25, val_size=0.2)
    assert split.sizes() == {"train": 14, "val": 4, "test": 6}
    for paths, labels in split.parts().values():
        for path, label in zip(paths, labels):
            assert path.parent.name == dataset.class_names[label]


def test_class_with_too_few_images_to_stratify_names_the_class():
    labels = np.array([0] * 10 + [1] * 2)
    with pytest.raises(DataError, match=r"class 'rare' has 2 item\(s\).*at least 3"):
        split_dataset(np.arange(12), labels, class_names=["common", "rare"])


def test_scan_class_folders_counts_and_class_order(tiny_tree):
    dataset = scan_class_folders(tiny_tree)
    assert dataset.class_names == ["0", "1", "2"]
    assert dataset.class_counts() == {"0": 8, "1": 8, "2": 8}
    assert dataset.skipped == []


def test_scan_skips_and_reports_corrupt_and_non_image_files(tiny_tree):
    (tiny_tree / "1" / "notes.txt").write_text("not an image")
    (tiny_tree / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dataset = scan_class_folders(tiny_tree)
    assert len(dataset.paths) == 24
    skipped = {path.name: reason for path, reason in dataset.skipped}
    assert set(skipped) == {"notes.txt", "broken.png"}
    assert "not an image" in skipped["notes.txt"]
    assert "cannot decode" in skipped["broken.png"]
    assert "broken.png" in dataset.skipped_summary()


def test_scan_missing_folder_and_empty_class(tmp_path, tiny_tree):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_class_folders(tmp_path / "nowhere")
    (tiny_tree / "3").mkdir()
    with pytest.raises(DataError, match=r"3.*holds no readable image"):
        scan_class_folders(tiny_tree)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folder"):
        scan_class_folders(tmp_path / "empty")


def test_load_image_arrays_area_resize_gives_back_the_digits_pixels(tiny_tree):
    dataset = scan_class_folders(tiny_tree)
    arrays = load_image_arrays(dataset.paths, image_size=(8, 8), color_mode="grayscale")
    images, _labels = load_digits_arrays()
    indices = [int(path.stem.split("_")[1]) for path in dataset.paths]
    assert arrays.shape == (24, 8, 8, 1)
    assert np.array_equal(arrays[..., 0], images[indices])


def test_find_leaks_reports_the_same_image_in_two_splits(tiny_tree):
    from defi1.classification.data import Split

    original = tiny_tree / "0" / "digit_0000.png"
    copy = tiny_tree / "0" / "copy_of_0000.png"
    shutil.copy(original, copy)
    others = sorted((tiny_tree / "1").glob("*.png"))
    split = Split(train=([original, others[0]], np.array([0, 1])), val=([others[1]], np.array([1])),
                  test=([copy, others[2]], np.array([0, 1])))
    leaks = find_leaks(split)
    assert len(leaks) == 1
    assert leaks[0].locations == {"train": [original], "test": [copy]}
    assert str(leaks[0]).startswith("same image in train and test")
    assert find_leaks(Split(train=([original], [0]), val=([others[1]], [1]), test=([others[2]], [1]))) == []


def test_find_leaks_on_arrays_names_rows():
    items = np.zeros((6, 2, 2), dtype=np.uint8)
    items[:, 0, 0] = [0, 1, 2, 3, 4, 0]  # row 5 duplicates row 0
    from defi1.classification.data import Split

    split = Split(train=(items[:3], np.zeros(3)), val=(items[3:5], np.zeros(2)), test=(items[5:], np.zeros(1)))
    leaks = find_leaks(split)
    assert len(leaks) == 1 and leaks[0].locations == {"train": [0], "test": [0]}


def test_write_split_folders_copies_and_refuses_non_empty_output(tiny_tree, tmp_path):
    dataset = scan_class_folders(tiny_tree)
    split = split_dataset(dataset.paths, dataset.labels)
    out_dir = tmp_path / "split"
    written = write_split_folders(split, dataset.class_names, out_dir)
    assert written == {"train": 14, "val": 4, "test": 6}
    assert len(list((out_dir / "test").rglob("*.png"))) == 6
    assert (out_dir / "split.csv").read_text().count("\n") == 25
    with pytest.raises(FileExistsError, match="not empty"):
        write_split_folders(split, dataset.class_names, out_dir)


def test_split_fingerprint_of_class_folders(tmp_path):
    from defi1.classification.data import split_fingerprint
    from defi1.fingerprint import fingerprint_entries

    paths = [tmp_path / "cat" / "1.png", tmp_path / "dog" / "2.png"]
    expected = fingerprint_entries([("cat/1.png", "cat"), ("dog/2.png", "dog")])
    assert split_fingerprint(paths, [0, 1], class_names=["cat", "dog"]) == expected
    assert split_fingerprint(paths[::-1], [1, 0], class_names=["cat", "dog"], root=tmp_path) == expected
    assert split_fingerprint(paths, [1, 0], class_names=["cat", "dog"]) != expected  # labels swapped
    assert split_fingerprint(paths[:1], [0], class_names=["cat", "dog"]) != expected  # an image fewer
