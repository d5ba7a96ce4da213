"""A path-based batch loader: the Keras 3 form of the course's ``generate_from_paths_and_labels``.

:class:`ImagePathDataset` is a ``keras.utils.PyDataset``: ``model.fit(ImagePathDataset(...), validation_data=...)``
replaces ``fit_generator``. It reads images lazily from their paths, resizes them, applies the backbone's
``preprocess_input`` (see :data:`defi1.classification.catalog.BACKBONES`), reshuffles every epoch, optionally
augments, and works with ``workers`` / ``use_multiprocessing``. The last batch holds the remaining images (it may be
smaller than ``batch_size``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

import keras

from defi1.images import read_image, resize_image


def load_image(path, *, image_size=None, color_mode="rgb") -> np.ndarray:
    """Read one image as ``uint8`` ``(height, width, channels)``, resized to ``image_size`` = ``(height, width)``.

    ``color_mode`` ``"rgb"`` gives 3 channels, ``"grayscale"`` 1 channel. Resizing uses area averaging when a side
    shrinks by 2 or more and bilinear interpolation otherwise. Errors name the file
    (:func:`defi1.images.read_image`).
    """
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"color_mode={color_mode!r}: expected 'rgb' or 'grayscale'")
    image = read_image(path)
    if image_size is not None:
        height, width = int(image_size[0]), int(image_size[1])
        image = resize_image(image, width, height)
    if color_mode == "grayscale":
        image = np.asarray(Image.fromarray(image).convert("L"))[:, :, None]
    return image


def augment_image(image: np.ndarray, rng: np.random.Generator, *, max_shift=0.1, horizontal_flip=False,
                  brightness=0.1) -> np.ndarray:
    """Random augmentation of one ``float32`` image ``(height, width, channels)`` in pixel values [0, 255].

    A random translation of up to ``max_shift`` of each side (borders filled by edge replication), an optional
    horizontal flip (off by default: it changes the meaning of digits and letters) and a brightness change of up to
    ``brightness`` (relative). Returns a new array.
    """
    height, width = image.shape[:2]
    shift_y = int(rng.integers(-int(max_shift * height), int(max_shift * height) + 1))
    shift_x = int(rng.integers(-int(max_shift * width), int(max_shift * width) + 1))
    padded = np.pad(image, ((abs(shift_y),) * 2, (abs(shift_x),) * 2, (0, 0)), mode="edge")
    top, left = abs(shift_y) - shift_y, abs(shift_x) - shift_x
    image = padded[top:top + height, left:left + width]
    if horizontal_flip and rng.random() < 0.5:
        image = image[:, ::-1]
    if brightness:
        image = image * float(rng.uniform(1 - brightness, 1 + brightness))
    return np.clip(image, 0, 255).astype(np.float32)


class ImagePathDataset(keras.utils.PyDataset):
    """Batches ``(images, labels)`` read from image paths.

    Args:
        paths: image files, one per sample.
        labels: integer class indices ``(num_samples,)``; ``None`` for prediction (batches are images only).
        batch_size: images per batch; the last batch holds the rest.
        image_size: ``(height, width)`` of the network input.
        preprocessing: the name of a backbone in :data:`defi1.classification.catalog.BACKBONES` (its
            ``preprocess_input`` is applied) or ``"none"`` (``float32`` pixel values in [0, 255]).
        color_mode: ``"rgb"`` or ``"grayscale"``.
        shuffle: reshuffle the order at every epoch (``seed`` + epoch number: reproducible).
        augment: apply :func:`augment_image` to each image (training only).
        workers, use_multiprocessing, max_queue_size: passed to ``keras.utils.PyDataset``.

    Batches: images ``float32`` ``(batch, height, width, channels)``, labels ``int32`` ``(batch,)``.
    """

    def __init__(self, paths, labels=None, *, batch_size=32, image_size=(224, 224), preprocessing="none",
                 color_mode="rgb", shuffle=False, augment=False, horizontal_flip=False, seed=0, workers=1,
                 use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        from defi1.classification.models import preprocess_function

        self.paths = [Path(path) for path in paths]
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int32)
        if self.labels is not None and len(self.labels) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels (expected one label per path)")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive integer")
        self.batch_size = int(batch_size)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.preprocessing = preprocessing
        self.preprocess = preprocess_function(preprocessing)
        self.color_mode = color_mode
        self.shuffle = shuffle
        self.augment = augment
        self.horizontal_flip = horizontal_flip
        self.seed = seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.paths))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths))

    def __len__(self):
        return math.ceil(len(self.paths) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (the dataset has {len(self)} batches)")
        batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        channels = 1 if self.color_mode == "grayscale" else 3
        images = np.empty((len(batch), *self.image_size, channels), dtype=np.float32)
        for row, sample in enumerate(batch):
            images[row] = load_image(self.paths[sample], image_size=self.image_size, color_mode=self.color_mode)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            images = np.stack([augment_image(image, rng, horizontal_flip=self.horizontal_flip) for image in images])
        images = self.preprocess(images)
        if self.labels is None:
            return images
        return images, self.labels[batch]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()
