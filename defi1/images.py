"""Reading and writing images: the one place where files become arrays.

Every array that leaves this module is RGB, ``uint8``, shape ``(height, width, 3)``. OpenCV frames (BGR) are
converted by :func:`rgb_from_bgr` only, arrays of other layouts by :func:`as_rgb_uint8`, and network inputs are made
by :func:`pixels_to_unit` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from defi1.errors import ImageReadError
from defi1.files import AtomicOutput

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
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{path}: expected a uint8 image array, got dtype {array.dtype}")
    options = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    with AtomicOutput(path) as temporary:
        Image.fromarray(array).save(temporary, **options)
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


def as_rgb_uint8(image) -> np.ndarray:
    """An image array as RGB ``uint8`` ``(height, width, 3)``: grayscale ``(H, W)`` / ``(H, W, 1)`` is repeated on
    three channels, RGBA ``(H, W, 4)`` loses its alpha. Raises ``ValueError`` for other shapes or dtypes."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (values 0-255), got dtype {array.dtype}; read files with "
                         "defi1.images.read_image")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected an image of shape (height, width, 3) RGB, (height, width) grayscale or "
                         f"(height, width, 4) RGBA, got shape {array.shape}")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        return np.ascontiguousarray(array[:, :, :3])
    return array


#: The network input is the RGB image scaled to ``[0, 1]``: ``pixel / 255``.
PIXEL_SCALE = np.float32(1.0 / 255.0)


def pixels_to_unit(images, out=None) -> np.ndarray:
    """``uint8`` pixels (one image ``(H, W, 3)`` or a batch ``(N, H, W, 3)``) as ``float32`` in ``[0, 1]``, the input
    of every defi1 detector: one multiplication by ``float32(1 / 255)``, no float64 copy.

    ``out``: a ``float32`` array of the same shape to write into (e.g. one slot of a batch); returned.
    """
    return np.multiply(images, PIXEL_SCALE, out=out, dtype=np.float32)
