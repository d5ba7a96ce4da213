"""Object detection as classification, the course's first idea (*Détection d'objets comme une classification :
fenêtre glissante*): a classifier looks at many windows of the image, at several sizes, and says "object of class c"
or "background" for each; the windows it accepts, after non-maximum suppression, are the detections.

Notebook 2 trains a Part 1 classifier on crops of a detection dataset (:func:`crops_dataset`: each object's box,
plus background windows that overlap no object) and runs it here over a test image, to time it against one YOLO
forward pass on the same image: the course's *Problème : besoin d'appliquer des CNN à un grand nombre de parties de
l'image, grand nombre de tailles... Beaucoup de calcul !*, measured.

Boxes are ``(N, 4)`` ``[x_min, y_min, x_max, y_max]`` in pixels of the image; images are RGB ``uint8``
``(height, width, 3)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from defi1.boxes import box_iou, non_max_suppression
from defi1.detection.labels import load_dataset_yaml, load_ground_truth
from defi1.images import as_rgb_uint8, read_image

BACKGROUND = "background"


def window_boxes(image_size, *, window_sizes, stride_fraction: float = 0.5) -> np.ndarray:
    """Every square window of each side in ``window_sizes`` (pixels), moved by ``stride_fraction`` of its side.

    Args:
        image_size: ``(width, height)`` of the image.
        window_sizes: window sides in pixels; sides larger than the image are skipped.
        stride_fraction: the step between two windows, as a fraction of the window side (in ``(0, 1]``).
    Returns:
        ``(N, 4)`` float64 ``[x_min, y_min, x_max, y_max]`` pixels, the windows of the first size first, row by row;
        the last row and column are aligned on the image's edge, so that the whole image is covered.
    """
    if not 0.0 < float(stride_fraction) <= 1.0:
        raise ValueError(f"stride_fraction must be in (0, 1], got {stride_fraction}")
    width, height = (int(value) for value in image_size)
    boxes = []
    for size in window_sizes:
        size = int(size)
        if size <= 0:
            raise ValueError(f"window size must be positive, got {size}")
        if size > width or size > height:
            continue
        stride = max(1, int(round(size * float(stride_fraction))))
        xs = sorted(set(range(0, width - size + 1, stride)) | {width - size})
        ys = sorted(set(range(0, height - size + 1, stride)) | {height - size})
        boxes.extend((x, y, x + size, y + size) for y in ys for x in xs)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def crop_windows(image, boxes, crop_size: int) -> np.ndarray:
    """The windows ``boxes`` (``(N, 4)`` xyxy pixels) of an RGB image, each resized to ``crop_size`` square:
    ``(N, crop_size, crop_size, 3)`` uint8."""
    picture = Image.fromarray(as_rgb_uint8(image))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    crops = np.empty((len(boxes), crop_size, crop_size, 3), dtype=np.uint8)
    for index, box in enumerate(boxes):
        crop = picture.crop(tuple(int(round(value)) for value in box))
        crops[index] = np.asarray(crop.resize((crop_size, crop_size), Image.BILINEAR))
    return crops


def crops_dataset(data_yaml, split: str, *, crop_size: int = 32, backgrounds_per_image: int = 2,
                  max_background_iou: float = 0.1, seed: int = 0, max_images=None):
    """A classification dataset cut out of a detection dataset: the course's "Dog? Cat? Background?".

    Each object's box becomes one image of its class; ``backgrounds_per_image`` random square windows per image,
    sized like the objects and overlapping every object by an IoU under ``max_background_iou``, become images of the
    extra class :data:`BACKGROUND` (the last class id).

    Returns:
        ``(images (N, crop_size, crop_size, 3) uint8, labels (N,) int64, class_names)``; ``class_names`` is the
        dataset's names followed by ``"background"``.
    """
    config = load_dataset_yaml(data_yaml)
    background_id = len(config.names)
    random = np.random.default_rng(seed)
    images, labels = [], []
    samples = config.samples(split)[:max_images]
    for sample in samples:
        image = read_image(sample.image_path)
        height, width = image.shape[:2]
        boxes, class_ids = load_ground_truth(sample, (width, height), num_classes=config.num_classes)
        images.append(crop_windows(image, boxes, crop_size))
        labels.append(class_ids)
        sides = np.sqrt(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)) if len(boxes) else np.array([min(width,
                                                                                                     height) / 4])
        backgrounds = []
        for _ in range(20 * backgrounds_per_image):
            if len(backgrounds) == backgrounds_per_image:
                break
            side = float(np.clip(random.choice(sides) * random.uniform(0.8, 1.25), 4, min(width, height)))
            x, y = random.uniform(0, width - side), random.uniform(0, height - side)
            window = np.array([[x, y, x + side, y + side]])
            if not len(boxes) or box_iou(window, boxes).max() < max_background_iou:
                backgrounds.append(window[0])
        if backgrounds:
            images.append(crop_windows(image, np.array(backgrounds), crop_size))
            labels.append(np.full(len(backgrounds), background_id, dtype=np.int64))
    if not images:
        raise ValueError(f"{data_yaml}: the {split!r} split has no images to cut windows from")
    return (np.concatenate(images), np.concatenate(labels).astype(np.int64), list(config.names) + [BACKGROUND])


@dataclass
class SlidingWindowResult:
    """What :func:`sliding_window_detect` found in one image.

    ``boxes`` ``(K, 4)`` xyxy pixels, ``scores`` ``(K,)`` and ``class_ids`` ``(K,)``: the detections after NMS;
    ``window_boxes`` ``(N, 4)``, ``window_scores`` and ``window_class_ids`` ``(N,)``: every window the classifier
    looked at, its best class and that class's probability (before any threshold); ``num_windows`` = N;
    ``seconds``: the wall time of cropping, classifying and suppressing.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    window_boxes: np.ndarray
    window_scores: np.ndarray
    window_class_ids: np.ndarray
    seconds: float

    @property
    def num_windows(self) -> int:
        return len(self.window_boxes)


