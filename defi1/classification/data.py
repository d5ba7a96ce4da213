"""Classification data: class-per-folder datasets, stratified train / validation / test splits, leakage checks.

A class-per-folder dataset is the layout ``keras.utils.image_dataset_from_directory`` reads::

    root/
      cat/  img001.jpg  img002.png ...
      dog/  ...

Class names are the sub-folder names in sorted order; label ``i`` is ``class_names[i]``. Arrays of images are
``uint8``, shape ``(num_images, height, width, channels)``; labels are integer class indices, shape ``(num_images,)``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defi1.errors import DataError, ImageReadError
from defi1.images import image_size, is_image_path

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class ImageFolderDataset:
    """The images of a class-per-folder dataset.

    ``paths[i]`` is an image of class ``class_names[labels[i]]``. ``skipped`` lists ``(path, reason)`` for every file
    that was left out while scanning (not an image, or an image that cannot be decoded).
    """

    root: Path
    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self.class_names, counts)}

    def skipped_summary(self) -> str:
        """One line per skipped file, or an empty string."""
        return "\n".join(f"skipped {path}: {reason}" for path, reason in self.skipped)


def scan_class_folders(root, *, check_images: bool = True, class_names=None) -> ImageFolderDataset:
    """Scan a class-per-folder dataset (see the module docstring).

    Files that are not images (by extension) are skipped and reported in ``skipped``; with ``check_images`` each
    image header is read, and files that cannot be decoded are skipped and reported too. ``class_names`` fixes the
    classes (and their order), e.g. to read a test folder with the classes of the training folder.

    Raises ``FileNotFoundError`` when ``root`` (or one of ``class_names``) is missing, :class:`DataError` when it has
    no class folder or a class folder holds no usable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected a folder with one sub-folder of images per class)")
    if class_names is None:
        class_names = sorted(entry.name for entry in root.iterdir()
                             if entry.is_dir() and not entry.name.startswith("."))
    if not class_names:
        raise DataError(f"{root}: no class folder found (expected one sub-folder of images per class)")
    paths, labels, skipped = [], [], []
    for label, class_name in enumerate(class_names):
        folder = root / class_name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such class folder (class {class_name!r} expected in {root})")
        found = 0
        for path in sorted(entry for entry in folder.rglob("*") if entry.is_file() and not entry.name.startswith(".")):
            if not is_image_path(path):
                skipped.append((path, "not an image file (unknown extension)"))
                continue
            if check_images:
                try:
                    image_size(path)
                except ImageReadError as error:
                    skipped.append((path, error.reason))
                    continue
            paths.append(path)
            labels.append(label)
            found += 1
        if found == 0:
            raise DataError(f"{folder}: class folder {class_name!r} holds no readable image "
                            f"(expected at least one image per class)")
    return ImageFolderDataset(root=root, paths=paths, labels=np.asarray(labels, dtype=np.int64),
                              class_names=list(class_names), skipped=skipped)


def load_image_arrays(paths, *, image_size=None, color_mode="rgb", progress: bool = False) -> np.ndarray:
    """Read images into one ``uint8`` array ``(num_images, height, width, channels)`` (the ``model.fit(x, y)`` case).

    ``image_size`` is ``(height, width)``; ``None`` keeps each file's size (then all files must share it).
    ``color_mode`` is ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel). Raises ``ImageReadError`` naming a file
    that cannot be decoded.
    """
    from defi1.classification.generator import load_image

    paths = list(paths)
    iterator = paths
    if progress:
        from tqdm import tqdm

        iterator = tqdm(paths, desc="reading images", unit="image")
    images = [load_image(path, image_size=image_size, color_mode=color_mode) for path in iterator]
    if not images:
        channels = 1 if color_mode == "grayscale" else 3
        height, width = image_size if image_size is not None else (0, 0)
        return np.zeros((0, height, width, channels), dtype=np.uint8)
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(f"images have different sizes {sorted(shapes)}; pass image_size to resize them")
    return np.stack(images)


@dataclass
class Split:
    """A train / validation / test split: each part holds items (paths or array rows) and integer labels."""

    train: tuple
    val: tuple
    test: tuple

    def parts(self) -> dict:
        return {"train": self.train, "val": self.val, "test": self.test}

    def sizes(self) -> dict[str, int]:
        return {name: len(part[1]) for name, part in self.parts().items()}


