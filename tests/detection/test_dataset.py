"""The detection PyDataset: letterbox, augmentation and target encoding give boxes on the right pixels."""

import pickle

import numpy as np
import pytest

from defi1.detection.augment import AugmentationSettings
from defi1.detection.dataset import DetectionDataset
from defi1.detection.labels import labels_from_pixels, list_samples, write_dataset_yaml, write_yolo_labels
from defi1.errors import DataError
from defi1.images import write_image
from defi1.yolo.heads import HeadSpec

HEADS = [HeadSpec(anchors=[[40, 40], [24, 24], [16, 16]], stride=32, num_classes=3),
         HeadSpec(anchors=[[10, 10], [6, 6], [3, 3]], stride=16, num_classes=3)]
MAX_BOXES = 4

pytestmark = pytest.mark.backend_agnostic  # NumPy and OpenCV only


def _write_sample(root, name, size, boxes, class_ids, split="train"):
    """A black PNG of ``size`` (width, height) with white filled boxes (xyxy, integer pixels) and its label file."""
    width, height = size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for x_min, y_min, x_max, y_max in boxes:
        image[y_min:y_max, x_min:x_max] = 255
    write_image(root / "images" / split / f"{name}.png", image)
    write_yolo_labels(root / "labels" / split / f"{name}.txt", np.asarray(class_ids),
                      labels_from_pixels(np.asarray(boxes, dtype=np.float64), size))


@pytest.fixture
def dataset_dir(tmp_path):
    _write_sample(tmp_path, "wide", (100, 50), [(10, 10, 40, 30)], [1])
    _write_sample(tmp_path, "square", (64, 64), [(8, 8, 24, 40), (40, 32, 60, 60)], [0, 2])
    _write_sample(tmp_path, "tall", (40, 80), [(10, 20, 30, 60)], [2])
    write_dataset_yaml(tmp_path / "data.yaml", names=["a", "b", "c"], train="images/train", val="images/train")
    return tmp_path


def _ground_truth_rows(target, max_boxes=MAX_BOXES):
    """The ``[cx, cy, w, h]`` of the real boxes listed at the end of one image's packed target."""
    rows = target[-max_boxes:]
    return rows[rows[:, 4] > 0, :4]


def _xyxy(centre_size):
    centre_size = np.asarray(centre_size, dtype=np.float64)
    return np.concatenate([centre_size[:, :2] - centre_size[:, 2:] / 2, centre_size[:, :2] + centre_size[:, 2:] / 2], 1)


def _tight_box(image, threshold=0.8):
    rows, columns = np.nonzero(image[:, :, 0] > threshold)
    return np.array([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1], dtype=np.float64)


def test_validation_batch_letterboxes_images_and_boxes_exactly(dataset_dir):
    samples = list_samples(dataset_dir / "images" / "train")
    dataset = DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=3, max_boxes=MAX_BOXES)
    images, targets = dataset[0]
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert len(targets) == 2
    assert targets[0].shape == (3, 2 * 2 * 3 + MAX_BOXES, 8)
    assert targets[1].shape == (3, 4 * 4 * 3 + MAX_BOXES, 8)
    names = [sample.image_path.stem for sample in samples]  # sorted: square, tall, wide
    assert names == ["square", "tall", "wide"]
    # "wide" 100x50 -> scale 0.64, resized 64x32, pad_y = 16: box (10, 10, 40, 30) -> (6.4, 22.4, 25.6, 35.2).
    np.testing.assert_allclose(_xyxy(_ground_truth_rows(targets[0][2])), [[6.4, 22.4, 25.6, 35.2]], atol=1e-4)
    # "tall" 40x80 -> scale 0.8, resized 32x64, pad_x = 16: box (10, 20, 30, 60) -> (24, 16, 40, 48).
    np.testing.assert_allclose(_xyxy(_ground_truth_rows(targets[0][1])), [[24, 16, 40, 48]], atol=1e-4)
    np.testing.assert_allclose(_tight_box(images[1]), [24, 16, 40, 48])
    # "square" is already 64x64: boxes unchanged, and the grey letterbox fill is absent.
    np.testing.assert_allclose(_xyxy(_ground_truth_rows(targets[0][0])), [[8, 8, 24, 40], [40, 32, 60, 60]],
                               atol=1e-4)
    # The grey padding of "wide" is 128/255.
    np.testing.assert_allclose(images[2, 0, 0], [128 / 255] * 3, atol=1e-6)
    # Each box has exactly one responsible anchor over both heads, with its one-hot class.
    responsible = sum(int(target[:, :-MAX_BOXES, 4].sum()) for target in targets)
    assert responsible == 4
    classes = np.concatenate([target[:, :-MAX_BOXES][target[:, :-MAX_BOXES, 4] > 0][:, 5:] for target in targets])
    np.testing.assert_array_equal(np.sort(classes.argmax(axis=1)), [0, 1, 2, 2])


