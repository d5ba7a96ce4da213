"""Hashes that tie a result to what produced it: the SHA-256 of a file, and the fingerprint of a dataset split.

A dataset fingerprint is the SHA-256 of the split's sorted ``(name, content)`` entries, where ``name`` is a file's
path relative to the split (``/`` separators) and ``content`` what labels it (a YOLO label file's bytes, a class
name). The image bytes are not read: renaming, adding, removing or relabelling an image changes the fingerprint,
re-encoding one does not. Each entry is fed as ``len(name)``, ``name``, ``len(content)``, ``content`` (lengths as
8-byte big-endian integers), so no two different lists hash alike by concatenation. The library functions that
list a split live with its format: :func:`defi1.detection.labels.split_fingerprint` (YOLO datasets) and
:func:`defi1.classification.data.split_fingerprint` (class folders).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK_BYTES = 1 << 20


class TooLargeError(ValueError):
    """A stream held more bytes than the limit it was read with."""


def sha256_stream(stream, *, limit: int | None = None) -> str:
    """SHA-256 (hex) of a binary stream read in 1 MiB chunks; ``TooLargeError`` beyond ``limit`` bytes."""
    digest = hashlib.sha256()
    total = 0
    for block in iter(lambda: stream.read(_CHUNK_BYTES), b""):
        total += len(block)
        if limit is not None and total > limit:
            raise TooLargeError(f"more than {limit} bytes")
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path, *, limit: int | None = None) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks (never whole into memory)."""
    with open(Path(path), "rb") as handle:
        return sha256_stream(handle, limit=limit)


def fingerprint_entries(entries) -> str:
    """SHA-256 (hex) of ``(name, content)`` pairs in sorted order (see the module docstring).

    ``name`` is text; ``content`` bytes or text (UTF-8). The order of ``entries`` does not matter.
    """
    digest = hashlib.sha256()
    encoded = sorted((str(name).encode("utf-8"), content.encode("utf-8") if isinstance(content, str) else
                      bytes(content)) for name, content in entries)
    for name, content in encoded:
        for part in (name, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()
