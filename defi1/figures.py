"""Figures: the one matplotlib policy of defi1, and PNG files written atomically.

Policy: defi1 never sets a matplotlib backend. Without a display matplotlib falls back to its Agg backend (scripts,
CI, servers), and notebooks keep their inline one, so a figure a library function returns is shown in the notebook
that asked for it. Figures that only go to a file are written as PNG bytes in one atomic write and closed at once
(:func:`save_figure`), so that a long run does not accumulate open figures.
"""

from __future__ import annotations

import io
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot``, imported on first use (matplotlib is slow to import), backend left as it is."""
    import matplotlib.pyplot

    return matplotlib.pyplot


def figure_png(figure, *, dpi=110, tight=True) -> bytes:
    """The PNG bytes of a matplotlib figure (``tight``: trimmed to its drawn content)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    return buffer.getvalue()


def save_figure(figure, path, *, dpi=110, tight=True, close=True) -> Path:
    """Write ``figure`` to ``path`` as PNG (atomically: never half an image) and close it unless ``close=False``
    (a figure that a notebook will still show). Returns ``path``."""
    from defi1.files import atomic_write_bytes

    data = figure_png(figure, dpi=dpi, tight=tight)
    if close:
        pyplot().close(figure)
    return atomic_write_bytes(path, data)
