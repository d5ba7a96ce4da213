"""The synthetic shapes dataset: deterministic and with tight boxes."""

import hashlib

import numpy as np
import pytest

from defi1.detection.labels import list_samples, load_dataset_yaml, load_ground_truth, read_yolo_labels
from defi1.detection.shapes import SHAPE_NAMES, ShapesSettings, generate_shapes_dataset, render_shapes_image
from defi1.images import image_size, read_image


def _digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = generate_shapes_dataset(tmp_path / "a", num_images=6, seed=3, image_size=64, num_val=2, num_test=1)
    second = generate_shapes_dataset(tmp_path / "b", num_images=6, seed=3, image_size=64, num_val=2, num_test=1)
    third = generate_shapes_dataset(tmp_path / "c", num_images=6, seed=4, image_size=64, num_val=2, num_test=1)
    assert _digest(first.parent) == _digest(second.parent)
    assert _digest(first.parent) != _digest(third.parent)
    config = load_dataset_yaml(first)
    assert config.names == list(SHAPE_NAMES)
    assert [len(config.samples(split)) for split in ("train", "val", "test")] == [6, 2, 1]
    assert image_size(config.samples("val")[0].image_path) == (64, 64)
    with pytest.raises(FileExistsError, match="already holds"):
        generate_shapes_dataset(tmp_path / "a", num_images=2, seed=3, image_size=64)
    generate_shapes_dataset(tmp_path / "a", num_images=2, seed=3, image_size=64, num_val=0, overwrite=True)
    config = load_dataset_yaml(first)
    assert len(config.samples("train")) == 2 and config.val is None


def test_boxes_are_tight_around_the_drawn_pixels():
    several = ShapesSettings(image_size=96, backgrounds=("plain",), background_probability=0.0)
    single = ShapesSettings(image_size=96, backgrounds=("plain",), background_probability=0.0, max_objects=1)
    checked = 0
    for seed in range(24):
        settings = single if seed % 2 else several
        image, boxes, class_ids, background = render_shapes_image(np.random.default_rng(seed), settings)
        assert len(boxes) >= 1 and set(class_ids.tolist()) <= set(range(len(SHAPE_NAMES)))
        changed = np.any(image != background, axis=2)
        inside = np.zeros_like(changed)
        for x_min, y_min, x_max, y_max in boxes.astype(int):
            inside[y_min:y_max, x_min:x_max] = True
        # Every drawn pixel lies inside a box.
        assert not np.any(changed & ~inside)
        # Each box is tight: its first and last rows and columns hold drawn pixels (when no later shape covers them,
        # hence tested on images with a single shape).
        if len(boxes) == 1:
            x_min, y_min, x_max, y_max = boxes[0].astype(int)
            region = changed[y_min:y_max, x_min:x_max]
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any()
            checked += 1
    assert checked >= 12


def test_written_labels_match_rendering(tmp_path):
    data_yaml = generate_shapes_dataset(tmp_path / "d", num_images=3, seed=7, image_size=64, num_val=0)
    sample = list_samples(load_dataset_yaml(data_yaml).train)[0]
    _, expected_boxes, expected_classes, _ = render_shapes_image(np.random.default_rng([7, 0, 0]),
                                                                 ShapesSettings(image_size=64))
    boxes, class_ids = load_ground_truth(sample, (64, 64))
    np.testing.assert_allclose(boxes, expected_boxes, atol=64 * 1e-6)
    assert class_ids.tolist() == expected_classes.tolist()
    assert read_image(sample.image_path).shape == (64, 64, 3)
    assert read_yolo_labels(sample.label_path, num_classes=len(SHAPE_NAMES))[0].tolist() == class_ids.tolist()
