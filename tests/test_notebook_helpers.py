"""defi1.notebooks: what the notebooks ask of their runtime (device report, work folder, connectivity, the
detector of notebook 2, inline videos, step timings)."""

import os
import re
import socket
import sys
import time
import types
import zipfile
from pathlib import Path

import pytest

import defi1.notebooks as notebooks


def test_runtime_summary_on_a_cpu_says_how_to_get_a_gpu_on_colab(monkeypatch):
    monkeypatch.setattr("defi1.environment.accelerator_name", lambda: "CPU (2 cores, x86_64)")
    monkeypatch.setattr(notebooks, "in_colab", lambda: False)
    text = notebooks.runtime_summary(needs_gpu=True)
    assert text.startswith("Running on: CPU (2 cores, x86_64)") and "No GPU" in text and "Change runtime" not in text
    assert "No GPU" not in notebooks.runtime_summary()
    monkeypatch.setattr(notebooks, "in_colab", lambda: True)
    text = notebooks.runtime_summary(needs_gpu=True)
    assert "; Google Colab" in text and notebooks.COLAB_GPU_STEPS in text
    monkeypatch.setattr("defi1.environment.accelerator_name", lambda: "GPU: Tesla T4")
    assert "No GPU" not in notebooks.runtime_summary(needs_gpu=True)


def test_work_folder_is_here_unless_a_drive_folder_is_asked_on_colab(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(notebooks, "in_colab", lambda: False)
    assert notebooks.work_folder(None) == Path(".")
    assert notebooks.work_folder("MyDrive/defi1") == Path(".")
    assert "is for Google Colab" in capsys.readouterr().out
    mounted = []
    drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(drive=drive))
    monkeypatch.setattr(notebooks, "in_colab", lambda: True)
    folder = notebooks.work_folder("MyDrive/defi1", mount_point=str(tmp_path / "drive"))
    assert mounted == [str(tmp_path / "drive")]
    assert folder == tmp_path / "drive" / "MyDrive" / "defi1" and folder.is_dir()


def test_internet_available_tries_every_host():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    open_port = server.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        assert notebooks.internet_available([("127.0.0.1", open_port)], timeout=2)
        assert not notebooks.internet_available([("127.0.0.1", open_port), ("127.0.0.1", closed_port)], timeout=2)
    finally:
        server.close()


def _keras_file(path, layer_class):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"config": {"layers": [{"class_name": "%s"}]}}' % layer_class)
    return path


def test_find_trained_detector_takes_the_newest_detector(tmp_path):
    assert notebooks.find_trained_detector(tmp_path / "runs", tmp_path / "missing") is None
    older = _keras_file(tmp_path / "runs" / "a" / "training" / "best.keras", "YoloHead")
    newer = _keras_file(tmp_path / "runs" / "b" / "training" / "best.keras", "YoloHead")
    classifier = _keras_file(tmp_path / "runs" / "c" / "best.keras", "ClassifierOutput")
    (tmp_path / "runs" / "d").mkdir()
    (tmp_path / "runs" / "d" / "best.keras").write_text("not a zip")
    now = time.time()
    os.utime(older, (now - 100, now - 100))
    os.utime(newer, (now - 50, now - 50))
    os.utime(classifier, (now, now))
    assert notebooks.find_trained_detector(tmp_path / "runs") == newer


def test_show_video_embeds_the_file(tmp_path):
    pytest.importorskip("IPython")
    from defi1.realtime.video import write_synthetic_video

    path = write_synthetic_video(tmp_path / "v.mp4", frames=3, width=64, height=48)
    import base64

    html = notebooks.show_video(path, width=320)._repr_html_()
    assert 'width="320"' in html and "controls loop muted" in html
    assert f'src="data:video/mp4;base64,{base64.b64encode(path.read_bytes()).decode()}"' in html


def test_timed_prints_the_step_and_the_device(capsys):
    with notebooks.timed("training"):
        pass
    assert re.fullmatch(r"training: \d+\.\d s on .+\n", capsys.readouterr().out)


def test_measure_seconds_is_the_median_after_warmup(monkeypatch):
    from defi1 import notebooks

    clock = iter([0.0, 5.0, 10.0, 11.0, 20.0, 22.0])  # calls of 5, 1 and 2 s; the warm-up call is not timed
    monkeypatch.setattr(notebooks.time, "perf_counter", lambda: next(clock))
    calls = []
    assert notebooks.measure_seconds(lambda: calls.append(1), repeats=3, warmup=1) == 2.0
    assert len(calls) == 4
