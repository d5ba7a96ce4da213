"""Tests of defi1.realtime.engines: the Keras and ONNX Runtime engines agree, and load_detector builds a Detector on
either from a .keras file, a Keras model or darknet files, refusing contradictory requests with a clear message."""

import numpy as np
import pytest

from defi1.realtime.engines import (OnnxRuntimeForward, OpenCVForward, cached_onnx_path, choose_engine,
                                    describe_engine, exported_onnx_path, load_detector, make_forward)
from defi1.realtime.export import keras_outputs
from defi1.yolo.detector import Detector
from defi1.yolo.inference import CompiledForward

from ..conftest import requires_onnx_export


@requires_onnx_export
def test_make_forward_engines_agree(mini_model, mini_model_path, onnx_path, tmp_path):
    batch = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    expected = keras_outputs(mini_model, batch)
    keras_forward = make_forward(mini_model_path, "keras")
    onnx_forward = make_forward(onnx_path, "onnxruntime")
    cached = make_forward(mini_model_path, "onnxruntime", cache_dir=tmp_path)  # defi1's writer, to the cache
    opencv_forward = make_forward(mini_model_path, "opencv", cache_dir=tmp_path)  # the same file
    assert keras_forward.engine == "keras" and onnx_forward.engine == "onnxruntime"
    assert isinstance(opencv_forward, OpenCVForward) and opencv_forward.engine == "opencv"
    assert cached.path == exported_onnx_path(mini_model_path, (64, 64), cache_dir=tmp_path) == opencv_forward.path
    for forward in (keras_forward, onnx_forward, cached, opencv_forward):
        for reference, found in zip(expected, forward(batch), strict=True):
            np.testing.assert_allclose(found, reference, atol=1e-4)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        make_forward("x.keras", "tensorrt")


@requires_onnx_export
def test_bad_onnx_file(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="broken.onnx: ONNX Runtime cannot load"):
        OnnxRuntimeForward(tmp_path / "broken.onnx")


def test_cached_onnx_path_changes_with_the_model_file(mini_model_path, tmp_path):
    first = cached_onnx_path(mini_model_path, tmp_path)
    assert first.parent == tmp_path and first.name.startswith("mini-") and first.suffix == ".onnx"
    assert cached_onnx_path(mini_model_path, tmp_path) == first
    copy = tmp_path / "copy" / "mini.keras"
    copy.parent.mkdir()
    copy.write_bytes(mini_model_path.read_bytes())
    assert cached_onnx_path(copy, tmp_path) != first  # another file: another cache entry


def test_load_detector_from_a_path_or_a_model_on_the_keras_engine(mini_model, mini_model_path, rng):
    images = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(2)]
    from_path = load_detector(mini_model_path, input_size=64, conf_threshold=0.3, max_detections=7)
    from_model = load_detector(mini_model, input_size=64, conf_threshold=0.3, max_detections=7)
    for detector in (from_path, from_model):
        assert isinstance(detector, Detector) and isinstance(detector.forward, CompiledForward)
        assert (detector.input_size, detector.conf_threshold, detector.max_detections) == ((64, 64), 0.3, 7)
        assert detector.class_names == ["cat", "dog"]
    for first, second in zip(from_path.detect(images), from_model.detect(images), strict=True):
        np.testing.assert_allclose(first.boxes, second.boxes, atol=1e-4)
        np.testing.assert_array_equal(first.class_ids, second.class_ids)


