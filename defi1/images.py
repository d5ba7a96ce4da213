"""Reading and writing images: the one place where files become arrays.

Every array that leaves this module is RGB, ``uint8``, shape ``(height, width, 3)``. OpenCV frames (BGR) are
converted by :func:`rgb_from_bgr` only, arrays of other layouts by :func:`as_rgb_uint8`, images as users hold them
(paths, PIL images, arrays) by :func:`as_rgb_image`, and network inputs are made by :func:`pixels_to_unit` only.
"""

from __future__ import annotations

import os
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
    """``(width, height)`` of an image file as displayed (the EXIF orientation applied), read from its header
    without decoding its pixels. Errors as :func:`read_image`."""
    return _open_image(path, _displayed_size, decode_pixels=False)


def verify_image(path, *, decode_pixels: bool = True) -> tuple[int, int]:
    """``(width, height)`` of an image file once checked readable, as :func:`image_size` gives it.

    ``decode_pixels=True`` decodes every pixel (finds any damage). ``False`` reads the header and, for JPEG and PNG,
    the end of the file: a file that does not end with its format's end marker (JPEG's ``FF D9``, PNG's ``IEND``
    chunk: a truncated download or copy) is then decoded to decide, so files with data appended after the marker
    are not misreported. Damage inside the compressed data of a complete file needs ``decode_pixels``.
    Errors as :func:`read_image`.
    """
    if decode_pixels or not _ends_with_end_marker(path):
        return _open_image(path, lambda image: image.size)  # the size after the EXIF orientation is applied
    return image_size(path)


_END_MARKERS = {(".jpg", ".jpeg"): b"\xff\xd9", (".png",): b"IEND\xaeB`\x82"}


def _ends_with_end_marker(path) -> bool:
    """True when ``path`` is a JPEG or PNG whose last bytes (trailing zero padding aside) are its end marker, or a
    file of another format (which has no such marker to check)."""
    path = Path(path)
    suffix = path.suffix.lower()
    marker = next((marker for suffixes, marker in _END_MARKERS.items() if suffix in suffixes), None)
    if marker is None:
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 64))
            tail = handle.read()
    except OSError:
        return False
    return tail.rstrip(b"\x00").endswith(marker)


#: EXIF orientations (5 to 8) whose display swaps width and height.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def _displayed_size(image) -> tuple[int, int]:
    """The size of an opened image as displayed, from the EXIF orientation tag (the pixels are not decoded)."""
    width, height = image.size
    orientation = image.getexif().get(0x0112)
    return (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)


def _rgb_array(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / max(float(array.max()), 1.0)
        image = Image.fromarray((array * scale).astype(np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _open_image(path, convert, decode_pixels=True):
    """Open ``path`` with Pillow and return ``convert(image)``: the image with its EXIF orientation applied when
    ``decode_pixels``, the opened file itself (header only, nothing decoded) otherwise. Errors name the file: an
    unreadable file, and one whose header declares more pixels than Pillow's decompression-bomb limit (a damaged
    header or a malicious file: decoding it would exhaust the memory)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            if not decode_pixels:
                return convert(image)
            image.load()
            return convert(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"image too large to read: {error.args[0] if error.args else error} (a damaged "
                                   "header, or a file made to exhaust memory)") from error
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
    """Convert an OpenCV BGR frame ``(height, width, 3)`` to RGB (also BGRA and grayscale frames); a new array."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return _swap_red_blue(frame)


def bgr_from_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an RGB image ``(height, width, 3)`` to OpenCV's BGR order; a new array."""
    return _swap_red_blue(np.asarray(image))


def _swap_red_blue(image: np.ndarray) -> np.ndarray:
    """Channels 0 and 2 exchanged, as a new contiguous array: OpenCV's ``cvtColor`` for the types it takes (30 times
    faster than NumPy's reversed-stride copy on a 640 × 480 frame: it runs on every frame of a stream)."""
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype in (np.uint8, np.uint16, np.float32):
        import cv2

        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, :, ::-1])


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


def as_rgb_image(image, *, bgr: bool = False) -> np.ndarray:
    """One image as users hold it, as RGB ``uint8`` ``(height, width, 3)``.

    ``image``: a file path (:func:`read_image`: EXIF orientation applied), a ``PIL.Image`` (its mode converted to
    RGB, its pixels as they are), or a numpy array (:func:`as_rgb_uint8`: RGB, grayscale or RGBA ``uint8``). With
    ``bgr=True`` an array is an OpenCV frame (BGR, BGRA or grayscale) and is converted by :func:`rgb_from_bgr`;
    files and PIL images are never BGR. Raises ``TypeError`` for anything else and the errors of those functions
    (naming the file) for images that cannot be used.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _rgb_array(image)
    if isinstance(image, np.ndarray):
        return as_rgb_uint8(rgb_from_bgr(image) if bgr and image.ndim in (2, 3) else image)
    raise TypeError(f"expected an image file path, a PIL.Image or a numpy array (height, width, 3), got "
                    f"{type(image).__name__}")


#: The network input is the RGB image scaled to ``[0, 1]``: ``pixel / 255``.
PIXEL_SCALE = np.float32(1.0 / 255.0)


def pixels_to_unit(images, out=None) -> np.ndarray:
    """``uint8`` pixels (one image ``(H, W, 3)`` or a batch ``(N, H, W, 3)``) as ``float32`` in ``[0, 1]``, the input
    of every defi1 detector: ``float32(pixel) * float32(1 / 255)``, no float64 copy.

    ``out``: a ``float32`` array of the same shape to write into (e.g. one slot of a batch); returned.
    """
    # A cast, then an in-place float32 multiplication: the same values as np.multiply(images, PIXEL_SCALE,
    # dtype=float32) at a third of its cost (NumPy's mixed uint8 * float32 loop casts element by element).
    if out is None:
        out = np.asarray(images).astype(np.float32)
    else:
        out[...] = images
    out *= PIXEL_SCALE
    return out


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (``(H, W, C)`` or ``(H, W)``) resized to ``width`` × ``height`` pixels with OpenCV, the one resizing
    rule of the package: area averaging when a side shrinks by a factor 2 or more (no aliasing; exact for integer
    factors), bilinear interpolation otherwise (a 2 × 2 neighbourhood covers each output pixel's footprint there,
    and it costs a quarter of area averaging: what real time needs). Returns the image itself when the size is
    already right."""
    import cv2

    source_height, source_width = image.shape[:2]
    if (source_width, source_height) == (width, height):
        return image
    strong_reduction = source_width >= 2 * width or source_height >= 2 * height
    return cv2.resize(image, (int(width), int(height)),
                      interpolation=cv2.INTER_AREA if strong_reduction else cv2.INTER_LINEAR)