@pytest.mark.parametrize("seed", range(4))
def test_augmented_boxes_still_bound_their_drawn_pixels(dataset_dir, seed):
    dataset = DetectionDataset.from_yaml(dataset_dir / "data.yaml", "train", heads=HEADS, input_size=64, batch_size=3,
                                         augment=True, max_boxes=MAX_BOXES, seed=seed,
                                         augmentation=AugmentationSettings(hue=0, saturation=1.0, exposure=1.0,
                                                                           fill=0, min_visible_fraction=0.99))
    images, targets = dataset[0]
    names = [dataset.samples[position].image_path.stem for position in dataset.order()]
    for name, image, target in zip(names, images, targets[0]):
        boxes = _xyxy(_ground_truth_rows(target))
        if name != "square" and len(boxes) == 1:  # one drawn box, still (almost) entirely inside the image
            # Two resamplings (letterbox resize, then the warp) blur each edge by up to 1.5 pixels.
            np.testing.assert_allclose(_tight_box(image, threshold=0.7), boxes[0], atol=1.5)


def test_shuffling_changes_with_the_epoch_and_is_reproducible(dataset_dir):
    samples = list_samples(dataset_dir / "images" / "train")
    dataset = DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=1, augment=True, seed=3)
    orders = []
    for _ in range(6):
        orders.append(tuple(dataset.order()))
        dataset.on_epoch_end()
    assert len(set(orders)) > 1
    again = DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=1, augment=True, seed=3)
    assert tuple(again.order()) == orders[0]


def test_multi_scale_draws_one_side_per_batch(dataset_dir):
    samples = list_samples(dataset_dir / "images" / "train")
    dataset = DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=1, multi_scale=True,
                               multi_scale_sizes=(64, 96, 128), max_boxes=MAX_BOXES)
    sides = set()
    for epoch in range(4):
        dataset.epoch = epoch
        for index in range(len(dataset)):
            images, targets = dataset[index]
            side = images.shape[1]
            assert images.shape[1:3] == (side, side) and side in (64, 96, 128)
            assert targets[0].shape[1] == (side // 32) ** 2 * 3 + MAX_BOXES
            sides.add(side)
        assert dataset.batch_side(0) != dataset.batch_side(1)  # what makes Keras's TensorFlow shapes dynamic
    assert len(sides) >= 2


def test_multi_scale_needs_two_batches_per_epoch(dataset_dir):
    samples = list_samples(dataset_dir / "images" / "train")
    with pytest.raises(DataError, match="at least 2 batches per epoch"):
        DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=len(samples), multi_scale=True,
                         multi_scale_sizes=(64, 96))


def test_batches_are_identical_after_pickling_for_worker_processes(dataset_dir):
    samples = list_samples(dataset_dir / "images" / "train")
    dataset = DetectionDataset(samples, heads=HEADS, input_size=64, batch_size=2, augment=True, seed=1, workers=2,
                               use_multiprocessing=True)
    copy = pickle.loads(pickle.dumps(dataset))
    first, second = dataset[1], copy[1]
    np.testing.assert_array_equal(first[0], second[0])
    for a, b in zip(first[1], second[1]):
        np.testing.assert_array_equal(a, b)
    assert dataset.workers == 2 and dataset.use_multiprocessing


def test_class_id_beyond_the_model_names_the_label_file(tmp_path):
    _write_sample(tmp_path, "bad", (32, 32), [(4, 4, 20, 20)], [5])
    dataset = DetectionDataset(list_samples(tmp_path / "images" / "train"), heads=HEADS, input_size=64)
    with pytest.raises(DataError, match=r"bad\.txt"):
        dataset[0]


def test_empty_dataset_is_refused():
    with pytest.raises(DataError, match="no samples"):
        DetectionDataset([], heads=HEADS)
