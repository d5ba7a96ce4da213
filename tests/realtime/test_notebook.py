"""Runs notebooks/03_realtime.ipynb with papermill on a generated video (no camera) and checks what it records."""

from pathlib import Path

import pytest

from defi1.collect import check_notebook_order
from defi1.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_realtime.ipynb"


@pytest.mark.slow
def test_realtime_notebook_runs_and_records_results(tmp_path):
    papermill = pytest.importorskip("papermill")
    executed = tmp_path / "03_realtime.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(executed), cwd=str(tmp_path), kernel_name="python3", progress_bar=False,
        parameters={"SMOKE": True, "FRAMES": 12, "BENCH_FRAMES": 5, "INPUT_SIZE": 320,
                    "OUT_DIR": str(tmp_path / "runs"), "RESULTS_DIR": str(tmp_path / "results")})
    results = load_results(tmp_path / "results" / "realtime.json")
    assert results["smoke"] is True and results["part"] == "realtime"
    assert results["metrics"]["fps_end_to_end"] > 0 and results["metrics"]["fps_model"] > 0
    assert set(results["extra"]) == {"keras", "onnxruntime"}
    assert (tmp_path / "runs" / "annotated.mp4").is_file()
    assert check_notebook_order(executed.read_text(), str(executed)).in_order  # what defi1 collect checks
