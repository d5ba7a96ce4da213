"""Tests of defi1.classification.demo: Part 1 of ``defi1 demo``."""

import json

import keras
import pytest

from defi1.classification.demo import demo_output_paths, run_classification_demo


@pytest.mark.smoke
def test_smoke_classification_demo_writes_its_outputs(tmp_path):
    summary = run_classification_demo(tmp_path, smoke=True)
    assert set(summary["models"]) == {"course_mlp", "dropout_mlp", "small_cnn"}
    assert summary["split_sizes"] == {"train": 120, "val": 30, "test": 50}  # 200 images: 25 % test, 20 % of the rest
    for path in demo_output_paths(tmp_path).values():
        assert path.is_file(), path
    assert json.loads((tmp_path / "metrics.json").read_text())["chosen_model"] == summary["chosen_model"]
    assert "| small_cnn |" in (tmp_path / "report.md").read_text()
    keras.saving.load_model(summary["model_path"], safe_mode=True)


@pytest.mark.slow
def test_classification_demo_reaches_the_target_accuracies(tmp_path):
    summary = run_classification_demo(tmp_path)
    assert summary["models"]["small_cnn"]["test_accuracy"] >= 0.98
    assert summary["models"]["dropout_mlp"]["test_accuracy"] >= 0.95
    assert summary["leaks"] == 0 and summary["split_sizes"] == {"train": 1077, "val": 270, "test": 450}
