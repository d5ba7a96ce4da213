"""Box-aware data augmentation for detection training, with OpenCV and NumPy.

Every transform takes and returns an RGB ``uint8`` image ``(height, width, 3)`` together with its boxes,
``(num_boxes, 4)`` ``[x_min, y_min, x_max, y_max]`` in pixels of that image (continuous coordinates, as in
:mod:`defi1.boxes`: a box covering pixel columns ``a .. b-1`` has ``x_min = a`` and ``x_max = b``). Geometric
transforms move the boxes exactly as they move the pixels; boxes that leave the image are clipped, and dropped when
too little of them is left (:func:`clip_and_filter_boxes`).

The order used in training (:func:`augment_sample`), after the letterbox to the network input size: random scale
with aspect jitter, translation and horizontal flip (one affine warp), then HSV jitter (darknet's ``hue``,
``saturation`` and ``exposure`` keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from defi1.boxes import LETTERBOX_FILL, box_area


@dataclass(frozen=True)
class AugmentationSettings:
    """Settings of the training augmentation; the defaults follow darknet's YOLOv3 training cfg where it has one.

    Attributes:
        scale_range: the image is zoomed by a factor drawn uniformly in this range (``< 1`` zooms out).
        aspect_jitter: the width is scaled by ``exp(u)`` and the height by ``exp(-u)``, ``u`` uniform in
            ``[-log(1 + aspect_jitter), log(1 + aspect_jitter)] / 2``, so ``0.3`` changes the aspect ratio by up to 30 %.
        translate: largest shift, as a fraction of the image side, on each axis.
        flip_probability: probability of a horizontal flip.
        hue: largest hue shift as a fraction of the hue circle (darknet ``hue = .1``).
        saturation: saturation multiplied by a factor in ``[1 / saturation, saturation]`` (darknet ``1.5``).
        exposure: value (brightness) multiplied by a factor in ``[1 / exposure, exposure]`` (darknet ``1.5``).
        min_box_size: boxes narrower or shorter than this many pixels after the transform are dropped.
        min_visible_fraction: boxes keeping less than this fraction of their area inside the image are dropped.
        fill: grey level of the pixels uncovered by the warp (darknet's letterbox grey).
    """

    scale_range: tuple[float, float] = (0.75, 1.25)
    aspect_jitter: float = 0.3
    translate: float = 0.1
    flip_probability: float = 0.5
    hue: float = 0.1
    saturation: float = 1.5
    exposure: float = 1.5
    min_box_size: float = 2.0
    min_visible_fraction: float = 0.25
    fill: int = LETTERBOX_FILL

    def __post_init__(self):
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")
        if self.aspect_jitter < 0 or self.translate < 0 or not 0 <= self.flip_probability <= 1:
            raise ValueError("aspect_jitter and translate must be >= 0 and flip_probability in [0, 1]")
        if self.saturation < 1 or self.exposure < 1 or not 0 <= self.hue <= 0.5:
            raise ValueError("saturation and exposure must be >= 1 and hue in [0, 0.5]")


NO_AUGMENTATION = AugmentationSettings(scale_range=(1.0, 1.0), aspect_jitter=0.0, translate=0.0, flip_probability=0.0,
                                       hue=0.0, saturation=1.0, exposure=1.0)


def _as_boxes(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def horizontal_flip(image, boxes):
    """Mirror an image left-right. ``x`` becomes ``width - x``: box ``[x_min, y_min, x_max, y_max]`` becomes
    ``[width - x_max, y_min, width - x_min, y_max]``.

    Args:
        image: ``(height, width, channels)`` array. boxes: ``(N, 4)`` xyxy pixels.
    Returns:
        ``(flipped image, (N, 4) xyxy boxes)``.
    """
    image = np.asarray(image)
    width = image.shape[1]
    boxes = _as_boxes(boxes)
    flipped_boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    flipped = cv2.flip(image, 1) if image.dtype == np.uint8 else np.ascontiguousarray(image[:, ::-1])
    if flipped.ndim < image.ndim:
        flipped = flipped[..., None]
    return flipped, flipped_boxes


def affine_matrix(*, width, height, scale_x, scale_y, shift_x, shift_y) -> np.ndarray:
    """The ``2 × 3`` map of continuous coordinates that scales about the image centre then shifts by
    ``(shift_x, shift_y)`` pixels: ``x' = scale_x * (x - width / 2) + width / 2 + shift_x`` (same for ``y``)."""
    return np.array([[scale_x, 0.0, (1.0 - scale_x) * width / 2.0 + shift_x],
                     [0.0, scale_y, (1.0 - scale_y) * height / 2.0 + shift_y]], dtype=np.float64)


def warp_affine(image, boxes, matrix, *, output_size=None, fill=LETTERBOX_FILL):
    """Apply an axis-aligned affine map (scale and translation, no rotation) to an image and its boxes.

    The map acts on continuous coordinates (pixel ``i`` spans ``[i, i + 1)``); it is converted to OpenCV's
    pixel-centre convention so that the boxes follow the pixels exactly.

    Args:
        image: ``(height, width, 3)`` ``uint8``. boxes: ``(N, 4)`` xyxy pixels.
        matrix: ``(2, 3)`` from :func:`affine_matrix` (no shear or rotation terms).
        output_size: ``(width, height)`` of the result, the input size by default.
    Returns:
        ``(warped image, (N, 4) xyxy boxes)``; boxes are not clipped (see :func:`clip_and_filter_boxes`).
    """
    image = np.asarray(image)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix[0, 1] != 0 or matrix[1, 0] != 0:
        raise ValueError("warp_affine handles scale and translation only (a box stays a box)")
    height, width = image.shape[:2]
    output_width, output_height = output_size if output_size is not None else (width, height)
    # Continuous x' = a x + c is pixel-index i' = a i + (c + (a - 1) / 2) in OpenCV's pixel-centre convention.
    pixel_matrix = matrix.copy()
    pixel_matrix[0, 2] += (matrix[0, 0] - 1.0) / 2.0
    pixel_matrix[1, 2] += (matrix[1, 1] - 1.0) / 2.0
    warped = cv2.warpAffine(image, pixel_matrix, (int(output_width), int(output_height)), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(fill, fill, fill))
    if warped.ndim == 2:
        warped = warped[:, :, None]
    boxes = _as_boxes(boxes)
    scale = np.array([matrix[0, 0], matrix[1, 1], matrix[0, 0], matrix[1, 1]])
    offset = np.array([matrix[0, 2], matrix[1, 2], matrix[0, 2], matrix[1, 2]])
    moved = boxes * scale + offset
    # A negative scale (mirror) swaps the corners.
    moved = np.concatenate([np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])], axis=1)
    return warped, moved


