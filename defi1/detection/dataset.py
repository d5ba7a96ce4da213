"""The detection input pipeline: a path-based ``keras.utils.PyDataset`` yielding letterboxed, augmented images and
YOLO targets.

For each sample of a batch: read the image lazily (:func:`defi1.images.read_image`), read its YOLO label file,
letterbox both to the network input (:func:`defi1.boxes.letterbox_image`, the project's one letterbox), augment with
box-aware transforms (:mod:`defi1.detection.augment`) when training, scale to ``[0, 1]`` as the detector does
(:func:`defi1.images.pixels_to_unit`), then encode the batch's boxes into one packed target array per head
(:func:`defi1.yolo.targets.encode_targets`).

A batch is ``(images, targets)``: ``images`` ``float32`` ``(batch, side, side, 3)`` RGB in ``[0, 1]``; ``targets`` a
tuple with one ``float32`` array per head, ``(batch, grid_h * grid_w * A + max_boxes, 5 + C)`` (layout in
:mod:`defi1.yolo.targets`). With multi-scale training every batch draws its own side in ``multi_scale_sizes``
(320 to 608 in steps of 32 by default); all images of a batch share it.

Randomness (shuffling, augmentation, multi-scale sides) is drawn from ``seed``, the epoch and the sample or batch
index, so a batch is the same whichever worker thread or process builds it.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from defi1.boxes import letterbox_image
from defi1.detection.augment import NO_AUGMENTATION, AugmentationSettings, augment_sample
from defi1.errors import DataError
from defi1.images import pixels_to_unit, read_image
from defi1.yolo.heads import head_spec
from defi1.yolo.targets import encode_targets

MULTI_SCALE_SIZES = tuple(range(320, 609, 32))


def _check_side(side, stride=32):
    side = int(side)
    if side <= 0 or side % stride:
        raise ValueError(f"input size {side} is not a positive multiple of {stride}")
    return side


def split_images_dir(data_yaml, split) -> tuple[object, Path]:
    """``(DatasetConfig, images folder)`` of ``split`` (``train``, ``val`` or ``test``) of a dataset YAML.

    Raises ``ConfigError`` naming the YAML when the split is not defined in it.
    """
    from defi1.detection.labels import load_dataset_yaml

    config = load_dataset_yaml(data_yaml)
    return config, config.split_dir(split)


class DetectionDataset(keras.utils.PyDataset):
    """Batches of letterboxed images and packed YOLO targets for ``model.fit``.

    Args:
        samples: list of :class:`defi1.detection.labels.DetectionSample` (``image_path``, ``label_path``).
        heads: the model's heads (:func:`defi1.yolo.heads.head_specs` or YoloHead layers), in output order.
        input_size: square network input side, a multiple of 32 (used for every batch unless ``multi_scale``).
        batch_size: images per batch; the last batch may be smaller.
        augment: apply the random augmentation (training); ``False`` for validation.
        augmentation: :class:`~defi1.detection.augment.AugmentationSettings` (defaults when ``None``).
        multi_scale: draw a side per batch in ``multi_scale_sizes``.
        shuffle: reshuffle the samples every epoch (default: when augmenting).
        repeat: passes over the samples per epoch (small datasets: fewer, longer epochs).
        max_boxes: ground-truth rows per head (see :func:`~defi1.yolo.targets.encode_targets`).
        assign_threshold: shape IoU above which more anchors than the best one are responsible for a box
            (darknet's ``iou_thresh``; 1.0: the best anchor only, as YOLOv3).
        seed: seed of every random draw. epoch: the epoch to start at (for resumed training).
        workers, use_multiprocessing, max_queue_size: passed to ``keras.utils.PyDataset``.
    """

    def __init__(self, samples, *, heads, input_size=416, batch_size=8, augment=False, augmentation=None,
                 multi_scale=False, multi_scale_sizes=MULTI_SCALE_SIZES, shuffle=None, repeat=1, max_boxes=100,
                 assign_threshold=1.0, seed=0, epoch=0, workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.samples = list(samples)
        if not self.samples:
            raise DataError("the detection dataset has no samples (expected images with YOLO label files)")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.heads = [head_spec(head) for head in heads]
        self.num_classes = self.heads[0].num_classes
        self.input_size = _check_side(input_size)
        self.batch_size = int(batch_size)
        self.augment = bool(augment)
        self.augmentation = augmentation if augmentation is not None else AugmentationSettings()
        self.multi_scale = bool(multi_scale)
        self.multi_scale_sizes = tuple(_check_side(side) for side in multi_scale_sizes)
        self.shuffle = self.augment if shuffle is None else bool(shuffle)
        if int(repeat) < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        self.repeat = int(repeat)
        if self.multi_scale and len(set(self.multi_scale_sizes)) > 1 and len(self) < 2:
            raise DataError(f"multi-scale training needs at least 2 batches per epoch, got {len(self)} "
                            f"({len(self.samples)} images, batch size {self.batch_size}): lower the batch size")
        self.max_boxes = int(max_boxes)
        self.assign_threshold = float(assign_threshold)
        self.seed = int(seed)
        self.epoch = int(epoch)

    @classmethod
    def from_yaml(cls, data_yaml, split, *, heads, **options):
        """The dataset of one split (``train``, ``val``, ``test``) of a dataset YAML, or of any dataset the one loader
        reads (:func:`defi1.detection.formats.load_dataset`); ``options`` as the class."""
        from defi1.detection.formats.loader import load_dataset

        return cls(load_dataset(data_yaml).require_samples(split), heads=heads, **options)

    def __len__(self):
        return math.ceil(len(self.samples) * self.repeat / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1

    def order(self) -> np.ndarray:
        """Sample indices in this epoch's order (each sample ``repeat`` times)."""
        positions = np.tile(np.arange(len(self.samples)), self.repeat)
        if not self.shuffle:
            return positions
        return np.random.default_rng([self.seed, self.epoch]).permutation(positions)

    def batch_side(self, index) -> int:
        """The input side of batch ``index`` in the current epoch.

        With multi-scale training, batches 0 and 1 of every epoch always get two different sides: Keras's TensorFlow
        backend infers the shapes of all batches from the first two, and only two different sides there make the
        height and width dynamic (the same sides would fix them, and the first batch of another side would fail).
        """
        if not self.multi_scale:
            return self.input_size
        sizes = self.multi_scale_sizes
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 1])
        if int(index) == 1 and len(set(sizes)) > 1:
            first = self.batch_side(0)
            return int(rng.choice([side for side in sizes if side != first]))
        return int(rng.choice(sizes))

    def load_annotations(self, position):
        """Ground truth of sample ``position`` in its own image: ``(image (H, W, 3) uint8, boxes (N, 4) xyxy pixels,
        class_ids (N,) int64)``. Raises ``DataError`` naming the label file for out-of-range class ids."""
        from defi1.detection.labels import load_ground_truth

        sample = self.samples[position]
        image = read_image(sample.image_path)
        height, width = image.shape[:2]
        boxes, class_ids = load_ground_truth(sample, (width, height), num_classes=self.num_classes)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        wrong = class_ids[(class_ids < 0) | (class_ids >= self.num_classes)]
        if len(wrong):
            raise DataError(f"{sample.label_path}: class id {int(wrong[0])} out of range (expected 0 to "
                            f"{self.num_classes - 1} for a {self.num_classes}-class model)")
        return image, boxes, class_ids

    def load_sample(self, position, side=None, *, augment=None, draw=None):
        """One sample at the network input: ``(image (side, side, 3) uint8, boxes (K, 4) xyxy network pixels,
        class_ids (K,))``, letterboxed and (when ``augment``) augmented. ``draw`` (default ``position``) seeds the
        augmentation with the epoch, so repeated samples get different draws."""
        draw = position if draw is None else draw
        side = self.input_size if side is None else side
        augment = self.augment if augment is None else augment
        image, boxes, class_ids = self.load_annotations(position)
        canvas, geometry = letterbox_image(image, side, side)
        boxes = geometry.to_network(boxes)
        rng = np.random.default_rng([self.seed, self.epoch, int(draw), 0])
        settings = self.augmentation if augment else NO_AUGMENTATION
        return augment_sample(canvas, boxes, class_ids, rng=rng, settings=settings)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (the dataset has {len(self)} batches)")
        side = self.batch_side(index)
        first = index * self.batch_size
        positions = self.order()[first:first + self.batch_size]
        images = np.empty((len(positions), side, side, 3), dtype=np.float32)
        boxes_list, class_ids_list = [], []
        for slot, position in enumerate(positions):
            image, boxes, class_ids = self.load_sample(position, side, draw=first + slot)
            pixels_to_unit(image, out=images[slot])
            boxes_list.append(boxes)
            class_ids_list.append(class_ids)
        targets = encode_targets(boxes_list, class_ids_list, input_size=side, heads=self.heads,
                                 max_boxes=self.max_boxes, assign_threshold=self.assign_threshold)
        return images, tuple(targets)
