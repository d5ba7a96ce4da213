"""Export a defi1 YOLO model for deployment: ONNX or a TensorFlow SavedModel, and check that the exported model
computes what the Keras model computes.

ONNX: a model built by defi1 from a darknet cfg (every built-in and converted model) is written by defi1's own writer
(:mod:`defi1.realtime.onnx_writer`: batch norm folded, no extra package, the file the ``opencv`` and ``onnxruntime``
engines run; fixed height and width, any batch). Other models, or ``dynamic=True``, go through Keras 3's
``model.export`` (tf2onnx, the ``onnx`` extra; any batch, height and width).

The exported graphs take ``images``: ``(batch, height, width, 3)`` float32 RGB in ``[0, 1]`` (height and width
multiples of 32) and return the raw head tensors in the Keras model's output order (one per ``[yolo]`` section,
``(batch, height / stride, width / stride, anchors * (5 + classes))``), so the same decoding applies.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from defi1.errors import Defi1Error
from defi1.files import AtomicOutput, ensure_output_dir, load_keras_model

FORMATS = {"onnx": ".onnx", "saved_model": ""}
INPUT_NAME = "images"


def _as_model(model_or_path):
    return load_keras_model(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path


def _input_signature(model):
    """Dynamic batch, height and width; under JAX (jax2tf cannot trace darknet's max-pool padding with symbolic
    sides) height and width are fixed to the model's input size."""
    import keras

    from defi1.environment import keras_backend
    from defi1.yolo.layers import yolo_heads

    side = yolo_heads(model)[0].input_size if keras_backend() == "jax" else None
    return [keras.InputSpec(shape=(None, side, side, 3), dtype="float32", name=INPUT_NAME)]


def default_export_path(model_path, format: str) -> Path:
    """``model.keras`` -> ``model.onnx`` (onnx) or ``model_saved_model/`` (saved_model)."""
    model_path = Path(model_path)
    if format == "onnx":
        return model_path.with_suffix(".onnx")
    return model_path.with_name(f"{model_path.stem}_saved_model")


def uses_own_onnx_writer(model, *, format: str = "onnx", dynamic: bool = False) -> bool:
    """Whether :func:`export_model` writes this model with defi1's ONNX writer (a model with a darknet cfg, ONNX,
    not ``dynamic``) rather than Keras' export."""
    from defi1.yolo.layers import yolo_heads

    return format == "onnx" and not dynamic and bool(yolo_heads(model)[0].cfg_text)


def export_model(model_or_path, out_path, *, format: str = "onnx", opset: int | None = None, input_size=None,
                 dynamic: bool = False) -> Path:
    """Export a model (object or ``.keras`` path) to ``out_path`` and return it.

    ``format="onnx"``: one ``.onnx`` file. A model with a darknet cfg (:func:`uses_own_onnx_writer`) is written by
    :func:`defi1.realtime.onnx_writer.write_onnx` at ``input_size`` (``(width, height)`` or a side; default the
    model's), batch free. Otherwise, or with ``dynamic=True``: Keras 3 ``model.export(..., format="onnx")``
    (tf2onnx under TensorFlow, jax2tf then tf2onnx under JAX; ``opset``), batch, height and width free (under JAX:
    height and width fixed to the model's input size). ``format="saved_model"``: a TensorFlow SavedModel folder
    with a ``serve`` endpoint, batch, height and width free. The result appears atomically (written beside, then
    renamed; an existing export is replaced only once the new one is complete). ``PermissionError`` when the
    folder cannot be written, ``ValueError`` for an unknown format, or an ``input_size`` that is not a multiple of
    the largest stride or that the export cannot fix (Keras' export, SavedModel).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}: expected one of {', '.join(FORMATS)}")
    out_path = Path(out_path)
    ensure_output_dir(out_path.parent)
    model = _as_model(model_or_path)
    if input_size is not None and not uses_own_onnx_writer(model, format=format, dynamic=dynamic):
        raise ValueError("an input size applies to defi1's ONNX writer only (ONNX, a model with a darknet cfg, not "
                         "dynamic); this export takes any multiple of 32")
    if uses_own_onnx_writer(model, format=format, dynamic=dynamic):
        from defi1.realtime.onnx_writer import write_onnx

        return write_onnx(model, out_path, input_size=input_size)
    if format == "onnx":
        from defi1.environment import keras_backend
        from defi1.extras import import_optional

        if keras_backend() == "tensorflow":  # Keras exports to ONNX through tf2onnx (the onnx extra)
            import_optional("tf2onnx", purpose="ONNX export")
    with AtomicOutput(out_path) as temporary:
        if format == "onnx":
            try:
                model.export(str(temporary), format="onnx", verbose=False, input_signature=_input_signature(model),
                             opset_version=opset)
            except ImportError as error:  # e.g. jax2onnx under the JAX backend
                from defi1.environment import keras_backend

                raise Defi1Error(f"{out_path}: ONNX export under the {keras_backend()} backend needs a package "
                                 f"that is not installed ({error}); or export with KERAS_BACKEND=tensorflow") \
                    from error
        else:
            model.export(str(temporary), format="tf_saved_model", verbose=False,
                         input_signature=_input_signature(model))
    return out_path


def keras_outputs(model, batch: np.ndarray) -> list[np.ndarray]:
    """The model's raw head outputs on a float32 NHWC batch, as numpy arrays (reference for comparisons)."""
    import keras

    outputs = model(keras.ops.convert_to_tensor(batch), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(output) for output in outputs]


def compare_export(model_or_path, forward, *, input_size=(416, 416), batch_size: int = 1, seed: int = 0) -> float:
    """Largest absolute difference between the Keras model's heads and ``forward``'s (e.g. an ONNX Runtime
    engine from :func:`defi1.realtime.engines.make_forward`) on a random ``(batch_size, height, width, 3)`` input in
    ``[0, 1]``. Raises ``ValueError`` when the number or shapes of the outputs differ."""
    model = _as_model(model_or_path)
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    batch = np.random.default_rng(seed).random((batch_size, height, width, 3), dtype=np.float32)
    expected = keras_outputs(model, batch)
    found = forward(batch)
    if len(found) != len(expected):
        raise ValueError(f"exported model returns {len(found)} outputs, the Keras model {len(expected)}")
    difference = 0.0
    for index, (reference, other) in enumerate(zip(expected, found)):
        if reference.shape != np.shape(other):
            raise ValueError(f"output {index}: shape {np.shape(other)} from the export, {reference.shape} from Keras")
        difference = max(difference, float(np.max(np.abs(reference - np.asarray(other)))))
    return difference


def saved_model_forward(path):
    """A forward callable (float32 NHWC batch -> list of head arrays) running an exported SavedModel's ``serve``
    endpoint with TensorFlow (to check an export; deployment uses TensorFlow Serving or TFLite tools)."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such SavedModel folder")
    loaded = tf.saved_model.load(str(path))

    def forward(batch):
        outputs = loaded.serve(tf.constant(np.asarray(batch, dtype=np.float32)))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [output.numpy() for output in outputs]
    return forward
