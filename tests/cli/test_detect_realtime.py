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


def test_detect_stream_model_workers(mini_model_path, small_video, tmp_path, capsys):
    figures = tmp_path / "figures.json"
    assert main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--engine",
                 "keras", "--model-workers", "2", "--input-size", "64", "--json", str(figures)]) == 0
    summary = json.loads(figures.read_text())
    assert summary["model_workers"] == 2 and summary["frames_processed"] == 30
    assert "(2 frames at once)" in capsys.readouterr().out
    assert main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--engine",
                 "opencv", "--model-workers", "2", "--input-size", "64"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.endswith("the opencv engine cannot run 2 frames at once: use one model worker (--model-workers 1), "
                          "or the keras or onnxruntime engine") and len(error.splitlines()) == 1


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
def test_detect_export_onnx_dynamic_checks_agreement(mini_model_path, tmp_path, capsys):
    out = tmp_path / "mini.onnx"
    assert main(["detect", "export", "--model", str(mini_model_path), "--format", "onnx", "--dynamic", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"exported {mini_model_path} -> {out} (onnx, Keras export)"
    check = json.loads(printed[-1])
    assert check["max_abs_difference"] < 1e-4 and check["check_input_size"] == 64 and out.is_file()


def test_detect_export_onnx_writes_defi1s_file_at_the_size_asked(mini_model_path, tmp_path, capsys):
    out = tmp_path / "mini.onnx"
    assert main(["detect", "export", "--model", str(mini_model_path), "--input-size", "96", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"exported {mini_model_path} -> {out} (onnx, defi1's ONNX writer)"
    check = json.loads(printed[-1])
    assert check["max_abs_difference"] < 1e-4 and check["check_input_size"] == 96 and out.is_file()


def test_detect_export_refuses_an_input_size_it_cannot_write_in_one_line(mini_model_path, tmp_path, capsys):
    """Before: --input-size 100 wrote an ONNX file that failed the check with a TensorFlow traceback."""
    out = tmp_path / "mini.onnx"
    assert main(["detect", "export", "--model", str(mini_model_path), "--input-size", "100", "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"defi1: error: {mini_model_path}: ONNX input size 100x100 is not a multiple of the head stride 16"
    assert not out.exists()
    assert main(["detect", "export", "--model", str(mini_model_path), "--format", "saved_model", "--input-size",
                 "96", "--out", str(tmp_path / "saved")]) == 1
    assert "an input size applies to defi1's ONNX writer only" in capsys.readouterr().err
    assert not (tmp_path / "saved").exists()


def test_detect_stream_skips_a_damaged_video_frame_and_reports_it(mini_model_path, damaged_video, tmp_path, capsys):
    figures = tmp_path / "figures.json"
    code = main(["detect", "stream", "--model", str(mini_model_path), "--source", str(damaged_video),
                 "--input-size", "64", "--json", str(figures)])
    assert code == 0
    summary = json.loads(figures.read_text())
    assert summary["frames_processed"] == 59 and summary["frames_unreadable"] == 1
    assert summary["end_reason"] == "end of file"
    assert "59 frames from" in capsys.readouterr().out


def test_detect_stream_on_a_folder_skips_a_bad_image_as_predict_does(mini_model_path, tmp_path, capsys):
    import numpy as np

    from defi1.images import write_image

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        write_image(folder / f"img_{index}.png", np.full((48, 64, 3), 60 * index, dtype=np.uint8))
    (folder / "img_1b.jpg").write_bytes(b"\xff\xd8 truncated")
    figures = tmp_path / "figures.json"
    code = main(["detect", "stream", "--model", str(mini_model_path), "--source", str(folder), "--input-size", "64",
                 "--json", str(figures)])
    assert code == 0
    summary = json.loads(figures.read_text())
    assert summary["frames_processed"] == 3 and summary["frames_unreadable"] == 1
    assert summary["skipped"] == [str(folder / "img_1b.jpg")]
    assert f"skipped {folder / 'img_1b.jpg'}" in capsys.readouterr().out


def defi1_subprocess(*arguments, **options):
    """``python -m defi1 ARGUMENTS`` in a child process (standard output and error piped)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for variable in ("DEFI1_VERBOSE", "OPENCV_FFMPEG_LOGLEVEL"):  # as a user's shell has them
        environment.pop(variable, None)
    return subprocess.Popen([sys.executable, "-m", "defi1", *map(str, arguments)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment, **options)


def test_ctrl_c_on_a_stream_still_prints_the_summary_and_writes_the_figures(mini_model_path, tmp_path):
    import re
    import signal
    import threading
    import time

    from defi1.realtime.video import write_synthetic_video

    video = write_synthetic_video(tmp_path / "long.avi", frames=600, width=96, height=64)  # 20 s played in real time
    figures, recording = tmp_path / "figures.json", tmp_path / "rec.avi"
    # Ctrl-C as at a terminal, even when the tests run in the background: a shell starts a background job with
    # SIGINT ignored, the children inherit that, and Python then installs no KeyboardInterrupt handler.
    process = defi1_subprocess("detect", "stream", "--model", mini_model_path, "--source", video, "--mode", "drop",
                               "--input-size", "64", "--json", figures, "--save", recording,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    errors = bytearray()

    def read_errors():
        while chunk := process.stderr.read1(256):
            errors.extend(chunk)
    threading.Thread(target=read_errors, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # wait for tqdm to count 5 frames
        counts = [int(count) for count in re.findall(rb"frames: (\d+)frame", bytes(errors))]
        if counts and max(counts) >= 5:
            break
        time.sleep(0.1)
    assert process.poll() is None, bytes(errors).decode(errors="replace")
    process.send_signal(signal.SIGINT)
    output = process.stdout.read().decode()
    assert process.wait(timeout=60) == 130
    summary = json.loads(figures.read_text())
    assert 5 <= summary["frames_processed"] < 600 and summary["end_reason"] == "interrupted (Ctrl-C)"
    assert f"{summary['frames_processed']} frames from" in output and "ended: interrupted (Ctrl-C)" in output
    assert video_properties(recording)["frames"] == summary["frames_processed"]


def test_ffmpeg_messages_stay_out_of_the_terminal_unless_verbose(mini_model_path, tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "clip.mp4"  # OpenCV's own mp4v writer puts the moov atom (the index) at the end
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (96, 64))
    for index in range(10):
        writer.write(np.full((64, 96, 3), index * 20, dtype=np.uint8))
    writer.release()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # a download cut short: no moov atom
    quiet = defi1_subprocess("detect", "stream", "--model", mini_model_path, "--source", truncated)
    _, errors = quiet.communicate(timeout=120)
    assert quiet.returncode == 1
    assert errors.decode().strip().splitlines() == [
        f"defi1: error: {truncated}: OpenCV cannot open this video (corrupt or unsupported format)"]
    loud = defi1_subprocess("--verbose", "detect", "stream", "--model", mini_model_path, "--source", truncated)
    _, errors = loud.communicate(timeout=120)
    assert "moov atom not found" in errors.decode()


def test_detect_stream_on_the_opencv_engine_says_so(mini_model_path, small_video, tmp_path, capsys):
    figures = tmp_path / "figures.json"
    code = main(["detect", "stream", "--model", str(mini_model_path), "--source", str(small_video), "--engine",
                 "opencv", "--max-frames", "5", "--json", str(figures)])
    assert code == 0
    output = capsys.readouterr().out
    assert output.startswith("engine: opencv, ") and "(--engine)" in output.splitlines()[0]
    summary = json.loads(figures.read_text())
    assert summary["engine"] == "opencv" and summary["frames_processed"] == 5
