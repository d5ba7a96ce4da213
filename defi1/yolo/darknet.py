"""Darknet ``.weights`` files in and out of Keras YOLO models.

File format (darknet's ``load_weights`` / ``save_weights``), little endian:

- header: ``major``, ``minor``, ``revision`` as int32, then ``seen`` (images seen in training) as int64 when
  ``major * 10 + minor >= 2`` and ``major < 1000`` and ``minor < 1000``, else as int32;
- then, for every ``[convolutional]`` section in cfg order, float32 arrays: with ``batch_normalize=1``:
  ``beta`` (darknet's "biases"), ``gamma`` ("scales"), ``rolling_mean``, ``rolling_variance`` (``filters`` values
  each); without: ``bias`` (``filters`` values); then the kernel, ``filters * in_channels * size * size`` values in
  ``(out, in, height, width)`` order (Keras keeps ``(height, width, in, out)``).

Other sections have no parameters. Loading consumes the file exactly: a short file, bytes left over or a cfg that
does not match raise :class:`~defi1.errors.WeightsError` stating the expected and found sizes; nothing is loaded
partially unless asked (``skip_mismatched_heads`` for another class count, ``backbone_only`` for files such as
``darknet53.conv.74`` that hold only the first layers).

Anchors and masks always come from the cfg given with the weights: the originally released ``yolov3-tiny.weights``
were trained with ``mask = 1,2,3`` for the second head, while today's ``yolov3-tiny.cfg`` says ``0,1,2``; the file
sizes are the same, so load such weights with the cfg they were trained with (edit the mask) to get their boxes right.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from defi1.errors import WeightsError
from defi1.files import atomic_write_bytes, atomic_write_text, read_names_file
from defi1.yolo.layers import yolo_heads
from defi1.yolo.model import build_from_sections, model_cfg_text, model_sections, plan_network, prepare_sections

#: Header darknet writes today (``save_weights``): version 0.2.0, ``seen`` as int64.
DEFAULT_HEADER = {"major": 0, "minor": 2, "revision": 0, "seen": 0}


@dataclasses.dataclass
class ConvolutionWeights:
    """Sizes of one convolution's parameters in a darknet file.

    Attributes:
        index: darknet layer index; ``line``: line of its section in the cfg.
        filters, in_channels, size: kernel geometry.
        batch_normalize: whether beta, gamma, mean and variance precede the kernel (else a bias).
        feeds_yolo: a head convolution (its filters depend on the class count).
        anchors_per_head: for a head convolution, the number of anchors of its ``[yolo]`` (``len(mask)``).
    """

    index: int
    line: int
    filters: int
    in_channels: int
    size: int
    batch_normalize: bool
    feeds_yolo: bool
    anchors_per_head: int = 0

    @property
    def count(self) -> int:
        """Number of float32 values of this layer in the file."""
        return self.filters * (4 if self.batch_normalize else 1) + self.filters * self.in_channels * self.size ** 2

    def describe(self) -> str:
        return f"layer {self.index} ([convolutional] at line {self.line}, {self.filters} filters)"


def convolution_weights(sections, *, source="<cfg>") -> list[ConvolutionWeights]:
    """The :class:`ConvolutionWeights` of every ``[convolutional]`` section of checked cfg ``sections``, in order."""
    plans = plan_network(sections, source=source)
    layers = []
    for plan in plans:
        if plan.type != "convolutional":
            continue
        in_channels = plans[plan.index - 1].channels if plan.index > 0 else 3
        section = plan.section
        anchors_per_head = 0
        if plan.feeds_yolo:
            yolo = plans[plan.index + 1].section
            anchors_per_head = (len(yolo.get_ints("mask", source=source)) if "mask" in yolo.options
                                else len(yolo.get_floats("anchors", source=source)) // 2)
        layers.append(ConvolutionWeights(
            index=plan.index, line=section.line, filters=plan.channels, in_channels=in_channels,
            size=section.get_int("size", 1, source=source),
            batch_normalize=bool(section.get_int("batch_normalize", 0, source=source)), feeds_yolo=plan.feeds_yolo,
            anchors_per_head=anchors_per_head))
    return layers


def header_size(header) -> int:
    """Bytes of a darknet header: 12 + 8 (int64 ``seen``) or 12 + 4 (int32, old files)."""
    return 12 + (8 if _seen_is_int64(header["major"], header["minor"]) else 4)


def _seen_is_int64(major, minor):
    return major * 10 + minor >= 2 and major < 1000 and minor < 1000


def read_header(data: bytes, *, source="<weights>") -> dict:
    """Parse the header at the start of ``data`` -> ``{"major", "minor", "revision", "seen"}``."""
    if len(data) < 12:
        raise WeightsError(f"{source}: {len(data)} bytes, too short for a darknet weights header (at least 16 bytes)")
    major, minor, revision = (int(value) for value in np.frombuffer(data[:12], dtype="<i4"))
    header = {"major": major, "minor": minor, "revision": revision, "seen": 0}
    size = header_size(header)
    if len(data) < size:
        raise WeightsError(f"{source}: {len(data)} bytes, too short for a darknet weights header of version "
                           f"{major}.{minor}.{revision} ({size} bytes)")
    header["seen"] = int(np.frombuffer(data[12:size], dtype="<i8" if size == 20 else "<i4")[0])
    return header


def encode_header(header) -> bytes:
    """Bytes of a darknet header (see :func:`read_header`)."""
    ints = np.array([header["major"], header["minor"], header["revision"]], dtype="<i4").tobytes()
    seen_type = "<i8" if _seen_is_int64(header["major"], header["minor"]) else "<i4"
    return ints + np.array([header["seen"]], dtype=seen_type).tobytes()


def _read_weights_file(weights_path):
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: darknet weights file not found")
    data = path.read_bytes()
    header = read_header(data, source=str(path))
    body = data[header_size(header):]
    if len(body) % 4:
        raise WeightsError(f"{path}: {len(body)} bytes after the {header_size(header)}-byte header, not a whole "
                           f"number of float32 values")
    return header, np.frombuffer(body, dtype="<f4"), len(data)


def _size_message(path, header, expected_floats, found_floats, layers, total_bytes):
    expected_bytes = header_size(header) + 4 * expected_floats
    message = (f"{path}: expected {expected_bytes} bytes (a {header_size(header)}-byte header and "
               f"{expected_floats} float32 values for the {len(layers)} convolution layers of the cfg), found "
               f"{total_bytes} bytes ({found_floats} values)")
    if found_floats < expected_floats:
        position = 0
        for layer in layers:
            if position + layer.count > found_floats:
                return (f"{message}: the file is {4 * (expected_floats - found_floats)} bytes short and ends inside "
                        f"{layer.describe()}; truncated file or a different cfg")
            position += layer.count
    return f"{message}: {4 * (found_floats - expected_floats)} bytes left over; a different cfg or class count?"


def _assign(model, layer, values):
    """Put one layer's darknet arrays (``values``, 1-D float32) into the model's Keras layers."""
    conv = _get_layer(model, f"conv_{layer.index}")
    kernel_shape = (layer.size, layer.size, layer.in_channels, layer.filters)
    if tuple(conv.kernel.shape) != kernel_shape:
        raise WeightsError(f"model layer {conv.name} has a kernel of shape {tuple(conv.kernel.shape)}, the cfg's "
                           f"{layer.describe()} needs {kernel_shape}: the model was not built from this cfg")
    filters = layer.filters
    position = 0

    def take(count):
        nonlocal position
        chunk = values[position:position + count]
        position += count
        return chunk

    if layer.batch_normalize:
        beta, gamma, mean, variance = (take(filters) for _ in range(4))
        batchnorm = _get_layer(model, f"batchnorm_{layer.index}")
        batchnorm.beta.assign(beta)
        batchnorm.gamma.assign(gamma)
        batchnorm.moving_mean.assign(mean)
        batchnorm.moving_variance.assign(variance)
    else:
        conv.bias.assign(take(filters))
    kernel = take(filters * layer.in_channels * layer.size ** 2)
    kernel = kernel.reshape(filters, layer.in_channels, layer.size, layer.size).transpose(2, 3, 1, 0)
    conv.kernel.assign(np.ascontiguousarray(kernel))


def _get_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        raise WeightsError(f"model {model.name!r} has no layer {name!r}: it was not built by defi1 from this "
                           f"cfg") from None


def _file_num_classes(layers, file_floats, source):
    """Class count of the network a weights file was saved from, when only the head convolutions differ."""
    fixed = sum(layer.count for layer in layers if not layer.feeds_yolo)
    heads = [layer for layer in layers if layer.feeds_yolo]
    # A head convolution has A * (5 + C) filters, each with a bias and in_channels * size^2 weights.
    per_filter = [layer.anchors_per_head * (1 + layer.in_channels * layer.size ** 2) for layer in heads]
    per_class = sum(per_filter)
    base = 5 * per_class
    remainder = file_floats - fixed - base
    if per_class == 0 or remainder <= 0 or remainder % per_class:
        raise WeightsError(f"{source}: {file_floats} float32 values do not match this cfg with any class count "
                           f"(expected {fixed} values outside the heads plus {base} + C * {per_class} for C "
                           f"classes)")
    return remainder // per_class


def load_darknet_weights(model, weights_path, *, skip_mismatched_heads=False, backbone_only=False) -> dict:
    """Load a darknet ``.weights`` file into a defi1 YOLO model (built from the matching cfg).

    Args:
        model: a model from :func:`defi1.yolo.model.build_from_cfg` (or ``build_yolov3`` / ``_tiny``).
        weights_path: the ``.weights`` file.
        skip_mismatched_heads: the file was trained for another class count (e.g. COCO's 80): load every layer
            but the convolutions feeding ``[yolo]`` sections, which keep their initial values. The file's class
            count is worked out from its size; the file must still be consumed exactly.
        backbone_only: the file holds only the first convolutions (``darknet53.conv.74``, ``yolov3-tiny.conv.15``):
            load them in order; the file must end exactly at a layer boundary before the first head convolution.

    Returns:
        A report: ``{"path", "header", "loaded_layers" (Keras conv layer names), "skipped_layers",
        "file_num_classes", "num_values"}``.

    Raises:
        WeightsError: the file's size does not match (expected and found sizes in the message).
    """
    layers = convolution_weights(model_sections(model), source=model.name)
    header, values, total_bytes = _read_weights_file(weights_path)
    path = str(weights_path)
    expected = sum(layer.count for layer in layers)
    file_num_classes = yolo_heads(model)[0].num_classes
    to_load = layers
    skipped = []
    file_counts = {layer.index: layer.count for layer in layers}
    if backbone_only:
        # Only the layers before the first head convolution can come from a backbone file.
        first_head = next((position for position, layer in enumerate(layers) if layer.feeds_yolo), len(layers))
        candidates = layers[:first_head]
        position, to_load = 0, []
        for layer in candidates:
            if position + layer.count > values.size:
                break
            to_load.append(layer)
            position += layer.count
        if position != values.size or not to_load:
            if len(to_load) == len(candidates):
                raise WeightsError(f"{path}: {values.size} values, more than the {position} values of the "
                                   f"{len(candidates)} convolution layers before the first head: not a backbone-only "
                                   f"file (load a full file without backbone_only, with skip_mismatched_heads for "
                                   f"another class count)")
            stop = candidates[len(to_load)]
            raise WeightsError(f"{path}: backbone file of {values.size} values ends inside {stop.describe()} "
                               f"({position} values make {len(to_load)} whole convolution layers); expected a "
                               f"file cut at a layer boundary such as darknet53.conv.74")
        skipped = [layer for layer in layers if layer not in to_load]
    elif values.size != expected:
        if not skip_mismatched_heads:
            raise WeightsError(_size_message(path, header, expected, values.size, layers, total_bytes))
        file_num_classes = _file_num_classes(layers, values.size, path)
        for layer in layers:
            if layer.feeds_yolo:
                file_counts[layer.index] = (layer.anchors_per_head * (5 + file_num_classes)
                                            * (1 + layer.in_channels * layer.size ** 2))
        skipped = [layer for layer in layers if layer.feeds_yolo]
        to_load = [layer for layer in layers if not layer.feeds_yolo]
    position = 0
    loading = {layer.index for layer in to_load}
    for layer in layers:
        if layer.index in loading:
            _assign(model, layer, values[position:position + layer.count])
        position += file_counts[layer.index]
    if not skipped:
        yolo_heads(model)[0].darknet_header = dict(header)
    return {
        "path": path,
        "header": header,
        "loaded_layers": [f"conv_{layer.index}" for layer in to_load],
        "skipped_layers": [f"conv_{layer.index}" for layer in skipped],
        "file_num_classes": file_num_classes if not backbone_only else None,
        "num_values": int(values.size),
    }


def load_darknet(cfg_path, weights_path, *, class_names=None, input_size=None, name=None):
    """Build the model of a darknet cfg and load its ``.weights`` (exactly; see :func:`load_darknet_weights`).

    Args:
        cfg_path: darknet ``.cfg`` (path or text).
        weights_path: darknet ``.weights``.
        class_names: list of names, or the path of a ``.names`` file; must match the cfg's ``classes``.
        input_size: default input side recorded in the heads (multiple of 32); default the cfg's width.

    Returns:
        The Keras model, whose first head records the file's header (written back by :func:`save_darknet`).
    """
    if isinstance(class_names, (str, Path)):
        class_names = read_names_file(class_names)
    sections, cfg_text, source = prepare_sections(cfg_path, input_size=input_size)
    classes = {section.get_int("classes", 20, source=source) for section in sections if section.type == "yolo"}
    if class_names is not None and classes and len(class_names) not in classes:
        raise WeightsError(f"{len(class_names)} class names given, but {source} has classes={sorted(classes)[0]}")
    model = build_from_sections(sections, cfg_text, source, class_names=class_names, name=name)
    load_darknet_weights(model, weights_path)
    return model


def darknet_arrays(model) -> list[np.ndarray]:
    """The model's convolution parameters as darknet stores them, one flat float32 array per convolution."""
    arrays = []
    for layer in convolution_weights(model_sections(model), source=model.name):
        conv = _get_layer(model, f"conv_{layer.index}")
        parts = []
        if layer.batch_normalize:
            batchnorm = _get_layer(model, f"batchnorm_{layer.index}")
            parts += [keras.ops.convert_to_numpy(variable) for variable in
                      (batchnorm.beta, batchnorm.gamma, batchnorm.moving_mean, batchnorm.moving_variance)]
        else:
            parts.append(keras.ops.convert_to_numpy(conv.bias))
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        expected = (layer.size, layer.size, layer.in_channels, layer.filters)
        if kernel.shape != expected:
            raise WeightsError(f"model layer {conv.name} has a kernel of shape {kernel.shape}; its cfg's "
                               f"{layer.describe()} needs {expected}")
        parts.append(kernel.transpose(3, 2, 0, 1))
        arrays.append(np.concatenate([part.astype("<f4").ravel() for part in parts]))
    return arrays


def save_darknet(model, weights_path, cfg_path=None):
    """Write a defi1 YOLO model as darknet ``.weights`` plus its ``.cfg`` (atomic writes).

    The header is the one recorded when the model was converted from darknet (so convert -> export gives the
    same bytes), else darknet's current ``0.2.0`` with ``seen = 0``.

    Args:
        model: a defi1 YOLO model (its first head carries the cfg).
        weights_path: output ``.weights`` path.
        cfg_path: output ``.cfg`` path; default ``weights_path`` with the suffix ``.cfg``.

    Returns:
        ``(weights_path, cfg_path)`` as ``Path`` objects.
    """
    weights_path = Path(weights_path)
    cfg_path = Path(cfg_path) if cfg_path is not None else weights_path.with_suffix(".cfg")
    if cfg_path == weights_path:
        raise ValueError(f"{weights_path}: the weights and cfg paths must differ")
    header = yolo_heads(model)[0].darknet_header or DEFAULT_HEADER
    payload = encode_header(header) + b"".join(array.tobytes() for array in darknet_arrays(model))
    atomic_write_bytes(weights_path, payload)
    atomic_write_text(cfg_path, model_cfg_text(model))
    return weights_path, cfg_path


def write_random_darknet_weights(cfg, path, seed, *, header=None):
    """Write seeded random weights for a cfg in darknet's format (for tests and benchmarks).

    Values keep activations of deep networks in a sane range: kernels ``N(0, 1 / fan_in)``, batch-norm
    ``gamma ~ U(0.5, 1)``, ``beta, mean ~ N(0, 0.1)``, ``variance ~ U(0.5, 1.5)``, biases ``N(0, 0.1)``.

    Args:
        cfg: darknet cfg path or text.
        path: output ``.weights`` path.
        seed: random seed.
        header: optional header dict (default darknet's 0.2.0 with ``seen = 0``).

    Returns:
        The output ``Path``.
    """
    sections, _, source = prepare_sections(cfg)
    rng = np.random.default_rng(seed)
    parts = [encode_header(header or DEFAULT_HEADER)]
    for layer in convolution_weights(sections, source=source):
        filters = layer.filters
        if layer.batch_normalize:
            arrays = [rng.normal(0.0, 0.1, filters), rng.uniform(0.5, 1.0, filters), rng.normal(0.0, 0.1, filters),
                      rng.uniform(0.5, 1.5, filters)]
        else:
            arrays = [rng.normal(0.0, 0.1, filters)]
        fan_in = layer.in_channels * layer.size ** 2
        arrays.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), filters * fan_in))
        parts.append(np.concatenate(arrays).astype("<f4").tobytes())
    return atomic_write_bytes(path, b"".join(parts))
