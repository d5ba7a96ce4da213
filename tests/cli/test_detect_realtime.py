"""Tests of the command line: ``defi1 detect stream`` and ``defi1 detect export`` (defi1.cli.detect_realtime)."""

import json

import pytest

from defi1.cli import main
from defi1.realtime.video import video_properties

from ..conftest import requires_onnx_export


def test_detect_stream_saves_video_and_figures(mini_model_path, small_video, tmp_path, capsys):
    output, figures = tmp_path / "out" / "annotated.mp4", tmp_path / "figures.json"
    code = main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--save",
                 str(output), "--max-frames", "10", "--input-size", "64", "--json", str(figures)])
    assert code == 0
    assert video_properties(output) == {"frames": 10, "fps": 30.0, "width": 160, "height": 120}
    summary = json.loads(figures.read_text())
    assert summary["frames_processed"] == 10 and summary["mode"] == "every"
    assert summary["end_reason"] == "max_frames (10) reached"
    assert "10 frames from" in capsys.readouterr().out


def test_detect_stream_missing_camera(mini_model_path, capsys):
    assert main(["detect", "stream", "--model", str(mini_model_path), "--source", "7", "--reconnect", "0"]) == 1
    assert "camera 7: cannot be opened" in capsys.readouterr().err


def test_detect_stream_show_without_gui(mini_model_path, small_video, capsys):
    from defi1.realtime.sinks import gui_available

    if gui_available():
        pytest.skip("this OpenCV build has a GUI")
    assert main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--show"]) == 1
    assert "cannot show a window: this OpenCV build has no GUI support" in capsys.readouterr().err


def test_detect_stream_unwritable_save_path(mini_model_path, small_video, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--save",
                 str(blocker / "out.mp4")])
    assert code == 1 and "cannot create the output folder" in capsys.readouterr().err


@requires_onnx_export
def test_detect_export_onnx_checks_agreement(mini_model_path, tmp_path, capsys):
    out = tmp_path / "mini.onnx"
    assert main(["detect", "export", "--model", str(mini_model_path), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    check = json.loads(printed[-1])
    assert check["max_abs_difference"] < 1e-4 and check["check_input_size"] == 64 and out.is_file()
