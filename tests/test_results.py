"""Tests of defi1.results: the results files used for grading."""

import json

import pytest

from defi1.results import ResultsSchemaError, load_results, record_results, validate_results


def test_record_then_load_round_trip(tmp_path):
    path = record_results("classification", {"test_accuracy": 0.98, "val_accuracy": 0.99}, dataset="digits",
                          model="small_cnn", smoke=True, results_dir=tmp_path, extra={"epochs": 3})
    assert path == tmp_path / "classification.json"
    payload = load_results(path)
    assert payload["metrics"] == {"test_accuracy": 0.98, "val_accuracy": 0.99}
    assert payload["part"] == "classification" and payload["smoke"] is True
    assert payload["dataset"] == "digits" and payload["model"] == "small_cnn" and payload["extra"] == {"epochs": 3}
    assert payload["schema_version"] == 1
    import keras

    assert payload["keras_version"] == keras.__version__
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_record_replaces_the_previous_file(tmp_path):
    record_results("realtime", {"fps_end_to_end": 10}, dataset="video", model="tiny", results_dir=tmp_path)
    record_results("realtime", {"fps_end_to_end": 25.5}, dataset="video", model="tiny", results_dir=tmp_path)
    assert load_results(tmp_path / "realtime.json")["metrics"]["fps_end_to_end"] == 25.5


def test_record_rejects_bad_metrics(tmp_path):
    with pytest.raises(ResultsSchemaError, match="metric 'test_accuracy' is nan, expected a finite number"):
        record_results("classification", {"test_accuracy": float("nan")}, dataset="d", model="m",
                       results_dir=tmp_path)
    with pytest.raises(ResultsSchemaError, match="metric 'test_accuracy' is 'high', expected a finite number"):
        record_results("classification", {"test_accuracy": "high"}, dataset="d", model="m", results_dir=tmp_path)
    with pytest.raises(ResultsSchemaError, match="metric 'test_accuracy' is True, expected a finite number"):
        record_results("classification", {"test_accuracy": True}, dataset="d", model="m", results_dir=tmp_path)
    assert not (tmp_path / "classification.json").exists()


def test_booleans_are_not_metrics():
    payload = valid_payload()
    payload["metrics"]["map50"] = True
    with pytest.raises(ResultsSchemaError, match="metric 'map50' is True"):
        validate_results(payload, source="results/localisation.json")


def test_record_rejects_an_unknown_part(tmp_path):
    with pytest.raises(ResultsSchemaError, match="part 'segmentation', expected one of classification"):
        record_results("segmentation", {"x": 1}, dataset="d", model="m", results_dir=tmp_path)


def valid_payload():
    return {"schema_version": 1, "part": "localisation", "metrics": {"map50": 0.5, "map50_95": 0.3},
            "dataset": "shapes", "model": "yolov3_tiny", "keras_version": "3.15.1", "backend": "jax",
            "device": "CPU", "smoke": False, "timestamp": "2026-11-27T10:00:00+00:00"}


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("metrics"), "missing field\\(s\\) metrics"),
    (lambda p: p.update(schema_version=2), "schema_version 2, expected 1"),
    (lambda p: p.update(metrics=[0.5]), "metrics must be an object"),
    (lambda p: p.update(smoke="no"), "smoke must be true or false"),
    (lambda p: p.update(timestamp="yesterday"), "timestamp 'yesterday' is not ISO 8601"),
    (lambda p: p["metrics"].update(map50=float("inf")), "metric 'map50' is inf"),
])
def test_invalid_files_are_rejected_naming_the_file(tmp_path, change, message):
    payload = valid_payload()
    assert validate_results(payload) is payload
    change(payload)
    path = tmp_path / "localisation.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ResultsSchemaError, match=f"{path}: {message}"):
        load_results(path)


def test_not_json_and_not_an_object(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"part": \n')
    with pytest.raises(ResultsSchemaError, match=r"broken.json: not valid JSON \(line 2"):
        load_results(path)
    path.write_text("[1, 2]")
    with pytest.raises(ResultsSchemaError, match="expected a JSON object, got list"):
        load_results(path)
