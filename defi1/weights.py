"""Darknet's released pretrained weights: where they come from, their known checksums, and a verified download.

:func:`download_darknet_weights` fetches a file with ``keras.utils.get_file`` (a progress bar, a cache in
``~/.keras/models``, no second download), then checks its checksum: a truncated or substituted file is an error, not
a silently wrong model. Only online use needs this module: the tests, CI and ``defi1 demo`` never download.

Use the weights with :func:`defi1.yolo.darknet.load_darknet` (COCO detections) or as the starting point of training
(``defi1 detect train --weights yolov3-tiny.weights``: every layer but the heads, the backbone frozen in stage 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from defi1.errors import Defi1Error


@dataclass(frozen=True)
class DarknetWeightsFile:
    """One released darknet file.

    Attributes:
        file_name: the name darknet gives it.
        url: where darknet's author publishes it.
        algorithm, digest: its checksum (``hashlib`` algorithm name and hexadecimal digest).
        size: its size in bytes (``None`` when not recorded).
        description: what it is.
    """

    file_name: str
    url: str
    algorithm: str
    digest: str
    size: int | None
    description: str


#: The released files, by the model name ``defi1 detect train --model`` uses (``darknet53`` for the backbone).
DARKNET_WEIGHTS = {
    "yolov3-tiny": DarknetWeightsFile(
        "yolov3-tiny.weights", "https://pjreddie.com/media/files/yolov3-tiny.weights", "md5",
        "3bcd6b390912c18924b46b26a9e7ff53", 35_434_956,
        "tiny-YOLOv3 trained on COCO (80 classes); its second [yolo] uses mask = 1,2,3"),
    "yolov3": DarknetWeightsFile(
        "yolov3.weights", "https://pjreddie.com/media/files/yolov3.weights", "md5",
        "c84e5b99d0e52cd466ae710cadf6d84c", None, "YOLOv3 trained on COCO (80 classes)"),
    "darknet53": DarknetWeightsFile(
        "darknet53.conv.74", "https://pjreddie.com/media/files/darknet53.conv.74", "sha512",
        "8983e1c129e2d6e8e3da0cc0781ecb7a07813830ef5a87c24b53100df6a5f23db6c6e6a402aec78025a93fe060b75d1958f1b8f7439a"
        "04b54a3f19c81e2ae99b", None, "Darknet-53's first 74 layers trained on ImageNet (YOLOv3's backbone)"),
}


class DownloadError(Defi1Error, OSError):
    """A file could not be downloaded (no connection) or is not the file expected (checksum)."""


def file_digest(path, algorithm: str) -> str:
    """Hexadecimal ``hashlib`` digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_darknet_weights(name: str, *, cache_dir=None) -> Path:
    """The verified local path of darknet's released weights ``name`` (a key of :data:`DARKNET_WEIGHTS`),
    downloaded once with a progress bar.

    Args:
        name: ``"yolov3-tiny"``, ``"yolov3"`` or ``"darknet53"``.
        cache_dir: where ``keras.utils.get_file`` keeps it (default ``~/.keras``; the file goes in ``models/``).
    Raises:
        ValueError: an unknown name.
        DownloadError: no connection (the message says how to continue offline), or a file whose checksum is not
            the released one (the bad copy is deleted).
    """
    if name not in DARKNET_WEIGHTS:
        raise ValueError(f"unknown darknet weights {name!r}: expected one of {', '.join(DARKNET_WEIGHTS)}")
    released = DARKNET_WEIGHTS[name]
    import keras

    try:
        path = Path(keras.utils.get_file(released.file_name, released.url, cache_subdir="models",
                                         cache_dir=None if cache_dir is None else str(cache_dir)))
    except Exception as error:  # get_file raises bare Exception subclasses for URL and HTTP errors
        raise DownloadError(f"cannot download {released.url} ({error.__class__.__name__}: {error}); offline, "
                            "train from scratch (weights none) or copy the file yourself") from error
    found = file_digest(path, released.algorithm)
    if found != released.digest:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{path}: {released.algorithm} {found} is not that of darknet's released "
                            f"{released.file_name} ({released.digest}); the download was deleted, try again")
    return path
