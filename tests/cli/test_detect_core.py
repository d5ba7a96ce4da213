"""Tests of ``defi1 detect convert-darknet`` / ``export-darknet`` (defi1.cli.detect_core)."""

import keras
import pytest

import defi1  # noqa: F401
from defi1.cli import main
from defi1.yolo.darknet import write_random_darknet_weights
from defi1.yolo.layers import yolo_heads

SMALL_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""


@pytest.fixture
def darknet_pair(tmp_path):
    cfg_path = tmp_path / "small.cfg"
    cfg_path.write_text(SMALL_CFG)
    weights_path = write_random_darknet_weights(cfg_path, tmp_path / "small.weights", seed=0,
                                                header={"major": 0, "minor": 2, "revision": 0, "seen": 640})
    names_path = tmp_path / "small.names"
    names_path.write_text("cat\ndog\n")
    return cfg_path, weights_path, names_path


def test_convert_then_export_round_trip(darknet_pair, tmp_path, capsys):
    cfg_path, weights_path, names_path = darknet_pair
    model_path = tmp_path / "small.keras"
    assert main(["detect", "convert-darknet", "--cfg", str(cfg_path), "--weights", str(weights_path), "--names",
                 str(names_path), "--input-size", "128", "--out", str(model_path)]) == 0
    assert "1 heads (strides 4), 2 classes, input 128x128" in capsys.readouterr().out
    heads = yolo_heads(keras.saving.load_model(model_path, safe_mode=True))
    assert heads[0].class_names == ["cat", "dog"] and heads[0].input_size == 128
    exported = tmp_path / "export" / "small.weights"
    assert main(["detect", "export-darknet", "--model", str(model_path), "--out", str(exported)]) == 0
    assert exported.read_bytes() == weights_path.read_bytes()
    assert (tmp_path / "export" / "small.cfg").read_text().count("width=128") == 1


def test_bad_weights_is_one_line_error(darknet_pair, tmp_path, capsys):
    cfg_path, weights_path, _ = darknet_pair
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
    assert "missing.keras: model file not found" in capsys.readouterr().err
