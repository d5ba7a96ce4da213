"""Tests of defi1.classification.datasets: the built-in digits tree and keras.datasets conversion (no download)."""

import urllib.error

import numpy as np
import pytest

from defi1.classification import datasets
from defi1.classification.data import load_image_arrays, scan_class_folders
from defi1.errors import DataError
from defi1.images import read_image


def test_digits_arrays_scale_16_grey_levels_to_255():
    images, labels = datasets.load_digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 255 and images.min() == 0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    from sklearn.datasets import load_digits

    assert np.array_equal(images, np.rint(load_digits().images * 255 / 16).astype(np.uint8))


@pytest.mark.backend_agnostic
def test_write_digits_tree_round_trips_pixels(tmp_path):
    root = datasets.write_digits_tree(tmp_path / "digits", max_per_class=3)
    dataset = scan_class_folders(root)
    assert dataset.class_names == [str(digit) for digit in range(10)]
    assert dataset.class_counts() == {str(digit): 3 for digit in range(10)}
    images, _ = datasets.load_digits_arrays()
    first = dataset.paths[0]  # 0/digit_0000.png, the first image of the data set
    assert first.name == "digit_0000.png"
    assert read_image(first).shape == (32, 32, 3)
    shrunk = load_image_arrays([first], image_size=(8, 8), color_mode="grayscale")
    assert np.array_equal(shrunk[0, :, :, 0], images[0])
    # writing again into the same complete tree is a no-op; into another non-empty folder, an error
    assert datasets.write_digits_tree(root, max_per_class=3) == root
    with pytest.raises(FileExistsError, match="not empty"):
        datasets.write_digits_tree(root, max_per_class=4)


def test_download_keras_dataset_writes_class_folders(tmp_path, monkeypatch):
    train_images = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28)
    train_labels = np.array([0, 3, 3, 9])
    test_images = np.full((2, 28, 28), 200, dtype=np.uint8)
    test_labels = np.array([1, 1])
    monkeypatch.setattr(datasets, "_keras_loader",
                        lambda name: lambda: ((train_images, train_labels), (test_images, test_labels)))
    out_dir = datasets.download_keras_dataset("fashion_mnist", tmp_path / "fashion")
    written = sorted(path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*.png"))
    assert written == ["test/trouser/fashion_mnist_00000.png", "test/trouser/fashion_mnist_00001.png",
                       "train/ankle_boot/fashion_mnist_00003.png", "train/dress/fashion_mnist_00001.png",
                       "train/dress/fashion_mnist_00002.png", "train/t_shirt_top/fashion_mnist_00000.png"]
    assert np.array_equal(read_image(out_dir / "train/dress/fashion_mnist_00002.png")[:, :, 0], train_images[2])


def test_download_keras_dataset_cifar_labels_are_column_vectors(tmp_path, monkeypatch):
    images = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    images[1, ..., 0] = 255
    labels = np.array([[0], [1], [1]])
    monkeypatch.setattr(datasets, "_keras_loader", lambda name: lambda: ((images, labels), (images[:1], labels[:1])))
    out_dir = datasets.download_keras_dataset("cifar10", tmp_path / "cifar", max_per_class=1)
    assert sorted(path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*.png")) == [
        "test/airplane/cifar10_00000.png", "train/airplane/cifar10_00000.png", "train/automobile/cifar10_00001.png"]
    assert read_image(out_dir / "train/automobile/cifar10_00001.png")[0, 0].tolist() == [255, 0, 0]


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline():
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "_keras_loader", lambda name: offline)
    with pytest.raises(DataError, match="cannot download mnist.*internet connection"):
        datasets.download_keras_dataset("mnist", tmp_path / "mnist")
    with pytest.raises(ValueError, match="expected one of mnist"):
        datasets.download_keras_dataset("imagenet", tmp_path / "imagenet")
