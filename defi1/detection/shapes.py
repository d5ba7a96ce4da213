"""The built-in synthetic detection dataset: coloured geometric shapes on noisy or textured backgrounds.

It is the embedded default of Part 2 (no download): ``defi1 data shapes --out DIR --images N --seed S`` writes a
YOLO-format dataset (see :mod:`defi1.detection.labels`) whose boxes are exactly tight around the drawn pixels: each
shape is rasterised into its own anti-aliased mask, the box is the extent of the mask's non-zero pixels, and the
image is composited through that mask. The output is a function of the seed only (PNG files, identical bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defi1.boxes import overlaps_too_much
from defi1.detection.labels import labels_from_pixels, prepare_dataset_folder, write_dataset_yaml

SHAPE_NAMES = ("circle", "square", "triangle", "star", "cross")
BACKGROUNDS = ("plain", "noise", "gradient", "texture")


@dataclass(frozen=True)
class ShapesSettings:
    """How images are drawn. Sizes are fractions of the image side."""

    image_size: int = 256
    min_objects: int = 1
    max_objects: int = 5
    min_size: float = 0.08
    max_size: float = 0.4
    max_overlap_iou: float = 0.3  # new shapes overlapping earlier ones more than this are redrawn elsewhere
    background_probability: float = 0.03  # images with no object at all
    backgrounds: tuple = BACKGROUNDS

    def __post_init__(self):
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"expected 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.min_size <= self.max_size <= 1:
            raise ValueError(f"expected 0 < min_size <= max_size <= 1, got {self.min_size}, {self.max_size}")
        unknown = [name for name in self.backgrounds if name not in BACKGROUNDS]
        if unknown or not self.backgrounds:
            raise ValueError(f"backgrounds {self.backgrounds}: expected some of {', '.join(BACKGROUNDS)}")


def _shape_polygon(shape: str, size: float, angle: float) -> np.ndarray | None:
    """Vertices (float, centred on 0) of a polygonal shape of bounding size ``size``, rotated by ``angle``."""
    radius = size / 2.0
    if shape == "square":
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * radius / math.sqrt(2) * 1.2
    elif shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        points = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius
    elif shape == "star":
        angles = np.deg2rad(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
        points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    elif shape == "cross":
        arm = 0.33
        outline = [[-arm, -1], [arm, -1], [arm, -arm], [1, -arm], [1, arm], [arm, arm], [arm, 1], [-arm, 1],
                   [-arm, arm], [-1, arm], [-1, -arm], [-arm, -arm]]
        points = np.array(outline, dtype=np.float64) * radius
    else:
        return None
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return points @ rotation.T


def _shape_mask(shape: str, size: float, angle: float, aspect: float):
    """An anti-aliased ``uint8`` mask of one shape and the offset of its centre inside the mask."""
    import cv2

    shift = 4  # sub-pixel precision of OpenCV drawing: coordinates in 1/16 pixel
    side = int(math.ceil(size * max(aspect, 1.0) * 1.5)) + 4
    mask = np.zeros((side, side), dtype=np.uint8)
    centre = side / 2.0
    if shape == "circle":
        axes = (size / 2.0 * aspect, size / 2.0)
        cv2.ellipse(mask, (int(round(centre * 16)), int(round(centre * 16))),
                    (int(round(axes[0] * 16)), int(round(axes[1] * 16))), math.degrees(angle), 0, 360, 255,
                    thickness=-1, lineType=cv2.LINE_AA, shift=shift)
    else:
        points = _shape_polygon(shape, size, angle) + centre
        cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=shift)
    # Drop the faintest anti-aliasing: every pixel left in the mask visibly changes the image, so the box taken from
    # the mask is tight around what is drawn.
    mask[mask < 64] = 0
    return mask


def _background(rng, height: int, width: int, kind: str) -> np.ndarray:
    import cv2

    base = rng.integers(0, 256, size=3).astype(np.float32)
    if kind == "plain":
        image = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    elif kind == "noise":
        image = base + 25.0 * rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    elif kind == "gradient":
        other = rng.integers(0, 256, size=3).astype(np.float32)
        direction = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = (xs * math.cos(direction) + ys * math.sin(direction))
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
        image = base + ramp[:, :, None] * (other - base)
        image += 6.0 * rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    else:  # texture: low-frequency noise upsampled, plus a little grain
        cells = int(rng.integers(4, 12))
        coarse = rng.normal(0.0, 45.0, size=(cells, cells, 3)).astype(np.float32)
        image = base + cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        image += 8.0 * rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    return image


def _shape_colour(rng, background_mean) -> np.ndarray:
    """A saturated colour far enough from the background's mean colour to be visible."""
    import cv2

    for _ in range(20):
        hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(120, 256)]]], dtype=np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
        if np.linalg.norm(colour - background_mean) > 90:
            return colour
    return 255.0 - background_mean


