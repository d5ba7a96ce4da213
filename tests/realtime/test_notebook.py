"""Runs notebooks/03_realtime.ipynb with nbclient on a generated video (no camera) and checks what it records."""

from pathlib import Path

import pytest

from defi1.collect import check_notebook_order
from defi1.realtime.engines import installed_engines
from defi1.results import load_results
from tests.notebook_runner import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_realtime.ipynb"


@pytest.mark.slow
def test_realtime_notebook_runs_and_records_results(tmp_path):
    executed = tmp_path / "03_realtime.ipynb"
    execute_notebook(NOTEBOOK, executed, cwd=tmp_path,
                     parameters={"SMOKE": True, "OUT_DIR": str(tmp_path / "runs"),
                                 "RESULTS_DIR": str(tmp_path / "results")})
    results = load_results(tmp_path / "results" / "realtime.json")
    assert results["smoke"] is True and results["part"] == "realtime"
    assert results["metrics"]["fps_end_to_end"] > 0 and results["metrics"]["fps_model"] > 0
    assert set(results["extra"]) == set(installed_engines())  # keras, and onnxruntime with the onnx extra
    assert (tmp_path / "runs" / "annotated.mp4").is_file()
    assert check_notebook_order(executed.read_text(), str(executed)).in_order  # what defi1 collect checks
