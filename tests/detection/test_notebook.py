"""notebooks/02_localisation.ipynb runs end to end in a small offline setting and records its results."""

import json
from pathlib import Path

import pytest

from defi1.results import load_results
from tests.notebook_runner import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_localisation.ipynb"


def test_notebook_has_a_parameters_cell_and_guards_its_internet_cell():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    tagged = {tag: cell for cell in notebook["cells"] for tag in cell.get("metadata", {}).get("tags", [])}
    parameters = "".join(tagged["parameters"]["source"])
    for knob in ("SMOKE", "EPOCHS", "IMAGES", "INPUT_SIZE", "MODEL", "WEIGHTS", "ONLINE", "DRIVE_FOLDER"):
        assert f"{knob} =" in parameters, knob
    internet = "".join(tagged["internet"]["source"])
    assert internet.startswith("if ONLINE and ") and "colab" in tagged["internet"]["metadata"]["tags"]
    # The notebook defines no library logic.
    code = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "\ndef " not in code and not code.startswith("def ") and "class " not in code


@pytest.mark.slow
def test_notebook_runs_offline_and_records_localisation_results(tmp_path):
    results_dir = tmp_path / "results"
    execute_notebook(NOTEBOOK, tmp_path / "executed.ipynb", cwd=tmp_path,
                     parameters={"SMOKE": True, "RUN_DIR": str(tmp_path / "run"), "RESULTS_DIR": str(results_dir)})
    results = load_results(results_dir / "localisation.json")
    assert results["smoke"] is True and results["part"] == "localisation"
    assert 0.0 <= results["metrics"]["map50"] <= 1.0 and 0.0 <= results["metrics"]["map50_95"] <= 1.0
    assert (tmp_path / "run" / "evaluation" / "gallery.png").is_file()
    assert (tmp_path / "run" / "training" / "best.keras").is_file()
    report = (tmp_path / "report.md").read_text()  # the notebook ends by writing the report skeleton
    assert "## Partie 2 : localisation (20 %)" in report and "| map50 |" in report
