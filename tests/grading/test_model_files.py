"""Tests of defi1.grading.model_files: submitted models are checked as data before anything loads them."""

import json
import zipfile

import keras
import numpy as np
import pytest

from defi1.grading.archive import SubmissionLimits
from defi1.grading.model_files import (UnsafeModelError, check_darknet_files, check_keras_file, is_detector,
                                       keras_config_problems, load_submitted_keras)
from tests.grading.builders import build_classifier, build_detector, build_lambda_detector, narrow_tiny_cfg_text


def test_a_lambda_layer_is_reported_and_never_executed(tmp_path):
    marker = tmp_path / "LAMBDA_RAN"
    path = build_lambda_detector(tmp_path / "evil.keras", marker)
    assert not marker.exists()
    with pytest.raises(UnsafeModelError, match=r"evil.keras: refused, not loaded: Lambda layer 'student_code' "
                                               r"\(it holds Python code\)$"):
        check_keras_file(path)
    with pytest.raises(UnsafeModelError, match="Lambda layer"):
        load_submitted_keras(path)
    assert not marker.exists()  # the student's code never ran


@keras.saving.register_keras_serializable(package="student_package")
class StudentLayer(keras.layers.Layer):
    def call(self, inputs):
        return inputs


def test_an_unknown_custom_object_is_reported(tmp_path):
    model = keras.Sequential([keras.Input((4,)), StudentLayer(name="mine")])
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(UnsafeModelError, match="unknown custom object StudentLayer 'mine' from module "):
        check_keras_file(path)


def test_config_problems_of_a_handwritten_config():
    config = {"class_name": "Functional", "module": "keras.src.models.functional", "registered_name": "Functional",
              "config": {"layers": [
                  {"class_name": "Dense", "module": "keras.layers", "registered_name": None, "config": {"name": "d"}},
                  {"class_name": "YoloHead", "module": "defi1.yolo.layers", "registered_name": "defi1>YoloHead",
                   "config": {"name": "yolo"}},
                  {"class_name": "Evil", "module": "os", "registered_name": None, "config": {"name": "e"}},
                  {"class_name": "Sneaky", "module": "keras.layers", "registered_name": "hack>Sneaky",
                   "config": {"name": "s"}}]}}
    assert keras_config_problems(config) == ["unknown custom object Evil 'e' from module 'os'",
                                             "unknown custom object 'hack>Sneaky'"]


def test_defi1_models_pass_the_check_and_load(tmp_path):
    detector = load_submitted_keras(build_detector(tmp_path / "detector.keras", seed=0))
    classifier = load_submitted_keras(build_classifier(tmp_path / "classifier.keras", seed=0))
    assert is_detector(detector) and not is_detector(classifier)


def test_files_that_are_not_models_or_too_large(tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(UnsafeModelError, match="fake.keras: not a .keras file"):
        check_keras_file(fake)
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(UnsafeModelError, match="no config.json inside"):
        check_keras_file(tmp_path / "noconfig.keras")
    with zipfile.ZipFile(tmp_path / "large.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential"}))
        archive.writestr("padding.bin", np.random.default_rng(0).bytes(5000))
    with pytest.raises(UnsafeModelError, match=r"large.keras: 5.\d KB, more than the 4.0 KB a model file may hold"):
        check_keras_file(tmp_path / "large.keras", SubmissionLimits(max_model_bytes=4096))


def test_darknet_files_are_size_checked_before_parsing(tmp_path):
    from defi1.yolo.darknet import write_random_darknet_weights

    cfg = tmp_path / "narrow.cfg"
    cfg.write_text(narrow_tiny_cfg_text(num_classes=5))
    weights = write_random_darknet_weights(cfg, tmp_path / "narrow.weights", seed=0)
    check_darknet_files(cfg, weights)  # the right size: accepted
    size = weights.stat().st_size
    with pytest.raises(UnsafeModelError, match="more than the 1.0 KB allowed"):
        check_darknet_files(cfg, weights, SubmissionLimits(max_model_bytes=1024))
    weights.write_bytes(weights.read_bytes() + b"\0" * 40)  # 10 values too many
    with pytest.raises(UnsafeModelError, match=f"narrow.weights: {size + 40} bytes, but narrow.cfg needs {size} "):
        check_darknet_files(cfg, weights)
    (tmp_path / "huge.cfg").write_text("#" * 5000)
    with pytest.raises(UnsafeModelError, match="huge.cfg: 4.9 KB, more than the 4.0 KB allowed"):
        check_darknet_files(tmp_path / "huge.cfg", weights, SubmissionLimits(max_cfg_bytes=4096))
