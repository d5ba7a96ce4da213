"""Tests of defi1.realtime.export: exported models (ONNX, SavedModel) agree with the Keras model."""

import numpy as np
import pytest

from defi1.realtime.engines import (OnnxRuntimeForward, OpenCVForward, export_detector, exported_onnx_path,
                                    make_forward)
from defi1.realtime.export import (compare_export, default_export_path, export_model, saved_model_forward,
                                   uses_own_onnx_writer)

from ..conftest import requires_onnx_export


@requires_onnx_export
def test_onnx_export_agrees_with_keras(mini_model, onnx_path):
    forward = OnnxRuntimeForward(onnx_path, threads=1)
    assert forward.input_name == "images" and len(forward.output_names) == 2
    # dynamic input: the model's own size and another multiple of 32, batch of 2
    assert compare_export(mini_model, forward, input_size=64, batch_size=2) < 1e-4
    assert compare_export(mini_model, forward, input_size=(96, 64), seed=1) < 1e-4
    batch = np.random.default_rng(2).random((1, 64, 96, 3), dtype=np.float32)
    shapes = [output.shape for output in forward(batch)]
    assert shapes == [(1, 4, 6, 21), (1, 8, 12, 21)]  # heads in Keras output order (stride 16, then 8)


def test_onnx_export_of_a_darknet_cfg_model_is_defi1s_own_file_and_needs_no_extra(mini_model, mini_model_path,
                                                                                  tmp_path, monkeypatch):
    """What ``detect export`` writes is the file the opencv and onnxruntime engines run (before: Keras' export through
    tf2onnx, which a plain install lacks), at the model's size or the one asked."""
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # not needed
    assert uses_own_onnx_writer(mini_model) and not uses_own_onnx_writer(mini_model, dynamic=True)
    assert not uses_own_onnx_writer(mini_model, format="saved_model")
    path = export_model(mini_model_path, tmp_path / "mini.onnx")
    engine_file = make_forward(mini_model_path, "opencv", cache_dir=tmp_path / "cache").path
    assert engine_file == exported_onnx_path(mini_model_path, (64, 64), cache_dir=tmp_path / "cache")
    assert path.read_bytes() == engine_file.read_bytes()
    assert compare_export(mini_model, OpenCVForward(path), input_size=64) < 1e-4

    result = export_detector(mini_model_path, tmp_path / "wide.onnx", input_size=(96, 64))
    assert result["writer"] == "defi1" and result["check_input_size"] == (64, 96)  # (height, width)
    assert result["max_abs_difference"] < 1e-4
    batch = np.random.default_rng(2).random((1, 64, 96, 3), dtype=np.float32)
    assert [output.shape for output in OpenCVForward(result["path"])(batch)] == [(1, 4, 6, 21), (1, 8, 12, 21)]


def test_saved_model_export_agrees_with_keras(mini_model, tmp_path):
    path = export_model(mini_model, tmp_path / "mini_saved_model", format="saved_model")
    assert (path / "saved_model.pb").is_file()
    assert compare_export(mini_model, saved_model_forward(path), input_size=64) < 1e-4
    # exporting again replaces the folder only once the new export is complete
    export_model(mini_model, path, format="saved_model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini_saved_model"]


def test_bad_inputs(mini_model, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export_model(mini_model, tmp_path / "x", format="tflite")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="file"):
        export_model(mini_model, blocker / "out.onnx")


def test_default_export_paths():
    assert str(default_export_path("runs/best.keras", "onnx")) == "runs/best.onnx"
    assert str(default_export_path("runs/best.keras", "saved_model")) == "runs/best_saved_model"