def split_dataset(items, labels, *, test_size=0.25, val_size=0.2, seed=42, class_names=None) -> Split:
    """Stratified, deterministic train / validation / test split.

    As in the course, ``test_size`` of the data is held out first
    (``train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)``), then ``val_size`` of what remains is
    held out for validation (what ``model.fit(..., validation_split=0.2)`` does, but stratified and shuffled).
    ``items`` are paths or an array (rows are samples); ``labels`` integer class indices ``(num_items,)``.
    ``test_size`` or ``val_size`` may be 0 to skip that part.

    Raises :class:`DataError` naming the class when a class has too few items to appear in every part.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    array_items = isinstance(items, np.ndarray)
    items = items if array_items else np.asarray([str(item) for item in items], dtype=object)
    if len(items) != len(labels):
        raise DataError(f"{len(items)} items but {len(labels)} labels (expected one label per item)")
    for name, size in (("test_size", test_size), ("val_size", val_size)):
        if not 0 <= size < 1:
            raise ValueError(f"{name}={size}: expected a fraction in [0, 1)")
    parts_needed = 1 + (test_size > 0) + (val_size > 0)
    counts = Counter(labels.tolist())
    for label, count in sorted(counts.items()):
        if count < parts_needed:
            name = class_names[label] if class_names is not None else label
            raise DataError(f"class {name!r} has {count} item(s); a stratified split into {parts_needed} parts needs "
                            f"at least {parts_needed} per class (add images or merge the class)")
    indices = np.arange(len(labels))
    try:
        if test_size > 0:
            train_index, test_index = train_test_split(indices, test_size=test_size, random_state=seed,
                                                       stratify=labels)
        else:
            train_index, test_index = indices, indices[:0]
        if val_size > 0:
            train_index, val_index = train_test_split(train_index, test_size=val_size, random_state=seed,
                                                      stratify=labels[train_index])
        else:
            val_index = indices[:0]
    except ValueError as error:
        raise DataError(f"cannot split {len(labels)} items of {len(counts)} classes with test_size={test_size}, "
                        f"val_size={val_size}: {error}") from error

    def take(index):
        part_items = items[index]
        if not array_items:
            part_items = [Path(item) for item in part_items]
        return part_items, labels[index]

    return Split(train=take(train_index), val=take(val_index), test=take(test_index))


def content_hash(item) -> str:
    """SHA-1 of a file's bytes (for a path) or of an array's bytes (for an image array)."""
    if isinstance(item, np.ndarray):
        return hashlib.sha1(np.ascontiguousarray(item).tobytes()).hexdigest()
    digest = hashlib.sha1()
    with open(item, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_fingerprint(paths, labels, *, class_names, root=None) -> str:
    """Fingerprint (SHA-256 hex, :func:`defi1.fingerprint.fingerprint_entries`) of one split of a class-per-folder
    dataset: each image's path (relative to ``root``; without it, ``<class folder>/<file name>``) with its class
    name. Records which images a metric was measured on; the image bytes are not read."""
    from defi1.fingerprint import fingerprint_entries

    entries = []
    for path, label in zip(paths, labels):
        path = Path(path)
        name = path.relative_to(root).as_posix() if root is not None else f"{path.parent.name}/{path.name}"
        entries.append((name, str(class_names[int(label)])))
    return fingerprint_entries(entries)


@dataclass
class Leak:
    """The same content found in several parts of a split.

    ``locations`` maps a part name to its items with that content (paths, or row indices for arrays).
    """

    content_hash: str
    locations: dict

    def __str__(self):
        where = "; ".join(f"{part}: {', '.join(map(str, items))}" for part, items in self.locations.items())
        return f"same image in {' and '.join(self.locations)} ({where})"


def find_leaks(split: Split) -> list[Leak]:
    """Images present (by content hash) in more than one part of ``split``: test results are then optimistic.

    Items that are paths are hashed by file bytes, array rows by pixel bytes (array leaks name row indices).
    """
    seen: dict[str, dict] = {}
    for part_name, (items, _labels) in split.parts().items():
        for index, item in enumerate(items):
            key = content_hash(item)
            name = index if isinstance(item, np.ndarray) else item
            seen.setdefault(key, {}).setdefault(part_name, []).append(name)
    return [Leak(key, locations) for key, locations in seen.items() if len(locations) > 1]


def write_split_folders(split: Split, class_names, out_dir, *, link: bool = False) -> dict[str, int]:
    """Copy (or hard-link) the files of a path split into ``out_dir/{train,val,test}/<class>/``.

    Refuses to write into a non-empty ``out_dir`` (nothing is overwritten). Also writes ``out_dir/split.csv``
    (``part,class,path``). Returns the number of files per part.
    """
    from defi1.files import atomic_write_text, ensure_output_dir

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: output folder is not empty (choose a new folder; nothing was written)")
    ensure_output_dir(out_dir)
    rows = ["part,class,path"]
    written = {}
    for part_name, (paths, labels) in split.parts().items():
        written[part_name] = 0
        for path, label in zip(paths, labels):
            class_name = class_names[int(label)]
            destination = out_dir / part_name / class_name / Path(path).name
            if destination.exists():
                destination = destination.with_name(f"{Path(path).stem}_{content_hash(path)[:8]}{Path(path).suffix}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    destination.hardlink_to(path)
                except OSError:
                    shutil.copy2(path, destination)
            else:
                shutil.copy2(path, destination)
            rows.append(f"{part_name},{class_name},{destination.relative_to(out_dir).as_posix()}")
            written[part_name] += 1
    atomic_write_text(out_dir / "split.csv", "\n".join(rows) + "\n")
    return written

