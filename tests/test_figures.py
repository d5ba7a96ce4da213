"""Tests of defi1.figures: PNG files written atomically and closed, and no matplotlib backend ever forced."""

import matplotlib
import pytest

from defi1.figures import figure_png, pyplot, save_figure

pytestmark = pytest.mark.backend_agnostic


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    backend = matplotlib.get_backend()
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(2, 1))
    axis.plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "plots" / "line.png", dpi=50, tight=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.number not in plt.get_fignums()  # closed: a long run does not pile up figures
    assert sorted(entry.name for entry in path.parent.iterdir()) == ["line.png"]
    assert matplotlib.get_backend() == backend  # the policy: defi1 never sets a backend


def test_a_figure_kept_open_for_a_notebook(tmp_path):
    plt = pyplot()
    figure, _ = plt.subplots(figsize=(2, 1))
    save_figure(figure, tmp_path / "kept.png", dpi=50, close=False)
    assert figure.number in plt.get_fignums()
    # 2 x 1 inches at 50 dpi, not trimmed: a 100 x 50 PNG (width and height in the IHDR chunk).
    data = figure_png(figure, dpi=50, tight=False)
    assert int.from_bytes(data[16:20], "big") == 100 and int.from_bytes(data[20:24], "big") == 50
    plt.close(figure)
