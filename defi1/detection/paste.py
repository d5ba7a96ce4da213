"""The course's "paste object crops onto backgrounds" generator, for students who bring their own pictures.

``objects_dir`` holds one subfolder per class with crops of that object (PNG transparency respected: only the
opaque pixels are pasted, and the box is the extent of the pasted pixels, not of the crop's rectangle);
``backgrounds_dir`` holds background photos. Each generated image is a background with a few crops pasted at a
random scale, position and (optionally) horizontal flip; the result is a YOLO-format dataset with its YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defi1.boxes import overlaps_too_much
from defi1.detection.labels import labels_from_pixels, prepare_dataset_folder, write_dataset_yaml, write_yolo_labels
from defi1.errors import DataError
from defi1.images import list_images, read_image, read_image_with_alpha, write_image


@dataclass(frozen=True)
class PasteSettings:
    """Random choices of the generator.

    ``scale_range``: the pasted object's longer side as a fraction of the background's shorter side.
    ``objects_per_image``: inclusive range. ``max_overlap_iou``: placements overlapping an earlier object more than
    this (or hiding more than half of it) are retried. ``image_size``: square output side (the background is
    randomly cropped to a square and resized) or ``None`` to keep each background's size.
    """

    objects_per_image: tuple = (1, 4)
    scale_range: tuple = (0.15, 0.5)
    flip: bool = True
    max_overlap_iou: float = 0.3
    image_size: int | None = 416
    alpha_threshold: int = 1  # alpha values below this are transparent

    def __post_init__(self):
        low, high = self.objects_per_image
        if not 0 <= low <= high:
            raise ValueError(f"objects_per_image {self.objects_per_image}: expected 0 <= minimum <= maximum")
        smallest, largest = self.scale_range
        if not 0 < smallest <= largest <= 1:
            raise ValueError(f"scale_range {self.scale_range}: expected 0 < minimum <= maximum <= 1")
        if self.image_size is not None and self.image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels (or None), got {self.image_size}")


def _load_objects(objects_dir: Path):
    """``(names, crops)``: class names (sorted subfolders) and, per class, the RGBA crops ``(h, w, 4)``."""
    if not objects_dir.is_dir():
        raise FileNotFoundError(f"{objects_dir}: no such folder (expected one subfolder of crops per class)")
    names, crops = [], []
    for folder in sorted(path for path in objects_dir.iterdir() if path.is_dir() and not path.name.startswith(".")):
        images = [read_image_with_alpha(path) for path in list_images(folder)]
        if images:
            names.append(folder.name)
            crops.append(images)
    if not names:
        raise DataError(f"{objects_dir}: no class subfolder with images (expected {objects_dir}/<class>/*.png)")
    return names, crops


def _fit_background(background: np.ndarray, image_size, rng) -> np.ndarray:
    import cv2

    if image_size is None:
        return background
    height, width = background.shape[:2]
    side = min(height, width)
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    square = background[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > image_size else cv2.INTER_LINEAR
    return cv2.resize(square, (image_size, image_size), interpolation=interpolation)


def _prepare_crop(crop: np.ndarray, target_side: float, flip: bool, alpha_threshold: int):
    """Resize the RGBA crop so its longer side is ``target_side``, flip it, and trim it to its opaque extent."""
    import cv2

    height, width = crop.shape[:2]
    scale = target_side / max(height, width)
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    resized = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if flip:
        resized = resized[:, ::-1]
    opaque = resized[:, :, 3] >= alpha_threshold
    rows, columns = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    if len(rows) == 0:
        return None
    resized = resized[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1].copy()
    resized[resized[:, :, 3] < alpha_threshold, 3] = 0
    return resized


def compose_image(background: np.ndarray, crops_per_class, rng, settings: PasteSettings = PasteSettings()):
    """Paste random crops on a background.

    Args:
        background: ``(H, W, 3)`` uint8 RGB. crops_per_class: per class, a list of ``(h, w, 4)`` RGBA crops.
        rng: a ``numpy.random.Generator``.
    Returns:
        ``(image (H', W', 3) uint8, boxes (N, 4) [x_min, y_min, x_max, y_max] pixels, class_ids (N,))`` where each
        box is the extent of the pixels pasted for that object.
    """
    canvas = _fit_background(background, settings.image_size, rng).astype(np.float32)
    height, width = canvas.shape[:2]
    low, high = settings.objects_per_image
    wanted = int(rng.integers(low, high + 1))
    boxes, class_ids = [], []
    for _ in range(wanted * 6):
        if len(boxes) == wanted:
            break
        class_id = int(rng.integers(0, len(crops_per_class)))
        crop = crops_per_class[class_id][int(rng.integers(0, len(crops_per_class[class_id])))]
        side = rng.uniform(*settings.scale_range) * min(height, width)
        flip = settings.flip and bool(rng.integers(0, 2))
        pasted = _prepare_crop(crop, side, flip, settings.alpha_threshold)
        if pasted is None or pasted.shape[0] > height or pasted.shape[1] > width:
            continue
        top = int(rng.integers(0, height - pasted.shape[0] + 1))
        left = int(rng.integers(0, width - pasted.shape[1] + 1))
        box = np.array([left, top, left + pasted.shape[1], top + pasted.shape[0]], dtype=np.float64)
        if overlaps_too_much(box, boxes, max_iou=settings.max_overlap_iou):
            continue
        alpha = pasted[:, :, 3:4].astype(np.float32) / 255.0
        region = canvas[top:top + pasted.shape[0], left:left + pasted.shape[1]]
        region[:] = region * (1.0 - alpha) + pasted[:, :, :3].astype(np.float32) * alpha
        boxes.append(box)
        class_ids.append(class_id)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(class_ids, dtype=np.int64)


def generate_paste_dataset(objects_dir, backgrounds_dir, out_dir, *, num_images: int, seed: int = 0, num_val=None,
                           num_test: int = 0, settings: PasteSettings | None = None, image_format: str = "jpg",
                           overwrite: bool = False, progress: bool = False) -> Path:
    """Write a YOLO-format dataset of crops pasted on backgrounds; return its ``data.yaml``.

    Args:
        objects_dir: ``<class>/<crop>.png`` (class names = subfolder names, sorted).
        backgrounds_dir: background images.
        out_dir: output dataset folder. num_images: training images; num_val (default ``max(1, num_images // 4)``),
            num_test: validation and test images.
        seed: the dataset is a function of the seed and the input files. settings: :class:`PasteSettings`.
        image_format: "jpg" or "png". overwrite: replace existing images/ and labels/ in ``out_dir``.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    settings = settings or PasteSettings()
    num_val = max(1, num_images // 4) if num_val is None else int(num_val)
    names, crops = _load_objects(Path(objects_dir))
    background_paths = list_images(backgrounds_dir)
    if not background_paths:
        raise DataError(f"{backgrounds_dir}: no background image")
    out_dir = prepare_dataset_folder(out_dir, overwrite=overwrite)
    counts = {"train": num_images, "val": num_val, "test": num_test}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(counts.values()), desc="paste", unit="image")
    backgrounds = {}
    for split_index, (split, count) in enumerate(counts.items()):
        for image_index in range(count):
            rng = np.random.default_rng([seed, split_index, image_index])
            background_path = background_paths[int(rng.integers(0, len(background_paths)))]
            background = backgrounds.get(background_path)
            if background is None:
                background = read_image(background_path)
                if len(backgrounds) < 32:  # keep a few decoded backgrounds, not a whole photo folder
                    backgrounds[background_path] = background
            image, boxes, class_ids = compose_image(background, crops, rng, settings)
            stem = f"{split}_{image_index:05d}"  # unique across splits (flat formats such as VOC)
            write_image(out_dir / "images" / split / f"{stem}.{image_format}", image)
            write_yolo_labels(out_dir / "labels" / split / f"{stem}.txt", class_ids,
                              labels_from_pixels(boxes, (image.shape[1], image.shape[0])))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return write_dataset_yaml(out_dir / "data.yaml", names=names, train="images/train",
                              val="images/val" if num_val else None, test="images/test" if num_test else None)
