"""Ready-made classification datasets, written as class-per-folder image trees.

* Built in, no internet: scikit-learn's handwritten digits (1797 images of 8×8 pixels, 10 classes), so that the
  path-based pipeline runs on real image files offline.
* Online: MNIST, Fashion-MNIST and CIFAR-10 from ``keras.datasets`` (the course's MNIST example). Keras caches the
  download in ``~/.keras/datasets``; offline, :func:`download_keras_dataset` raises :class:`DataError` saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defi1.errors import DataError
from defi1.files import ensure_output_dir
from defi1.images import write_image

DIGIT_NAMES = [str(digit) for digit in range(10)]

KERAS_DATASETS = {
    "mnist": DIGIT_NAMES,
    "fashion_mnist": ["t_shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle_boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def load_digits_arrays():
    """scikit-learn's digits as ``(images uint8 (1797, 8, 8) in [0, 255], labels int64 (1797,))``.

    The original grey levels 0..16 are scaled to 0..255 (``round(value * 255 / 16)``).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * 255.0 / 16.0).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def write_digits_tree(out_dir, *, scale=4, max_per_class=None, progress=False) -> Path:
    """Write scikit-learn's digits as PNG files ``out_dir/<digit>/digit_<index>.png`` and return ``out_dir``.

    Each 8×8 image is enlarged ``scale`` times by pixel repetition (32×32 by default: shrinking it back with area
    averaging gives the original pixels exactly). Grayscale PNG. Refuses a non-empty ``out_dir`` that is not already
    a digits tree; an existing complete tree is left as it is.
    """
    out_dir = Path(out_dir)
    images, labels = load_digits_arrays()
    selected = _limit_per_class(labels, max_per_class)
    expected = {DIGIT_NAMES[label] for label in labels[selected]}
    if out_dir.is_dir() and any(out_dir.iterdir()):
        existing = {entry.name for entry in out_dir.iterdir() if entry.is_dir()}
        counts = {name: len(list((out_dir / name).glob("digit_*.png"))) for name in existing & expected}
        wanted = {DIGIT_NAMES[label]: int(count) for label, count in
                  zip(*np.unique(labels[selected], return_counts=True))}
        if existing == expected and counts == wanted:
            return out_dir
        raise FileExistsError(f"{out_dir}: folder is not empty and is not a digits tree of the same size "
                              f"(choose an empty folder; nothing was written)")
    ensure_output_dir(out_dir)
    iterator = selected
    if progress:
        from tqdm import tqdm

        iterator = tqdm(selected, desc="writing digits", unit="image")
    for index in iterator:
        image = np.kron(images[index], np.ones((scale, scale), dtype=np.uint8))
        write_image(out_dir / DIGIT_NAMES[labels[index]] / f"digit_{index:04d}.png", image)
    return out_dir


def _limit_per_class(labels, max_per_class):
    indices = np.arange(len(labels))
    if max_per_class is None:
        return indices
    return np.concatenate([indices[labels == label][:max_per_class] for label in np.unique(labels)])


def _keras_loader(name):
    import keras

    return getattr(keras.datasets, name).load_data


def download_keras_dataset(name, out_dir, *, max_per_class=None, progress=False) -> Path:
    """Download ``mnist``, ``fashion_mnist`` or ``cifar10`` with ``keras.datasets`` and write it as image trees
    ``out_dir/train/<class>/<name>_<index>.png`` and ``out_dir/test/<class>/...`` (the datasets' own test split).

    ``max_per_class`` keeps only the first images of each class (a smaller dataset for quick experiments). Raises
    :class:`DataError` when the download fails (offline), ``FileExistsError`` when ``out_dir`` is not empty.
    """
    if name not in KERAS_DATASETS:
        raise ValueError(f"dataset {name!r}: expected one of {', '.join(KERAS_DATASETS)}")
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: output folder is not empty (choose a new folder; nothing was written)")
    ensure_output_dir(out_dir)
    try:
        (train_images, train_labels), (test_images, test_labels) = _keras_loader(name)()
    except Exception as error:  # urllib, HTTP and file errors all mean the same thing here
        raise DataError(f"cannot download {name} with keras.datasets ({error.__class__.__name__}: {error}); this "
                        f"needs an internet connection the first time (then it is cached in ~/.keras/datasets). "
                        f"Offline, use the built-in digits: defi1 data digits OUT_DIR") from error
    class_names = KERAS_DATASETS[name]
    for part, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        images = np.asarray(images, dtype=np.uint8)
        selected = _limit_per_class(labels, max_per_class)
        iterator = selected
        if progress:
            from tqdm import tqdm

            iterator = tqdm(selected, desc=f"writing {name} {part}", unit="image")
        for index in iterator:
            write_image(out_dir / part / class_names[labels[index]] / f"{name}_{index:05d}.png", images[index])
    return out_dir
