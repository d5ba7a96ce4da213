"""Box-aware augmentation: boxes move exactly as the pixels they bound."""

import numpy as np
import pytest

from defi1.detection.augment import (NO_AUGMENTATION, AugmentationSettings, affine_matrix, augment_sample,
                                     clip_and_filter_boxes, horizontal_flip, hsv_jitter, random_affine,
                                     random_affine_matrix, warp_affine)

pytestmark = pytest.mark.backend_agnostic  # NumPy and OpenCV only


def _drawn_rectangle(width=64, height=48, box=(10, 6, 30, 26)):
    """A black image with a white filled rectangle covering pixel columns x_min..x_max-1, rows y_min..y_max-1."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    x_min, y_min, x_max, y_max = box
    image[y_min:y_max, x_min:x_max] = 255
    return image, np.array([box], dtype=np.float64)


def _tight_box(image, threshold=127):
    """xyxy box of the pixels brighter than ``threshold`` (continuous coordinates)."""
    rows, columns = np.nonzero(image[:, :, 0] > threshold)
    return np.array([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1], dtype=np.float64)


def test_flip_moves_a_known_box_to_its_mirror():
    image, boxes = _drawn_rectangle(width=64, box=(10, 6, 30, 26))
    flipped, flipped_boxes = horizontal_flip(image, boxes)
    np.testing.assert_allclose(flipped_boxes, [[34, 6, 54, 26]])
    np.testing.assert_allclose(_tight_box(flipped), [34, 6, 54, 26])


def test_flip_twice_is_identity():
    image, boxes = _drawn_rectangle()
    again, again_boxes = horizontal_flip(*horizontal_flip(image, boxes))
    np.testing.assert_array_equal(again, image)
    np.testing.assert_allclose(again_boxes, boxes)


def test_affine_maps_box_corners_by_hand():
    # scale 2 about the centre (32, 24) then shift by (+3, -2): x' = 2x - 32 + 3, y' = 2y - 24 - 2.
    matrix = affine_matrix(width=64, height=48, scale_x=2.0, scale_y=2.0, shift_x=3.0, shift_y=-2.0)
    image, boxes = _drawn_rectangle(box=(20, 16, 30, 26))
    warped, moved = warp_affine(image, boxes, matrix, fill=0)
    np.testing.assert_allclose(moved, [[11, 6, 31, 26]])
    np.testing.assert_allclose(_tight_box(warped), [11, 6, 31, 26], atol=1)


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_box_tightly_bounds_the_drawn_pixels(seed):
    image, boxes = _drawn_rectangle(box=(18, 12, 42, 34))
    rng = np.random.default_rng(seed)
    warped, moved = random_affine(image, boxes, rng=rng, scale_range=(0.6, 1.4), aspect_jitter=0.4, translate=0.15,
                                  fill=0)
    # Bilinear interpolation blurs the edges by at most one pixel.
    np.testing.assert_allclose(_tight_box(warped), moved[0], atol=1.0)


def test_flip_inside_the_affine_warp_equals_the_plain_flip():
    image, boxes = _drawn_rectangle(width=64, box=(10, 6, 30, 26))
    image[3, 5] = [10, 200, 30]  # an asymmetric pixel
    matrix = random_affine_matrix(width=64, height=48, rng=np.random.default_rng(0), scale_range=(1.0, 1.0),
                                  aspect_jitter=0.0, translate=0.0, flip=True)
    warped, moved = warp_affine(image, boxes, matrix)
    flipped, flipped_boxes = horizontal_flip(image, boxes)
    np.testing.assert_array_equal(warped, flipped)
    np.testing.assert_allclose(moved, flipped_boxes)


@pytest.mark.parametrize("seed", range(4))
def test_random_affine_with_flip_keeps_the_box_on_its_pixels(seed):
    image, boxes = _drawn_rectangle(box=(18, 12, 42, 34))
    matrix = random_affine_matrix(width=64, height=48, rng=np.random.default_rng(seed), scale_range=(0.6, 1.4),
                                  aspect_jitter=0.4, translate=0.15, flip=True)
    warped, moved = warp_affine(image, boxes, matrix, fill=0)
    assert matrix[0, 0] < 0
    np.testing.assert_allclose(_tight_box(warped), moved[0], atol=1.0)


def test_boxes_leaving_the_image_are_clipped_or_dropped():
    boxes = np.array([[-10, 5, 20, 25],    # 1/3 outside on the left: clipped to x_min = 0
                      [60, 10, 90, 30],    # only 4 of 30 columns inside: dropped (visible fraction 0.13)
                      [70, 10, 90, 30],    # completely outside: dropped
                      [5, 5, 6, 30]])      # 1 pixel wide: dropped (min_size 2)
    kept_boxes, kept_ids = clip_and_filter_boxes(boxes, [0, 1, 2, 3], 64, 48, min_size=2, min_visible_fraction=0.25)
    np.testing.assert_allclose(kept_boxes, [[0, 5, 20, 25]])
    np.testing.assert_array_equal(kept_ids, [0])


def test_zoom_in_pushes_a_corner_box_out_of_the_image():
    image, boxes = _drawn_rectangle(width=64, height=64, box=(0, 0, 8, 8))
    matrix = affine_matrix(width=64, height=64, scale_x=2.0, scale_y=2.0, shift_x=-20.0, shift_y=0.0)
    warped, moved = warp_affine(image, boxes, matrix, fill=0)
    np.testing.assert_allclose(moved, [[-52, -32, -36, -16]])
    kept, ids = clip_and_filter_boxes(moved, [1], 64, 64)
    assert len(kept) == 0 and len(ids) == 0


def test_hsv_jitter_keeps_grey_grey_and_scales_value():
    grey = np.full((4, 4, 3), 100, dtype=np.uint8)

    class FixedRng:
        """Draws that give hue shift 0, saturation factor 1 and value factor exp(log(1.5)) = 1.5."""

        def __init__(self):
            self.values = iter([0.0, 0.0, np.log(1.5)])

        def uniform(self, low, high):
            return next(self.values)

    out = hsv_jitter(grey, rng=FixedRng(), hue=0.1, saturation=1.5, exposure=1.5)
    np.testing.assert_array_equal(out, np.full((4, 4, 3), 150, dtype=np.uint8))


def test_no_augmentation_returns_the_sample_unchanged():
    image, boxes = _drawn_rectangle()
    out, out_boxes, out_ids = augment_sample(image, boxes, [2], rng=np.random.default_rng(0),
                                             settings=NO_AUGMENTATION)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_allclose(out_boxes, boxes)
    np.testing.assert_array_equal(out_ids, [2])


@pytest.mark.parametrize("seed", range(8))
def test_full_augmentation_keeps_boxes_on_their_pixels(seed):
    image, boxes = _drawn_rectangle(box=(18, 12, 42, 34))
    settings = AugmentationSettings(hue=0.0, saturation=1.0, exposure=1.2, fill=0)
    out, out_boxes, out_ids = augment_sample(image, boxes, [1], rng=np.random.default_rng(seed), settings=settings)
    assert out.shape == image.shape and out.dtype == np.uint8
    if len(out_boxes):
        np.testing.assert_allclose(_tight_box(out, threshold=60), out_boxes[0], atol=1.0)
        np.testing.assert_array_equal(out_ids, [1])


def test_settings_reject_nonsense():
    with pytest.raises(ValueError, match="scale_range"):
        AugmentationSettings(scale_range=(1.5, 0.5))
