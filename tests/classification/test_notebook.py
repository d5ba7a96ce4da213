"""The Part 1 notebook runs end to end with the CI settings (nbclient, SMOKE=True, offline)."""

from pathlib import Path

import pytest

from tests.notebook_runner import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_classification.ipynb"


@pytest.mark.slow
def test_notebook_runs_in_smoke_mode_and_records_results(tmp_path):
    from defi1.results import load_results

    execute_notebook(NOTEBOOK, tmp_path / "executed.ipynb", cwd=tmp_path,
                     parameters={"SMOKE": True, "RESULTS_DIR": str(tmp_path / "results")})
    results = load_results(tmp_path / "results" / "classification.json")
    assert results["smoke"] is True and results["dataset"] == "digits"
    assert 0.0 <= results["metrics"]["test_accuracy"] <= 1.0
    assert set(results["extra"]["models"]) == {"course_mlp", "dropout_mlp", "small_cnn", "mobilenet_v2",
                                            "mobilenet_v2_scratch"}
    report = (tmp_path / "report.md").read_text()  # the notebook ends by writing the report skeleton
    assert "## Partie 1 : classification (40 %)" in report and "| test_accuracy |" in report
    assert "![mlp_learning_curves](runs/01_classification/mlp_learning_curves.png)" in report
