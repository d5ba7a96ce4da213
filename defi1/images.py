"""Reading and writing images: the one place where files become arrays.

Every array that leaves this module is RGB, ``uint8``, shape ``(height, width, 3)``. OpenCV frames (BGR) are
converted by :func:`rgb_from_bgr` only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from defi1.errors import ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_image_path(path) -> bool:
    """True when the file name ends with a known image extension (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name. Raises ``FileNotFoundError`` if it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected a folder of images)")
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_path(path))


def read_image(path) -> np.ndarray:
    """Read an image file as RGB ``uint8`` of shape ``(height, width, 3)``.

    Grayscale, palette, RGBA and 16-bit images are converted to RGB (alpha is dropped); the EXIF orientation is
    applied. Raises :class:`FileNotFoundError` when the file is missing and :class:`defi1.errors.ImageReadError`
    (naming the file) when it cannot be decoded.
    """
    return _open_image(path, _rgb_array)


def read_image_with_alpha(path) -> np.ndarray:
    """Read an image file as RGBA ``uint8`` of shape ``(height, width, 4)`` (for object crops pasted with their
    transparency). Images without alpha get an opaque alpha channel (255). Errors as :func:`read_image`."""
    return _open_image(path, lambda image: np.asarray(image.convert("RGBA"), dtype=np.uint8).copy())


def image_size(path) -> tuple[int, int]:
    """``(width, height)`` of an image file without decoding its pixels. Errors as :func:`read_image`."""
    return _open_image(path, lambda image: image.size, decode_pixels=False)


def _rgb_array(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / max(float(array.max()), 1.0)
        image = Image.fromarray((array * scale).astype(np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _open_image(path, convert, decode_pixels=True):
    """Open ``path`` with Pillow, apply the EXIF orientation and return ``convert(image)``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            if decode_pixels:
                image.load()
            return convert(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(path, f"cannot decode image ({error.__class__.__name__}: {error})") from error


def write_image(path, image: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB ``uint8`` array ``(height, width, 3)`` (or grayscale ``(height, width)``) to ``path``.

    The format follows the extension. The file is written atomically (a temporary file then renamed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{path}: expected a uint8 image array, got dtype {array.dtype}")
    temporary = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    options = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(array).save(temporary, **options)
    os.replace(temporary, path)
    return path


def rgb_from_bgr(frame: np.ndarray) -> np.ndarray:
    """Convert an OpenCV BGR frame ``(height, width, 3)`` to RGB (also BGRA and grayscale frames)."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame[:, :, ::-1])


def bgr_from_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an RGB image ``(height, width, 3)`` to OpenCV's BGR order."""
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
