"""``defi1 bench`` (defi1.cli.bench): the figures of a measurement, printed and written as JSON."""

import json

import pytest

from defi1.cli import main

from ..conftest import requires_onnx_export


@requires_onnx_export
@pytest.mark.smoke
def test_smoke_bench_cli_onnxruntime(mini_model_path, tmp_path, capsys):
    figures = tmp_path / "bench.json"
    assert main(["bench", "--model", str(mini_model_path), "--engine", "onnxruntime", "--input-size", "64",
                 "--frames", "4", "--warmup", "1", "--json", str(figures)]) == 0
    result = json.loads(figures.read_text())
    assert result["engine"] == "onnxruntime" and result["end_to_end"]["frames_processed"] == 5
    assert "end to end" in capsys.readouterr().out
