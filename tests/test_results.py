"""Tests of defi1.results: the results files used for grading."""

import hashlib
import json

import pytest

from defi1.results import (ResultsSchemaError, load_results, metric_range_problems, record_results,
                           validate_results)


def test_record_then_load_round_trip(tmp_path):
    path = record_results("classification", {"test_accuracy": 0.98, "val_accuracy": 0.99}, dataset="digits",
                          model="small_cnn", smoke=True, results_dir=tmp_path, extra={"epochs": 3})
    assert path == tmp_path / "classification.json"
    payload = load_results(path)
    assert payload["metrics"] == {"test_accuracy": 0.98, "val_accuracy": 0.99}
    assert payload["part"] == "classification" and payload["smoke"] is True
    assert payload["dataset"] == "digits" and payload["model"] == "small_cnn" and payload["extra"] == {"epochs": 3}
    assert payload["schema_version"] == 2
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
    (lambda p: p.update(schema_version=3), "schema_version 3, expected 1 or 2"),
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


def test_provenance_records_the_model_hash_split_and_settings(tmp_path):
    model_file = tmp_path / "runs" / "detector" / "best.keras"
    model_file.parent.mkdir(parents=True)
    model_file.write_bytes(b"model bytes")
    path = record_results("localisation", {"map50": 0.5, "map50_95": 0.25}, dataset="shapes", model="tiny",
                          results_dir=tmp_path / "results", model_path=model_file, split="test",
                          dataset_fingerprint="ab" * 32, input_size=(256, 256),
                          thresholds={"conf_threshold": 0.005, "iou_threshold": 0.45})
    payload = load_results(path)
    from defi1 import __version__

    assert payload["defi1_version"] == __version__
    assert payload["provenance"] == {
        "split": "test", "dataset_fingerprint": "ab" * 32, "input_size": 256,
        "thresholds": {"conf_threshold": 0.005, "iou_threshold": 0.45},
        "model_file": "runs/detector/best.keras",  # relative to the folder holding results/
        "model_sha256": hashlib.sha256(b"model bytes").hexdigest()}


def test_provenance_without_a_model_and_a_model_outside_the_project(tmp_path):
    payload = load_results(record_results("realtime", {"fps_end_to_end": 12.0}, dataset="video", model="random",
                                          results_dir=tmp_path / "project" / "results", input_size=(320, 256)))
    assert payload["provenance"]["model_sha256"] is None and payload["provenance"]["input_size"] == [320, 256]
    elsewhere = tmp_path / "elsewhere.keras"
    elsewhere.write_bytes(b"x")
    payload = load_results(record_results("realtime", {"fps_end_to_end": 12.0}, dataset="video", model="m",
                                          results_dir=tmp_path / "project" / "results", model_path=elsewhere))
    assert payload["provenance"]["model_file"] == "elsewhere.keras"
    with pytest.raises(FileNotFoundError, match="missing.keras: no such model file"):
        record_results("realtime", {"fps_end_to_end": 12.0}, dataset="video", model="m", results_dir=tmp_path,
                       model_path=tmp_path / "missing.keras")


def test_version_1_files_are_still_read():
    payload = valid_payload()
    assert payload["schema_version"] == 1 and "provenance" not in payload
    assert validate_results(payload) is payload


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("provenance"), "missing field\\(s\\) provenance"),
    (lambda p: p["provenance"].pop("split"), "provenance lacks split"),
    (lambda p: p["provenance"].update(model_sha256="abc"), "model_sha256 'abc' is not a SHA-256"),
    (lambda p: p["provenance"].update(input_size=-3), "provenance.input_size -3"),
    (lambda p: p["provenance"].update(thresholds={"conf_threshold": "low"}), "thresholds must map names to numbers"),
])
def test_invalid_provenance_is_rejected(change, message):
    payload = dict(valid_payload(), schema_version=2, defi1_version="0.1.0",
                   provenance={"split": "test", "dataset_fingerprint": None, "input_size": [320, 256],
                               "thresholds": None, "model_file": "m.keras", "model_sha256": "0" * 64})
    assert validate_results(payload) is payload
    change(payload)
    with pytest.raises(ResultsSchemaError, match=message):
        validate_results(payload, source="results/localisation.json")


def test_impossible_metrics_are_named():
    assert metric_range_problems({"test_accuracy": 91, "map50": -0.5, "map50_95": 7, "fps_end_to_end": 0,
                                  "latency_ms_median": -1, "small_cnn.val_accuracy": 1.5, "epochs": 40,
                                  "recall": 1.0, "fps_model": 30}) == [
        "metric 'test_accuracy' is 91, expected a value in [0, 1]",
        "metric 'map50' is -0.5, expected a value in [0, 1]",
        "metric 'map50_95' is 7, expected a value in [0, 1]",
        "metric 'fps_end_to_end' is 0, expected a value above 0",
        "metric 'latency_ms_median' is -1, expected a value at or above 0",
        "metric 'small_cnn.val_accuracy' is 1.5, expected a value in [0, 1]"]


def test_record_refuses_impossible_metrics(tmp_path):
    with pytest.raises(ResultsSchemaError, match="metric 'test_accuracy' is 91, expected a value in \\[0, 1\\]"):
        record_results("classification", {"test_accuracy": 91}, dataset="d", model="m", results_dir=tmp_path)
    assert not (tmp_path / "classification.json").exists()


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "localisation.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(valid_payload()).encode("utf-8"))  # as Windows Notepad saves
    assert load_results(path)["metrics"]["map50"] == 0.5
