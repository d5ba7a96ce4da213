"""Tests of defi1.grading.worker's tasks, run in this process (the isolated runs are in test_class.py)."""

import pytest

from defi1.grading.worker import rescore_job
from tests.grading.builders import (INPUT_SIZE, build_classifier, build_detector, narrow_tiny_cfg_text,
                                    write_hidden_shapes)


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    return write_hidden_shapes(tmp_path_factory.mktemp("hidden"))


def job_for(hidden, **fields):
    job = {"student": "s", "limits": {}, "models": {}, "candidates": [], "detection": {"data_yaml": str(hidden),
                                                                                       "split": "test"}}
    job.update(fields)
    return job


def run(job):
    result = {"figures": {}, "problems": [], "models": {}}
    rescore_job(job, result)
    return result


def test_a_darknet_detector_is_size_checked_then_rescored(hidden, tmp_path):
    from defi1.detection.evaluation import evaluate_model
    from defi1.yolo.darknet import load_darknet, write_random_darknet_weights

    cfg = tmp_path / "student.cfg"
    cfg.write_text(narrow_tiny_cfg_text(num_classes=5))
    weights = write_random_darknet_weights(cfg, tmp_path / "student.weights", seed=3)
    result = run(job_for(hidden, models={"detector": {"path": str(weights), "cfg": str(cfg),
                                                      "input_size": INPUT_SIZE}}))
    expected = evaluate_model(load_darknet(cfg, weights), hidden, "test", input_size=INPUT_SIZE, print_table=False)
    assert result["problems"] == []
    assert result["figures"] == {"map50": pytest.approx(expected["map50"], abs=1e-6),
                                 "map50_95": pytest.approx(expected["map50_95"], abs=1e-6)}
    weights.write_bytes(weights.read_bytes()[:-8])  # two values short: refused before parsing
    (problem,) = run(job_for(hidden, models={"detector": {"path": str(weights), "cfg": str(cfg)}}))["problems"]
    assert problem[0] == "unsafe_model" and "student.weights: " in problem[1] and "not parsed" in problem[1]


def test_without_provenance_the_candidates_are_tried_by_role(hidden, tmp_path):
    classifier = build_classifier(tmp_path / "a_classifier.keras", seed=0)
    detector = build_detector(tmp_path / "b_detector.keras", seed=0)
    result = run(job_for(hidden, candidates=[str(classifier), str(detector)]))
    assert result["models"] == {"detector": str(detector)} and set(result["figures"]) == {"map50", "map50_95"}


def test_a_detector_for_other_classes_is_reported(hidden, tmp_path):
    import keras

    from defi1.files import atomic_save_model
    from defi1.yolo.model import build_from_cfg

    keras.utils.set_random_seed(0)
    model = build_from_cfg(narrow_tiny_cfg_text(num_classes=3), class_names=["a", "b", "c"])
    path = atomic_save_model(model, tmp_path / "three.keras")
    result = run(job_for(hidden, models={"detector": {"path": str(path)}}))
    assert result["figures"] == {}
    assert result["problems"] == [["rescore_failed", f"detection: ConfigError: {hidden}: the dataset has 5 classes "
                                                     "but the model has 3 (a, b, c)"]]


def test_no_classifier_among_the_models(hidden, tmp_path):
    detector = build_detector(tmp_path / "detector.keras", seed=0)
    result = run(job_for(hidden, detection=None, classification={"data_dir": str(tmp_path)},
                         candidates=[str(detector)]))
    assert result["problems"] == [["rescore_failed", "classification: FileNotFoundError: no classifier model file in "
                                                     "the submission"]]