@requires_onnx_export
def test_load_detector_on_onnxruntime_detects_what_keras_detects(mini_model_path, rng, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFI1_CACHE", str(tmp_path / "cache"))
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    keras_detector = load_detector(mini_model_path, conf_threshold=0.3)
    onnx_detector = load_detector(mini_model_path, engine="onnxruntime", conf_threshold=0.3)
    assert isinstance(onnx_detector.forward, OnnxRuntimeForward)
    expected = keras_detector.detect(images)
    assert sum(len(detection) for detection in expected) > 0  # something to compare
    for found, reference in zip(onnx_detector.detect(images), expected, strict=True):
        np.testing.assert_allclose(found.boxes, reference.boxes, atol=1e-3)
        np.testing.assert_allclose(found.scores, reference.scores, atol=1e-4)
        np.testing.assert_array_equal(found.class_ids, reference.class_ids)


def test_load_detector_from_darknet_files(tiny_darknet):
    cfg_path, weights_path, names_path = tiny_darknet
    detector = load_detector(cfg=cfg_path, weights=weights_path, names=names_path, iou_threshold=0.3)
    assert detector.class_names == ["cat", "dog"] and detector.iou_threshold == 0.3
    assert detector.input_size == (64, 64)


@pytest.mark.parametrize("arguments, message", [
    ({"model": "a.keras", "cfg": "a.cfg", "weights": "a.weights"}, "give either --model .* not both"),
    ({"model": "a.keras", "names": "coco.names"}, "--names goes with --cfg/--weights"),
    ({"cfg": "a.cfg"}, r"no model: give --model MODEL.keras, or --weights FILE.weights \[--cfg FILE.cfg\]"),
    ({"model": "a.keras", "engine": "tensorrt"}, "unknown engine 'tensorrt'"),
])
def test_load_detector_refuses_contradictory_requests(arguments, message):
    with pytest.raises(ValueError, match=message):
        load_detector(**arguments)


def test_load_detector_names_a_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.keras: no such model file"):
        load_detector(tmp_path / "none.keras")


def test_opencv_engine_agrees_with_keras_on_a_batch(mini_model, tmp_path):
    batch = np.random.default_rng(4).random((3, 64, 64, 3), dtype=np.float32)
    forward = make_forward(mini_model, "opencv", cache_dir=tmp_path)
    for reference, found in zip(keras_outputs(mini_model, batch), forward(batch), strict=True):
        assert found.shape == reference.shape
        np.testing.assert_allclose(found, reference, atol=1e-4)


def test_exported_onnx_path_is_beside_the_model_and_keyed_by_its_sha256(mini_model_path, tmp_path):
    import hashlib

    first = exported_onnx_path(mini_model_path, (64, 64))
    digest = hashlib.sha256(mini_model_path.read_bytes()).hexdigest()[:16]
    assert first.parent == mini_model_path.parent and first.name.startswith(f"mini.{digest}.64x64.")
    copy = tmp_path / "mini.keras"
    copy.write_bytes(mini_model_path.read_bytes()[:-1] + b"!")  # other bytes: another export
    assert exported_onnx_path(copy, (64, 64)).name != first.name
    assert exported_onnx_path(mini_model_path, (96, 64)).name.endswith(".96x64.v1.onnx")


def test_choose_engine_measures_once_then_uses_the_cached_choice(mini_model_path, tmp_path, monkeypatch):
    from defi1.realtime import engines

    monkeypatch.setenv("DEFI1_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "on_gpu", lambda: False)
    first = choose_engine(mini_model_path, input_size=(64, 64), rounds=1, calls=1)
    assert first["reason"] == "measured" and set(first["median_ms"]) == set(engines.installed_engines())
    assert first["engine"] == min(first["median_ms"], key=first["median_ms"].get)
    again = choose_engine(mini_model_path, input_size=(64, 64))
    assert again["reason"] == "cached" and again["engine"] == first["engine"]
    monkeypatch.setattr(engines, "on_gpu", lambda: True)
    assert choose_engine(mini_model_path, input_size=(64, 64))["engine"] == "keras"


def test_load_detector_auto_says_which_engine_it_uses(mini_model_path, tmp_path, monkeypatch):
    from defi1.realtime import engines

    monkeypatch.setenv("DEFI1_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "on_gpu", lambda: False)
    monkeypatch.setattr(engines, "choose_engine", lambda *arguments, **options: {
        "engine": "opencv", "reason": "measured", "median_ms": {"opencv": 3.0, "keras": 5.2}})
    detector = load_detector(mini_model_path, engine="auto", input_size=64)
    assert isinstance(detector.forward, OpenCVForward)
    assert describe_engine(detector) == (f"engine: opencv, {detector.forward.threads} threads (auto, measured here: "
                                         "opencv 3 ms, keras 5 ms per frame)")
    keras_detector = load_detector(mini_model_path, engine="keras", input_size=64)
    assert describe_engine(keras_detector) == "engine: keras (--engine)"


def test_darknet_weights_run_on_the_opencv_engine(tiny_darknet, rng, monkeypatch, tmp_path):
    monkeypatch.setenv("DEFI1_CACHE", str(tmp_path / "cache"))
    cfg_path, weights_path, names_path = tiny_darknet
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    keras_detector = load_detector(cfg=cfg_path, weights=weights_path, names=names_path, conf_threshold=0.05)
    opencv_detector = load_detector(cfg=cfg_path, weights=weights_path, names=names_path, conf_threshold=0.05,
                                    engine="opencv")
    assert opencv_detector.forward.path.parent == tmp_path / "cache" / "onnx"
    for found, reference in zip(opencv_detector.detect(images), keras_detector.detect(images), strict=True):
        np.testing.assert_allclose(found.boxes, reference.boxes, atol=1e-3)
        np.testing.assert_array_equal(found.class_ids, reference.class_ids)


def test_opencv_engine_names_a_file_it_cannot_load(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="broken.onnx: OpenCV's DNN module cannot load this model"):
        OpenCVForward(tmp_path / "broken.onnx")


@requires_onnx_export
def test_onnxruntime_replicas_share_the_threads_and_agree(onnx_path):
    from defi1.realtime.engines import parallel_forwards

    forward = OnnxRuntimeForward(onnx_path, threads=4)
    copies = parallel_forwards(forward, 2)
    assert [copy.threads for copy in copies] == [2, 2] and copies[0] is not copies[1]
    assert all(copy.providers == forward.providers and copy.path == forward.path for copy in copies)
    assert parallel_forwards(forward, 2) == copies  # built once: the benchmark times the stream's own instances
    assert parallel_forwards(forward, 1) == [forward]
    assert [copy.threads for copy in OnnxRuntimeForward(onnx_path, threads=1).replicas(2)] == [1, 1]
    batch = np.random.default_rng(5).random((1, 64, 64, 3), dtype=np.float32)
    for copy in copies:
        for reference, found in zip(forward(batch), copy(batch), strict=True):
            np.testing.assert_allclose(found, reference, atol=1e-5)


def test_keras_engine_runs_two_frames_on_one_compiled_pass(mini_model):
    from defi1.realtime.engines import parallel_forwards

    forward = make_forward(mini_model, "keras")
    assert parallel_forwards(forward, 2) == [forward, forward]
    with pytest.raises(ValueError, match="the given engine cannot run 3 frames at once"):
        parallel_forwards(lambda batch: [batch], 3)
