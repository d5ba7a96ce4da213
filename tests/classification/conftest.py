"""Fixtures of the classification tests: tiny class-per-folder trees cut from the built-in digits."""

import numpy as np
import pytest

from defi1.classification.datasets import load_digits_arrays
from defi1.images import write_image


def write_tree(root, *, classes=(0, 1, 2), per_class=8, scale=2):
    """Write ``per_class`` digits of each class in ``classes`` as ``root/<digit>/digit_<index>.png`` (8*scale px)."""
    images, labels = load_digits_arrays()
    for digit in classes:
        for index in np.flatnonzero(labels == digit)[:per_class]:
            write_image(root / str(digit) / f"digit_{index:04d}.png",
                        np.kron(images[index], np.ones((scale, scale), dtype=np.uint8)))
    return root


@pytest.fixture
def tiny_tree(tmp_path):
    """3 classes × 8 grayscale PNG digits of 16×16 pixels."""
    return write_tree(tmp_path / "tiny")
