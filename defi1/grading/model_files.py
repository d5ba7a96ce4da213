"""Checking a submitted model file before anything loads it, and loading it safely.

A ``.keras`` file is a zip holding ``config.json`` (the architecture) and the weights. Before Keras sees it,
:func:`check_keras_file` bounds its size and entries and reads the configuration as data: a ``Lambda`` layer (it
carries Python bytecode) or an object from outside Keras and defi1 (a custom class Keras would have to import) is
refused, so nothing a student wrote is ever executed. :func:`load_submitted_keras` then loads with
``safe_mode=True`` only, a second line of defence.

A darknet model (``.cfg`` + ``.weights``) is size-checked by :func:`check_darknet_files` before the weights are
read: both files are bounded, and the weights file must have exactly the size the cfg implies.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from defi1.grading.archive import SubmissionLimits, format_bytes

#: Module prefixes of the objects a defi1 model may reference in its ``config.json``.
ALLOWED_MODULE_PREFIXES = ("keras", "defi1")
#: ``registered_name`` package of defi1's own serialisable objects.
ALLOWED_PACKAGES = ("defi1",)
_MAX_KERAS_ENTRIES = 64
_MAX_CONFIG_BYTES = 32 * (1 << 20)


class UnsafeModelError(ValueError):
    """A model file refused before loading (it could run code, or is too large); the message names the file."""


def keras_config_problems(config) -> list[str]:
    """What in a decoded ``.keras`` ``config.json`` would make Keras run or import code: ``Lambda`` layers, Python
    functions serialised as bytecode, and objects from modules other than Keras and defi1 (one message each)."""
    problems = []

    def visit(node, where):
        if isinstance(node, dict):
            class_name = node.get("class_name")
            if isinstance(class_name, str):
                name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
                label = f"{class_name} {name!r}" if name else class_name
                module = node.get("module")
                registered = node.get("registered_name")
                if class_name == "Lambda":
                    problems.append(f"Lambda layer {name!r} (it holds Python code)")
                    return  # its function is part of the same finding
                elif class_name == "__lambda__":
                    problems.append(f"a Python function serialised as code in {where}")
                elif isinstance(module, str) and module and not module.startswith(ALLOWED_MODULE_PREFIXES):
                    problems.append(f"unknown custom object {label} from module {module!r}")
                elif isinstance(registered, str) and registered not in (class_name,) and (
                        registered.split(">", 1)[0] not in ALLOWED_PACKAGES):
                    problems.append(f"unknown custom object {registered!r}")
            for key, value in node.items():
                visit(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{where}[{index}]")

    visit(config, "")
    return list(dict.fromkeys(problems))


def check_keras_file(path, limits: SubmissionLimits | None = None) -> None:
    """Refuse a ``.keras`` file that could run code or exhaust memory (see the module docstring).

    Raises :class:`UnsafeModelError` naming the file and the first reasons; ``FileNotFoundError`` when absent.
    """
    limits = limits or SubmissionLimits()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    size = path.stat().st_size
    if size > limits.max_model_bytes:
        raise UnsafeModelError(f"{path}: {format_bytes(size)}, more than the {format_bytes(limits.max_model_bytes)} "
                               "a model file may hold")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            declared = sum(info.file_size for info in infos)
            if len(infos) > _MAX_KERAS_ENTRIES or declared > 2 * limits.max_model_bytes:
                raise UnsafeModelError(f"{path}: {len(infos)} entries, {format_bytes(declared)} uncompressed: not a "
                                       "plausible .keras file")
            names = {info.filename: info for info in infos}
            if "config.json" not in names:
                raise UnsafeModelError(f"{path}: no config.json inside (not a Keras 3 .keras file)")
            if names["config.json"].file_size > _MAX_CONFIG_BYTES:
                raise UnsafeModelError(f"{path}: config.json of {format_bytes(names['config.json'].file_size)}")
            with archive.open("config.json") as stream:
                text = stream.read(_MAX_CONFIG_BYTES + 1)
    except zipfile.BadZipFile as error:
        raise UnsafeModelError(f"{path}: not a .keras file (not a zip archive: {error})") from error
    try:
        config = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsafeModelError(f"{path}: config.json is not valid JSON ({error})") from error
    problems = keras_config_problems(config)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UnsafeModelError(f"{path}: refused, not loaded: {shown}")


def load_submitted_keras(path, limits: SubmissionLimits | None = None):
    """Check (:func:`check_keras_file`) then load a submitted ``.keras`` model with ``safe_mode=True``, uncompiled.

    Raises :class:`UnsafeModelError` for a refused file or one that Keras's safe mode refuses (unknown objects,
    code), ``ValueError`` naming the file for any other load failure.
    """
    import keras

    import defi1  # noqa: F401  (registers defi1's layers, the only custom objects allowed)

    check_keras_file(path, limits)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (TypeError, ValueError) as error:
        message = str(error)
        if "safe_mode" in message or "Could not locate" in message or "Lambda" in message:
            raise UnsafeModelError(f"{path}: refused by Keras's safe mode ({message.splitlines()[0][:200]})") from error
        raise ValueError(f"{path}: cannot load the Keras model ({message.splitlines()[0][:200]})") from error
    except Exception as error:  # corrupt weights and the like: h5py, zipfile and OS errors of every kind
        raise ValueError(f"{path}: cannot load the Keras model ({error.__class__.__name__}: "
                         f"{str(error).splitlines()[0][:200] if str(error) else ''})") from error


def is_detector(model) -> bool:
    """True for a defi1 YOLO model (it has :class:`~defi1.yolo.layers.YoloHead` layers)."""
    from defi1.yolo.layers import yolo_heads

    try:
        return bool(yolo_heads(model))
    except ValueError:
        return False


def check_darknet_files(cfg_path, weights_path, limits: SubmissionLimits | None = None) -> None:
    """Bound a darknet ``.cfg`` and ``.weights`` before parsing them: both sizes within the limits, and the weights
    file exactly as large as the cfg's layers need (header + 4 bytes per value). Raises :class:`UnsafeModelError`."""
    from defi1.yolo.darknet import convolution_weights, header_size
    from defi1.yolo.model import prepare_sections

    limits = limits or SubmissionLimits()
    cfg_path, weights_path = Path(cfg_path), Path(weights_path)
    for path, limit in ((cfg_path, limits.max_cfg_bytes), (weights_path, limits.max_model_bytes)):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such darknet file")
        if path.stat().st_size > limit:
            raise UnsafeModelError(f"{path}: {format_bytes(path.stat().st_size)}, more than the "
                                   f"{format_bytes(limit)} allowed")
    sections, _, source = prepare_sections(cfg_path)
    expected_values = sum(layer.count for layer in convolution_weights(sections, source=source))
    with open(weights_path, "rb") as handle:
        start = handle.read(12)
    if len(start) < 12:
        raise UnsafeModelError(f"{weights_path}: too short for a darknet weights file")
    major, minor = int.from_bytes(start[0:4], "little"), int.from_bytes(start[4:8], "little")
    expected_bytes = header_size({"major": major, "minor": minor}) + 4 * expected_values
    found = weights_path.stat().st_size
    if found != expected_bytes:
        raise UnsafeModelError(f"{weights_path}: {found} bytes, but {cfg_path.name} needs {expected_bytes} "
                               f"({expected_values} values and the header): not parsed")
