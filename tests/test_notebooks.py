"""What every course notebook shares: a first cell that installs a pinned defi1 release on Colab, a parameters cell
where ``SMOKE = True`` alone makes the run small, a work folder that can live on Google Drive, a device report, and
no library logic of their own. (Each notebook is executed end to end by its part's slow test.)"""

import json
import re
from pathlib import Path

import pytest

import defi1

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_three_notebooks():
    assert [path.name for path in NOTEBOOKS] == ["01_classification.ipynb", "02_localisation.ipynb",
                                                 "03_realtime.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_first_cell_installs_this_release_on_colab_only(path):
    first = _code_cells(path)[0]
    source = "".join(first["source"])
    assert "colab" in _tags(first)
    pinned = re.search(r'^DEFI1_SOURCE = "git\+https://github\.com/defi1-course/defi1@v([0-9.]+)"$', source, re.M)
    assert pinned and pinned.group(1) == defi1.__version__
    assert 'if "google.colab" in sys.modules:' in source and "Restart the runtime" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_cell_has_smoke_and_drive_folder_and_setup_uses_them(path):
    cells = _code_cells(path)
    parameters = [cell for cell in cells if "parameters" in _tags(cell)]
    assert len(parameters) == 1
    text = "".join(parameters[0]["source"])
    assert re.search(r"^SMOKE = False\b", text, re.M) and re.search(r"^DRIVE_FOLDER = None\b", text, re.M)
    code = "".join("".join(cell["source"]) for cell in cells)
    assert "if SMOKE:" in code and "work_folder(DRIVE_FOLDER)" in code and "print(runtime_summary(" in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_define_no_library_logic(path):
    code = "\n".join("".join(cell["source"]) for cell in _code_cells(path))
    assert not re.search(r"^\s*(def|class) ", code, re.M)
