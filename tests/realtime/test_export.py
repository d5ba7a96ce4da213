"""Tests of defi1.realtime.export and defi1.realtime.engines: exported models agree with the Keras model."""

import numpy as np
import pytest

from defi1.realtime.engines import OnnxRuntimeForward, cached_onnx_path, make_forward
from defi1.realtime.export import (compare_export, default_export_path, export_model, keras_outputs, load_model,
                                   saved_model_forward)

from .conftest import requires_onnx_export


@pytest.fixture(scope="module")
def onnx_path(mini_model, tmp_path_factory):
    return export_model(mini_model, tmp_path_factory.mktemp("onnx") / "mini.onnx", format="onnx")


@requires_onnx_export
def test_onnx_export_agrees_with_keras(mini_model, onnx_path):
    forward = OnnxRuntimeForward(onnx_path, threads=1)
    assert forward.input_name == "images" and len(forward.output_names) == 2
    # dynamic input: the model's own size and another multiple of 32, batch of 2
    assert compare_export(mini_model, forward, input_size=64, batch_size=2) < 1e-4
    assert compare_export(mini_model, forward, input_size=(96, 64), seed=1) < 1e-4
    batch = np.random.default_rng(2).random((1, 64, 96, 3), dtype=np.float32)
    shapes = [output.shape for output in forward(batch)]
    assert shapes == [(1, 2, 3, 24), (1, 4, 6, 24)]  # heads in Keras output order (stride 32, then 16)


def test_saved_model_export_agrees_with_keras(mini_model, tmp_path):
    path = export_model(mini_model, tmp_path / "mini_saved_model", format="saved_model")
    assert (path / "saved_model.pb").is_file()
    assert compare_export(mini_model, saved_model_forward(path), input_size=64) < 1e-4
    # exporting again replaces the folder only once the new export is complete
    export_model(mini_model, path, format="saved_model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini_saved_model"]


@requires_onnx_export
def test_make_forward_engines_agree(mini_model, mini_model_path, onnx_path, tmp_path):
    batch = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    expected = keras_outputs(mini_model, batch)
    keras_forward = make_forward(mini_model_path, "keras")
    onnx_forward = make_forward(onnx_path, "onnxruntime")
    cached = make_forward(mini_model_path, "onnxruntime", cache_dir=tmp_path)  # exports to the cache
    assert keras_forward.engine == "keras" and onnx_forward.engine == "onnxruntime"
    assert cached.path == cached_onnx_path(mini_model_path, tmp_path) and cached.path.is_file()
    for forward in (keras_forward, onnx_forward, cached):
        for reference, found in zip(expected, forward(batch), strict=True):
            np.testing.assert_allclose(found, reference, atol=1e-4)


def test_bad_inputs(mini_model, tmp_path):
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        make_forward("x.keras", "tensorrt")
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export_model(mini_model, tmp_path / "x", format="tflite")
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected a Keras model file ending in .keras"):
        load_model(tmp_path / "model.h5")


@requires_onnx_export
def test_bad_onnx_inputs(mini_model, tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="broken.onnx: ONNX Runtime cannot load"):
        OnnxRuntimeForward(tmp_path / "broken.onnx")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="file"):
        export_model(mini_model, blocker / "out.onnx")


def test_default_export_paths():
    assert str(default_export_path("runs/best.keras", "onnx")) == "runs/best.onnx"
    assert str(default_export_path("runs/best.keras", "saved_model")) == "runs/best_saved_model"