def render_shapes_image(rng, settings: ShapesSettings = ShapesSettings(), *, width=None, height=None):
    """Draw one image.

    Args:
        rng: a ``numpy.random.Generator`` (the image is a function of its state).
        settings: :class:`ShapesSettings`. width, height: image size (default ``settings.image_size`` square).
    Returns:
        ``(image (H, W, 3) uint8 RGB, boxes (N, 4) [x_min, y_min, x_max, y_max] pixels, class_ids (N,) int64,
        background (H, W, 3) uint8)``: the boxes enclose exactly the pixels each shape changed (the box of a shape
        partly covered by a later one still encloses the whole shape). ``background`` is the image before drawing.
    """
    width = settings.image_size if width is None else width
    height = settings.image_size if height is None else height
    kind = settings.backgrounds[int(rng.integers(0, len(settings.backgrounds)))]
    canvas = _background(rng, height, width, kind)
    background = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    canvas = background.astype(np.float32)
    boxes, class_ids = [], []
    if rng.uniform() >= settings.background_probability:
        wanted = int(rng.integers(settings.min_objects, settings.max_objects + 1))
        side = min(width, height)
        for _ in range(wanted * 6):
            if len(boxes) == wanted:
                break
            class_id = int(rng.integers(0, len(SHAPE_NAMES)))
            size = rng.uniform(settings.min_size, settings.max_size) * side
            aspect = rng.uniform(0.6, 1.0) if SHAPE_NAMES[class_id] == "circle" else 1.0
            mask = _shape_mask(SHAPE_NAMES[class_id], size, rng.uniform(0, 2 * math.pi), aspect)
            rows = np.flatnonzero(mask.any(axis=1))
            columns = np.flatnonzero(mask.any(axis=0))
            mask = mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
            mask_height, mask_width = mask.shape
            if mask_width > width or mask_height > height:
                continue
            left = int(rng.integers(0, width - mask_width + 1))
            top = int(rng.integers(0, height - mask_height + 1))
            box = np.array([left, top, left + mask_width, top + mask_height], dtype=np.float64)
            if overlaps_too_much(box, boxes, max_iou=settings.max_overlap_iou):
                continue
            region = canvas[top:top + mask_height, left:left + mask_width]
            colour = _shape_colour(rng, region.reshape(-1, 3).mean(axis=0))
            alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
            region[:] = region * (1.0 - alpha) + colour * alpha
            boxes.append(box)
            class_ids.append(class_id)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return (image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(class_ids, dtype=np.int64),
            background)


def _encode_png(image: np.ndarray) -> bytes:
    import cv2

    from defi1.images import bgr_from_rgb

    success, buffer = cv2.imencode(".png", bgr_from_rgb(image), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not success:
        raise RuntimeError("OpenCV could not encode a PNG image")
    return buffer.tobytes()


def generate_shapes_dataset(out_dir, *, num_images: int, seed: int = 0, image_size: int = 256, num_val=None,
                            num_test: int = 0, settings: ShapesSettings | None = None, overwrite: bool = False,
                            progress: bool = False) -> Path:
    """Write a YOLO-format shapes dataset and return the path of its ``data.yaml``.

    Args:
        out_dir: the dataset folder (created): ``images/{train,val,test}/00000.png``, ``labels/...``, ``data.yaml``.
        num_images: training images. num_val: validation images (default ``max(1, num_images // 4)``).
        num_test: test images (no test split when 0). seed: the dataset is a function of it.
        image_size: side of the square images in pixels.
        settings: drawing settings (default :class:`ShapesSettings` with ``image_size``).
        overwrite: replace the images/ and labels/ folders of an existing dataset in ``out_dir`` (otherwise
            FileExistsError).
        progress: show a tqdm progress bar.
    Image ``i`` of split ``s`` is drawn with ``numpy.random.default_rng([seed, s, i])``, so the splits never
    share an image and a larger dataset extends a smaller one of the same seed.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    num_val = max(1, num_images // 4) if num_val is None else int(num_val)
    if num_val < 0 or num_test < 0:
        raise ValueError("num_val and num_test must be >= 0")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    settings = settings or ShapesSettings(image_size=image_size)
    if settings.image_size != image_size:
        settings = ShapesSettings(**{**settings.__dict__, "image_size": image_size})
    out_dir = prepare_dataset_folder(out_dir, overwrite=overwrite)
    counts = {"train": num_images, "val": num_val, "test": num_test}
    total = sum(counts.values())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="shapes", unit="image")
    for split_index, (split, count) in enumerate(counts.items()):
        if count == 0:
            continue
        for kind in ("images", "labels"):
            (out_dir / kind / split).mkdir(parents=True, exist_ok=True)
        for image_index in range(count):
            rng = np.random.default_rng([seed, split_index, image_index])
            image, boxes, class_ids, _ = render_shapes_image(rng, settings)
            stem = f"{split}_{image_index:05d}"  # unique across splits (flat formats such as VOC)
            # Plain writes for speed; data.yaml, written last and atomically, marks a complete dataset.
            (out_dir / "images" / split / f"{stem}.png").write_bytes(_encode_png(image))
            labels = labels_from_pixels(boxes, (image_size, image_size))
            text = "".join(f"{class_id} {box[0]:.6f} {box[1]:.6f} {box[2]:.6f} {box[3]:.6f}\n"
                           for class_id, box in zip(class_ids.tolist(), labels))
            (out_dir / "labels" / split / f"{stem}.txt").write_text(text, encoding="ascii")
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return write_dataset_yaml(out_dir / "data.yaml", names=list(SHAPE_NAMES), train="images/train",
                              val="images/val" if num_val else None, test="images/test" if num_test else None)
