"""Tests of defi1.classification.generator: the path-based PyDataset."""

import numpy as np
import pytest

from defi1.classification.generator import ImagePathDataset, augment_image, load_image
from defi1.errors import ImageReadError
from defi1.images import write_image


def labelled_images(folder, count=10, side=6):
    """Image ``i`` is filled with grey level ``10 * i``; its label is ``i``."""
    paths = []
    for index in range(count):
        path = folder / f"image_{index:02d}.png"
        write_image(path, np.full((side, side, 3), 10 * index, dtype=np.uint8))
        paths.append(path)
    return paths, np.arange(count)


@pytest.mark.backend_agnostic
def test_batches_pair_images_with_their_labels_and_last_batch_is_partial(tmp_path):
    paths, labels = labelled_images(tmp_path)
    dataset = ImagePathDataset(paths, labels, batch_size=4, image_size=(3, 3))
    assert len(dataset) == 3
    sizes = [len(dataset[index][1]) for index in range(3)]
    assert sizes == [4, 4, 2]
    images, batch_labels = dataset[2]
    assert images.shape == (2, 3, 3, 3) and images.dtype == np.float32
    assert batch_labels.tolist() == [8, 9]
    assert np.allclose(images[:, 0, 0, 0], [80, 90])
    with pytest.raises(IndexError, match=r"batch 3 out of range \(the dataset has 3 batches\)"):
        dataset[3]


@pytest.mark.backend_agnostic
def test_reshuffles_every_epoch_reproducibly(tmp_path):
    paths, labels = labelled_images(tmp_path)
    dataset = ImagePathDataset(paths, labels, batch_size=4, image_size=(3, 3), shuffle=True, seed=3)

    def epoch_labels():
        return np.concatenate([dataset[index][1] for index in range(len(dataset))])

    first = epoch_labels()
    dataset.on_epoch_end()
    second = epoch_labels()
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert not np.array_equal(first, second)
    for index in range(len(dataset)):  # images still match labels after shuffling
        images, batch_labels = dataset[index]
        assert np.allclose(images[:, 0, 0, 0], 10 * batch_labels)
    replay = ImagePathDataset(paths, labels, batch_size=4, image_size=(3, 3), shuffle=True, seed=3)
    assert np.array_equal(np.concatenate([replay[index][1] for index in range(len(replay))]), first)


@pytest.mark.backend_agnostic
def test_backbone_preprocessing_is_applied(tmp_path):
    write_image(tmp_path / "white.png", np.full((4, 4, 3), 255, dtype=np.uint8))
    write_image(tmp_path / "red.png", np.tile(np.array([255, 0, 0], dtype=np.uint8), (4, 4, 1)))
    paths = [tmp_path / "white.png", tmp_path / "red.png"]
    mobilenet = ImagePathDataset(paths, [0, 1], batch_size=2, image_size=(4, 4), preprocessing="mobilenet_v2")
    assert np.allclose(mobilenet[0][0][0], 1.0)  # x / 127.5 - 1
    assert np.allclose(mobilenet[0][0][1, 0, 0], [1.0, -1.0, -1.0])
    resnet = ImagePathDataset(paths, [0, 1], batch_size=2, image_size=(4, 4), preprocessing="resnet50")
    # caffe mode: RGB -> BGR, minus the ImageNet means (B 103.939, G 116.779, R 123.68)
    assert np.allclose(resnet[0][0][1, 0, 0], [0 - 103.939, 0 - 116.779, 255 - 123.68], atol=1e-3)
    efficientnet = ImagePathDataset(paths, [0, 1], batch_size=2, image_size=(4, 4), preprocessing="efficientnet_b0")
    assert np.allclose(efficientnet[0][0][1, 0, 0], [255, 0, 0])


def test_grayscale_and_resize(tmp_path):
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2, :2] = 200  # top-left quarter
    write_image(tmp_path / "quarter.png", image)
    gray = load_image(tmp_path / "quarter.png", image_size=(2, 2), color_mode="grayscale")
    assert gray.shape == (2, 2, 1)
    assert gray[:, :, 0].tolist() == [[200, 0], [0, 0]]


def test_augment_shifts_within_bounds_and_keeps_range():
    rng = np.random.default_rng(0)
    image = np.zeros((20, 20, 1), dtype=np.float32)
    image[10, 10] = 255
    augmented = augment_image(image, rng, max_shift=0.1, brightness=0.0)
    row, column = np.argwhere(augmented[:, :, 0] == 255)[0]
    assert abs(row - 10) <= 2 and abs(column - 10) <= 2
    assert augmented.min() >= 0 and augmented.max() <= 255


def test_unreadable_file_while_loading_names_it(tmp_path):
    paths, labels = labelled_images(tmp_path, count=3)
    paths[1].write_bytes(b"truncated")
    dataset = ImagePathDataset(paths, labels, batch_size=3, image_size=(3, 3))
    with pytest.raises(ImageReadError, match="image_01.png"):
        dataset[0]


@pytest.mark.smoke
@pytest.mark.parametrize("use_multiprocessing", [False, True])
def test_smoke_fit_with_two_workers(tmp_path, use_multiprocessing):
    import keras

    paths, labels = labelled_images(tmp_path, count=12)
    dataset = ImagePathDataset(paths, labels % 2, batch_size=5, image_size=(4, 4), shuffle=True, augment=True,
                               workers=2, use_multiprocessing=use_multiprocessing)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