def random_affine_matrix(*, width, height, rng, scale_range=(0.75, 1.25), aspect_jitter=0.3, translate=0.1,
                         flip=False) -> np.ndarray:
    """A random :func:`affine_matrix`: zoom with aspect-ratio jitter about the centre, a shift, and (when ``flip``)
    a horizontal mirror ``x -> width - x`` applied last, all in one ``2 × 3`` map of continuous coordinates."""
    scale = rng.uniform(*scale_range)
    half_log_aspect = np.log1p(aspect_jitter) / 2.0
    aspect = np.exp(rng.uniform(-half_log_aspect, half_log_aspect)) if aspect_jitter > 0 else 1.0
    shift_x = rng.uniform(-translate, translate) * width
    shift_y = rng.uniform(-translate, translate) * height
    matrix = affine_matrix(width=width, height=height, scale_x=scale * aspect, scale_y=scale / aspect,
                           shift_x=shift_x, shift_y=shift_y)
    if flip:
        matrix[0] = [-matrix[0, 0], 0.0, width - matrix[0, 2]]
    return matrix


def random_affine(image, boxes, *, rng, scale_range=(0.75, 1.25), aspect_jitter=0.3, translate=0.1,
                  fill=LETTERBOX_FILL):
    """Random zoom with aspect-ratio jitter about the centre, then a random shift; the output keeps the input size.

    Args:
        image: ``(height, width, 3)`` ``uint8``. boxes: ``(N, 4)`` xyxy pixels. rng: ``numpy.random.Generator``.
        scale_range, aspect_jitter, translate: as in :class:`AugmentationSettings`.
    Returns:
        ``(image, (N, 4) xyxy boxes)``, boxes unclipped.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    matrix = random_affine_matrix(width=width, height=height, rng=rng, scale_range=scale_range,
                                  aspect_jitter=aspect_jitter, translate=translate)
    return warp_affine(image, boxes, matrix, fill=fill)


def hsv_jitter(image, *, rng, hue=0.1, saturation=1.5, exposure=1.5):
    """Random colour change in HSV space (darknet's ``hue``, ``saturation``, ``exposure``); boxes are unchanged.

    Args:
        image: ``(height, width, 3)`` RGB ``uint8``.
        hue: the hue is shifted by up to this fraction of the circle. saturation, exposure: saturation and value
            are multiplied by factors drawn log-uniformly in ``[1 / s, s]``.
    Returns:
        the jittered RGB ``uint8`` image.
    """
    image = np.asarray(image, dtype=np.uint8)
    hue_shift = rng.uniform(-hue, hue)
    saturation_factor = np.exp(rng.uniform(-np.log(saturation), np.log(saturation)))
    value_factor = np.exp(rng.uniform(-np.log(exposure), np.log(exposure)))
    if hue_shift == 0 and saturation_factor == 1 and value_factor == 1:
        return image.copy()
    hsv_image = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # OpenCV 8-bit hue is in [0, 180)
    levels = np.arange(256, dtype=np.float64)
    tables = np.stack([np.mod(levels + hue_shift * 180.0, 180.0), np.clip(levels * saturation_factor, 0, 255),
                       np.clip(levels * value_factor, 0, 255)], axis=1).astype(np.uint8)
    return cv2.cvtColor(cv2.LUT(hsv_image, tables.reshape(256, 1, 3)), cv2.COLOR_HSV2RGB)


def clip_and_filter_boxes(boxes, class_ids, width, height, *, min_size=2.0, min_visible_fraction=0.25):
    """Clip boxes to the image and drop those that left it.

    A box is dropped when, after clipping, its width or height is below ``min_size`` pixels, or when less than
    ``min_visible_fraction`` of its area is left inside the image.

    Args:
        boxes: ``(N, 4)`` xyxy pixels. class_ids: ``(N,)``. width, height: the image size in pixels.
    Returns:
        ``(boxes (K, 4) xyxy float64, class_ids (K,) int64)`` with ``K <= N``.
    """
    boxes = _as_boxes(boxes)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if len(boxes) != len(class_ids):
        raise ValueError(f"got {len(boxes)} boxes but {len(class_ids)} class ids")
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, height)
    original_area = box_area(boxes)
    visible = np.where(original_area > 0, box_area(clipped) / np.where(original_area > 0, original_area, 1.0), 0.0)
    keep = ((clipped[:, 2] - clipped[:, 0]) >= min_size) & ((clipped[:, 3] - clipped[:, 1]) >= min_size)
    keep &= visible >= min_visible_fraction
    return clipped[keep], class_ids[keep]


def augment_sample(image, boxes, class_ids, *, rng, settings: AugmentationSettings = AugmentationSettings()):
    """The training augmentation of one letterboxed sample: affine jitter, flip, HSV, then clip and filter.

    Args:
        image: ``(height, width, 3)`` RGB ``uint8`` (already at the network input size).
        boxes: ``(N, 4)`` xyxy pixels of ``image``. class_ids: ``(N,)`` ints. rng: ``numpy.random.Generator``.
    Returns:
        ``(image (height, width, 3) uint8, boxes (K, 4) xyxy pixels, class_ids (K,))``.
    """
    image = np.asarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    boxes = _as_boxes(boxes)
    flip = settings.flip_probability > 0 and rng.uniform() < settings.flip_probability
    if settings.scale_range != (1.0, 1.0) or settings.aspect_jitter > 0 or settings.translate > 0:
        # Zoom, shift and flip in one warp (one interpolation, one pass over the pixels).
        matrix = random_affine_matrix(width=width, height=height, rng=rng, scale_range=settings.scale_range,
                                      aspect_jitter=settings.aspect_jitter, translate=settings.translate, flip=flip)
        image, boxes = warp_affine(image, boxes, matrix, fill=settings.fill)
    elif flip:
        image, boxes = horizontal_flip(image, boxes)
    if settings.hue > 0 or settings.saturation > 1 or settings.exposure > 1:
        image = hsv_jitter(image, rng=rng, hue=settings.hue, saturation=settings.saturation,
                           exposure=settings.exposure)
    boxes, class_ids = clip_and_filter_boxes(boxes, class_ids, width, height, min_size=settings.min_box_size,
                                             min_visible_fraction=settings.min_visible_fraction)
    return image, boxes, class_ids
