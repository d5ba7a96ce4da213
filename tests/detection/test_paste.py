"""Pasting object crops on backgrounds: boxes are the pasted extent, transparency respected."""

import hashlib

import numpy as np
import pytest

from defi1.detection.labels import load_dataset_yaml, load_ground_truth
from defi1.detection.paste import PasteSettings, compose_image, generate_paste_dataset
from defi1.images import read_image, write_image


def _crop_with_transparent_margin():
    """A 40×40 RGBA crop whose only opaque pixels are a 20-wide, 10-high red bar in the middle."""
    crop = np.zeros((40, 40, 4), np.uint8)
    crop[15:25, 10:30] = [255, 0, 0, 255]
    return crop


def test_box_is_the_opaque_extent_and_everything_else_is_background():
    background = np.full((64, 64, 3), 90, np.uint8)
    settings = PasteSettings(objects_per_image=(1, 1), scale_range=(0.5, 0.5), image_size=None)
    for seed in range(6):
        image, boxes, class_ids = compose_image(background, [[_crop_with_transparent_margin()]],
                                                np.random.default_rng(seed), settings)
        [box] = boxes.astype(int)
        # Scale: longer side 0.5 * 64 = 32 pixels, so the crop becomes 32×32 and its bar 16×8: the box is the bar.
        assert (box[2] - box[0], box[3] - box[1]) == (16, 8) and class_ids.tolist() == [0]
        changed = np.any(image != 90, axis=2)
        assert changed[box[1]:box[3], box[0]:box[2]].all()
        changed[box[1]:box[3], box[0]:box[2]] = False
        assert not changed.any()


def test_flip_mirrors_the_crop():
    crop = np.zeros((10, 20, 4), np.uint8)
    crop[:, :, 3] = 255
    crop[:, :10, :3] = [0, 0, 255]  # left half blue, right half green
    crop[:, 10:, :3] = [0, 255, 0]
    settings = PasteSettings(objects_per_image=(1, 1), scale_range=(20 / 64, 20 / 64), image_size=None)
    left_colours = set()
    for seed in range(12):
        image, boxes, _ = compose_image(np.zeros((64, 64, 3), np.uint8), [[crop]], np.random.default_rng(seed),
                                        settings)
        x_min, y_min = boxes[0, :2].astype(int)
        left_colours.add(tuple(image[y_min + 5, x_min].tolist()))
    assert left_colours == {(0, 0, 255), (0, 255, 0)}  # both orientations occur


def test_generated_dataset(tmp_path):
    objects = tmp_path / "objects"
    write_image(objects / "bar" / "a.png", np.zeros((1, 1, 3), np.uint8))  # replaced below with an RGBA file
    from PIL import Image

    Image.fromarray(_crop_with_transparent_margin(), "RGBA").save(objects / "bar" / "a.png")
    write_image(objects / "square" / "s.jpg", np.full((12, 12, 3), 250, np.uint8))
    write_image(tmp_path / "backgrounds" / "b1.png", np.full((80, 120, 3), 30, np.uint8))
    write_image(tmp_path / "backgrounds" / "b2.png", np.full((100, 100, 3), 60, np.uint8))
    settings = PasteSettings(image_size=64)
    data_yaml = generate_paste_dataset(objects, tmp_path / "backgrounds", tmp_path / "out", num_images=5, seed=1,
                                       num_val=2, settings=settings, image_format="png")
    config = load_dataset_yaml(data_yaml)
    assert config.names == ["bar", "square"] and len(config.samples("train")) == 5
    for sample in config.samples("train") + config.samples("val"):
        image = read_image(sample.image_path)
        assert image.shape == (64, 64, 3)
        boxes, class_ids = load_ground_truth(sample, (64, 64))
        assert 1 <= len(boxes) <= 4
        background_value = 30 if image[0, 0, 0] == 30 else 60
        changed = np.any(image != background_value, axis=2)
        inside = np.zeros_like(changed)
        for x_min, y_min, x_max, y_max in np.round(boxes).astype(int):
            inside[y_min:y_max, x_min:x_max] = True
        assert not np.any(changed & ~inside)
    digest = hashlib.sha256((tmp_path / "out/images/train/train_00000.png").read_bytes()).hexdigest()
    generate_paste_dataset(objects, tmp_path / "backgrounds", tmp_path / "again", num_images=5, seed=1,
                           num_val=2, settings=settings, image_format="png")
    assert hashlib.sha256((tmp_path / "again/images/train/train_00000.png").read_bytes()).hexdigest() == digest


def test_missing_inputs(tmp_path):
    (tmp_path / "objects").mkdir()
    with pytest.raises(ValueError, match="no class subfolder with images"):
        generate_paste_dataset(tmp_path / "objects", tmp_path, tmp_path / "out", num_images=1)
    with pytest.raises(FileNotFoundError, match="one subfolder of crops per class"):
        generate_paste_dataset(tmp_path / "nothing", tmp_path, tmp_path / "out", num_images=1)


def test_paste_on_darknet_photographs(darknet_dir, tmp_path):
    """Real photographs as backgrounds (cropped to a square and resized), a transparent crop as the object."""
    from PIL import Image

    (tmp_path / "objects" / "bar").mkdir(parents=True)
    Image.fromarray(_crop_with_transparent_margin(), "RGBA").save(tmp_path / "objects" / "bar" / "a.png")
    settings = PasteSettings(image_size=96, objects_per_image=(2, 2), scale_range=(0.5, 0.5))
    data_yaml = generate_paste_dataset(tmp_path / "objects", darknet_dir / "images", tmp_path / "out",
                                       num_images=2, num_val=0, seed=0, settings=settings)
    for sample in load_dataset_yaml(data_yaml).samples("train"):
        assert read_image(sample.image_path).shape == (96, 96, 3)
        boxes, class_ids = load_ground_truth(sample, (96, 96))
        # 0.5 * 96 = 48-pixel crops (40 -> 48, bilinear) whose bar becomes 24×12 opaque pixels plus one partly
        # transparent pixel on each side from the interpolation: the pasted extent is 26×14.
        np.testing.assert_allclose(boxes[:, 2:] - boxes[:, :2], [[26, 14]] * len(boxes), atol=1e-3)
        assert len(boxes) == 2 and class_ids.tolist() == [0, 0]
