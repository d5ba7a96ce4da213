"""Start-up: ``import defi1`` loads no backend, the backend loads quietly when needed, defi1's Keras objects are
registered as soon as Keras is, and optional extras are named when missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from defi1 import keras_runtime
from defi1.extras import MissingExtraError, import_optional

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("keras", "tensorflow", "jax", "torch")


def _python(code, **environment):
    """Run ``code`` in a fresh interpreter (the test process has Keras loaded already)."""
    env = {key: value for key, value in os.environ.items() if key != keras_runtime.VERBOSE_VARIABLE}
    env.update(environment)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          cwd=PROJECT_ROOT)


def test_import_defi1_loads_no_backend():
    result = _python("import sys, defi1; print(sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_and_the_light_commands_start_without_the_backend_and_print_nothing_on_stderr(tmp_path):
    code = ("import sys, defi1.cli\n"
            "try:\n    defi1.cli.main(['--help'])\nexcept SystemExit as stop:\n    assert stop.code == 0\n"
            "defi1.cli.main(['data', 'shapes', '--out', %r, '--images', '4', '--seed', '0'])\n"
            "defi1.cli.main(['data', 'check', '--data', %r])\n"
            "print('heavy:', sorted(m for m in %r if m in sys.modules))\n"
            % (str(tmp_path / "shapes"), str(tmp_path / "shapes" / "data.yaml"), HEAVY))
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"
    assert "usage: defi1" in result.stdout


def test_the_backend_loads_quietly_and_the_keras_objects_are_registered():
    code = ("import defi1, keras\n"
            "import numpy as np\n"
            "print(keras.ops.convert_to_numpy(keras.ops.sum(np.ones(3))))\n"
            "for name in ('defi1>YoloHead', 'defi1>YoloLoss', 'defi1>DarknetBatchNormalization'):\n"
            "    assert keras.saving.get_registered_object(name) is not None, name\n")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"
    noise = [line for line in result.stderr.splitlines()
             if any(word in line for word in ("absl", "cuda", "CUDA", "oneDNN", "cuInit", "I0000", "E0000"))]
    assert noise == []


def test_keras_imported_before_defi1_still_gets_the_objects_registered():
    result = _python("import keras, defi1\nprint(keras.saving.get_registered_object('defi1>YoloHead').__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "YoloHead"


def test_keras_first_imported_inside_a_defi1_import_starts_and_registers_later():
    # "defi1 detect predict" in a fresh process: Keras is first imported by defi1.yolo.decode, whose import is not
    # finished; registering then imported defi1.yolo.loss, which imports decode: ImportError (a circle).
    # The objects are registered before a model is loaded (load_keras_model registers them again).
    result = _python("from defi1.predict import predict_source\nimport keras\n"
                     "from defi1.keras_runtime import register_keras_objects\nregister_keras_objects()\n"
                     "print([keras.saving.get_registered_object(f'defi1>{name}').__name__ for name in "
                     "('YoloHead', 'YoloLoss')])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['YoloHead', 'YoloLoss']"


@pytest.mark.backend_agnostic
def test_a_saved_detector_loads_in_safe_mode_after_a_plain_import(tmp_path):
    from defi1.yolo.model import build_yolov3_tiny

    path = tmp_path / "tiny.keras"
    build_yolov3_tiny(num_classes=2, input_size=64).save(path)
    result = _python("import defi1, keras\n"
                     f"model = keras.saving.load_model({str(path)!r}, safe_mode=True, compile=False)\n"
                     "print(sum(type(layer).__name__ == 'YoloHead' for layer in model.layers))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2"


def test_quiet_standard_error_swallows_file_descriptor_2_and_replays_it_on_failure(capfd, monkeypatch):
    monkeypatch.delenv(keras_runtime.VERBOSE_VARIABLE, raising=False)
    with keras_runtime.quiet_standard_error():
        os.write(2, b"I0000 noise from C++\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError, match="import failed"):
        with keras_runtime.quiet_standard_error():
            os.write(2, b"the reason it failed\n")
            raise RuntimeError("import failed")
    assert capfd.readouterr().err == "the reason it failed\n"


def test_verbose_lets_backend_messages_through(capfd, monkeypatch):
    monkeypatch.setenv(keras_runtime.VERBOSE_VARIABLE, "1")
    with keras_runtime.quiet_standard_error():
        os.write(2, b"I0000 shown with --verbose\n")
    assert capfd.readouterr().err == "I0000 shown with --verbose\n"


def test_verbose_flag_sets_the_environment_variable(monkeypatch):
    from defi1.cli import main

    monkeypatch.delenv(keras_runtime.VERBOSE_VARIABLE, raising=False)
    assert main(["--verbose", "detect"]) == 2  # the group's help
    assert keras_runtime.verbose()


def test_a_missing_optional_package_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ModuleNotFoundError
    with pytest.raises(MissingExtraError, match=r'the ONNX Runtime engine needs onnxruntime, which is not '
                                                r'installed: pip install "defi1\[onnx\]"'):
        import_optional("onnxruntime", purpose="the ONNX Runtime engine")


def test_the_onnx_engine_without_onnxruntime_is_a_one_line_cli_error(monkeypatch, tmp_path, capsys):
    from defi1.cli import main
    from defi1.realtime.engines import OnnxRuntimeForward

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"not used")
    with pytest.raises(MissingExtraError, match=r'pip install "defi1\[onnx\]"'):
        OnnxRuntimeForward(onnx_file)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    from defi1.yolo.model import build_yolov3_tiny

    model_path = tmp_path / "tiny.keras"
    build_yolov3_tiny(num_classes=1, input_size=64).save(model_path)
    assert main(["detect", "export", "--model", str(model_path), "--format", "onnx", "--dynamic"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == 'defi1: error: ONNX export needs tf2onnx, which is not installed: pip install "defi1[onnx]"'
