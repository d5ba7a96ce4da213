"""Tests of ``defi1 detect convert-darknet`` / ``export-darknet`` (defi1.cli.detect_core)."""

import keras

import defi1  # noqa: F401
from defi1.cli import main
from defi1.yolo.layers import yolo_heads


def test_convert_then_export_round_trip(tiny_darknet, tmp_path, capsys):
    cfg_path, weights_path, names_path = tiny_darknet
    model_path = tmp_path / "mini.keras"
    assert main(["detect", "convert-darknet", "--cfg", str(cfg_path), "--weights", str(weights_path), "--names",
                 str(names_path), "--input-size", "128", "--out", str(model_path)]) == 0
    assert "2 heads (strides 16, 8), 2 classes, input 128x128" in capsys.readouterr().out
    heads = yolo_heads(keras.saving.load_model(model_path, safe_mode=True))
    assert heads[0].class_names == ["cat", "dog"] and heads[0].input_size == 128
    exported = tmp_path / "export" / "mini.weights"
    assert main(["detect", "export-darknet", "--model", str(model_path), "--out", str(exported)]) == 0
    assert exported.read_bytes() == weights_path.read_bytes()
    assert (tmp_path / "export" / "mini.cfg").read_text().count("width=128") == 1


def test_bad_weights_is_one_line_error(tiny_darknet, tmp_path, capsys):
    cfg_path, weights_path, _ = tiny_darknet
    short = tmp_path / "short.weights"
    short.write_bytes(weights_path.read_bytes()[:-4])
    model_path = tmp_path / "never.keras"
    assert main(["detect", "convert-darknet", "--cfg", str(cfg_path), "--weights", str(short), "--out",
                 str(model_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("defi1: error: ") and "4 bytes short" in error and error.count("\n") == 1
    assert not model_path.exists()
    assert main(["detect", "export-darknet", "--model", str(tmp_path / "missing.keras"), "--out",
                 str(tmp_path / "x.weights")]) == 1
    assert "missing.keras: no such model file" in capsys.readouterr().err
