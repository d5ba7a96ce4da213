"""Exceptions raised by defi1 for bad input. Each message names the file (and line) and what was expected."""


class Defi1Error(Exception):
    """Base class of every error defi1 raises on purpose."""


class DataError(Defi1Error, ValueError):
    """A dataset, label file or annotation is not what was expected."""


class ImageReadError(DataError):
    """An image file cannot be decoded."""

    def __init__(self, path, reason="not a readable image"):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason} (expected a JPEG, PNG, BMP, GIF, TIFF or WebP image)")


class WeightsError(Defi1Error, ValueError):
    """A weights file does not match its network definition (truncated, too long, wrong shapes)."""


class ConfigError(Defi1Error, ValueError):
    """A model configuration (darknet .cfg, dataset YAML) is invalid; the message names the file and line."""


class SourceError(Defi1Error, OSError):
    """A camera, video file or stream cannot be opened or read."""