def sliding_window_detect(classifier, image, *, window_sizes, stride_fraction: float = 0.5,
                          background_class=None, score_threshold: float = 0.5, iou_threshold: float = 0.3,
                          batch_size: int = 256) -> SlidingWindowResult:
    """Run an image classifier over every window of :func:`window_boxes` and keep the confident non-background ones.

    Args:
        classifier: a Keras classifier taking ``(N, size, size, 3)`` images in ``[0, 255]`` (a Part 1 model:
            its input side gives the crop size) and returning class probabilities ``(N, C)``.
        image: RGB ``uint8`` ``(height, width, 3)``.
        window_sizes, stride_fraction: see :func:`window_boxes`.
        background_class: the class id meaning "no object" (never a detection), or ``None``.
        score_threshold: a window is a detection candidate when its best class's probability exceeds this.
        iou_threshold: per-class NMS threshold over the candidates.
        batch_size: windows per forward pass.
    """
    from keras import ops

    started = time.perf_counter()
    image = as_rgb_uint8(image)
    crop_size = int(classifier.input_shape[1])
    windows = window_boxes((image.shape[1], image.shape[0]), window_sizes=window_sizes,
                           stride_fraction=stride_fraction)
    probabilities = []
    for start in range(0, len(windows), batch_size):
        crops = crop_windows(image, windows[start:start + batch_size], crop_size).astype(np.float32)
        probabilities.append(np.asarray(ops.convert_to_numpy(classifier(crops, training=False))))
    probabilities = np.concatenate(probabilities) if probabilities else np.zeros((0, 1))
    class_ids = probabilities.argmax(axis=1).astype(np.int64)
    scores = probabilities[np.arange(len(class_ids)), class_ids]
    candidate = scores > score_threshold
    if background_class is not None:
        candidate &= class_ids != background_class
    candidate = np.flatnonzero(candidate)
    kept = candidate[non_max_suppression(windows[candidate], scores[candidate], iou_threshold,
                                         class_ids=class_ids[candidate])]
    return SlidingWindowResult(boxes=windows[kept], scores=scores[kept], class_ids=class_ids[kept],
                               window_boxes=windows, window_scores=scores, window_class_ids=class_ids,
                               seconds=time.perf_counter() - started)
