"""Fast inference for defi1 YOLO models: batch-norm folding and a compiled forward pass per Keras backend.

:func:`fold_batchnorm` returns an inference copy of a model in which each darknet batch norm is merged into the
convolution before it: with ``s = gamma / (sqrt(variance) + 1e-6)`` (darknet's formula), ``kernel' = kernel * s``
(per output channel) and ``bias' = beta - mean * s``. The copy computes the same function within float32 rounding,
with one layer fewer per convolution.

:func:`compile_forward` wraps a model into a :class:`CompiledForward` callable: float32 NHWC numpy batch in, list of
numpy head arrays out. Its :meth:`CompiledForward.detect` runs the forward pass AND the decoding
(:func:`defi1.yolo.decode.decode_heads`, ``keras.ops``) in the same compiled call, keeps on the device only the
``max_candidates`` best-scoring predictions of each image (``top_k``), and copies just those to the host, where
:func:`defi1.yolo.decode.postprocess` thresholds them and runs NMS. It compiles once per input shape for the active
backend (TensorFlow: ``tf.function`` with a fixed input signature, XLA on request; JAX: ``jax.jit`` over
``model.stateless_call``; PyTorch: eager under ``torch.no_grad``), never ``model.predict`` per call. This module is a
backend adapter: it imports the backend library lazily, inside the branch that uses it; the model and the decoding
stay pure ``keras.ops``.

Default compilation per backend (measured on 2 shared CPU cores, batch 1 at 416, TensorFlow 2.21 with oneDNN, calls
interleaved with OpenCV's in ``benchmarks/bench_yolo_inference.py --jit-compile``): XLA (``jit_compile=True``) gave
tiny-YOLOv3 forward 111-121 ms against 127-130 ms for the plain graph, but YOLOv3 1703 ms against 1613 ms, and
non-interleaved runs were split either way: a gain of a few percent at most, within the noise of the shared machine,
for a compilation two to three times longer (tiny at 416: 11-15 s against 5-8 s; every new batch shape compiles
again). The default under TensorFlow is therefore the plain ``tf.function`` graph; ``jit_compile=True`` is the
switch (worth trying on a GPU). JAX always compiles with XLA (``jax.jit``), decoding included, on the device.
"""

from __future__ import annotations

import keras
import numpy as np

from defi1.yolo.decode import decode_heads
from defi1.yolo.layers import DarknetBatchNormalization, yolo_heads
from defi1.yolo.model import (build_from_sections, check_input_shape, darknet_layer_index, model_cfg_text,
                              model_sections, network_stride)
from defi1.yolo.heads import head_specs

#: Predictions per image kept on the device by :meth:`CompiledForward.detect` (the best scores): far more than the
#: detections of any real image, far fewer than the 10647 (YOLOv3) or 2535 (tiny) rows at 416.
DEFAULT_MAX_CANDIDATES = 1000

#: Default of ``jit_compile`` per backend (see the module docstring for the measurements behind it).
DEFAULT_JIT_COMPILE = {"tensorflow": False}


def fold_batchnorm(model, *, mixed_precision=False) -> keras.Model:
    """Inference copy of a defi1 YOLO model with batch norm folded into the convolutions.

    Args:
        model: a model built by :mod:`defi1.yolo.model` (it carries its cfg in its first head).
        mixed_precision: build the copy with the ``"mixed_float16"`` dtype policy (float16 compute, float32
            variables); useful on GPUs, slow on most CPUs.

    Returns:
        A new ``keras.Model`` with the same inputs, outputs and :class:`~defi1.yolo.layers.YoloHead` metadata.
    """
    return _inference_copy(model, fold=True, mixed_precision=mixed_precision)


def _inference_copy(model, *, fold, mixed_precision):
    heads = yolo_heads(model)
    copy = build_from_sections(model_sections(model), model_cfg_text(model), model.name,
                               class_names=heads[0].class_names, name=f"{model.name}_inference", fold_batchnorm=fold,
                               dtype="mixed_float16" if mixed_precision else None,
                               darknet_header=heads[0].darknet_header)
    for head, copied_head in zip(heads, yolo_heads(copy)):
        copied_head.input_size = head.input_size
    for layer in copy.layers:
        if not layer.weights:
            continue
        source_layer = model.get_layer(layer.name)
        index = darknet_layer_index(layer.name)
        batchnorm = _find_batchnorm(model, index) if fold and layer.name.startswith("conv_") else None
        if batchnorm is None:
            layer.set_weights(source_layer.get_weights())
            continue
        kernel = keras.ops.convert_to_numpy(source_layer.kernel).astype(np.float64)
        bias = (keras.ops.convert_to_numpy(source_layer.bias).astype(np.float64) if source_layer.use_bias
                else np.zeros(kernel.shape[-1]))
        gamma, beta, mean, variance = (keras.ops.convert_to_numpy(variable).astype(np.float64) for variable in (
            batchnorm.gamma, batchnorm.beta, batchnorm.moving_mean, batchnorm.moving_variance))
        scale = gamma / (np.sqrt(variance) + batchnorm.epsilon)
        layer.set_weights([(kernel * scale).astype(np.float32), (beta + (bias - mean) * scale).astype(np.float32)])
    return copy


def _find_batchnorm(model, index):
    try:
        layer = model.get_layer(f"batchnorm_{index}")
    except ValueError:
        return None
    return layer if isinstance(layer, DarknetBatchNormalization) else None


class CompiledForward:
    """A compiled forward pass: ``forward(batch) -> [head_0, head_1, ...]`` as float32 numpy arrays, and
    ``forward.detect(batch) -> (boxes, objectness, class_probabilities)``, forward pass and decoding in one call.

    ``batch`` is ``(batch, height, width, 3)`` (or one ``(height, width, 3)`` image) RGB in ``[0, 1]``, sides
    multiples of :attr:`stride`; anything else raises ``ValueError`` (inputs are not rounded: letterbox first).
    Head ``k`` is ``(batch, height / stride_k, width / stride_k, A * (5 + C))`` raw logits.

    Attributes:
        model: the inference model actually run (batch norm folded when asked).
        backend: the Keras backend it was compiled for.
        stride: the network's largest stride.
        heads: the :class:`~defi1.yolo.heads.HeadSpec` of each output (used by :meth:`detect`).
        jit_compile: TensorFlow: whether XLA compiles the function.
        max_candidates: predictions per image that :meth:`detect` copies to the host.
        engine: ``"keras"``, as the engines of :mod:`defi1.realtime.engines` name themselves.
    """

    engine = "keras"

    def __init__(self, model, *, jit_compile=None, max_candidates=DEFAULT_MAX_CANDIDATES):
        self.model = model
        self.backend = keras.backend.backend()
        self.stride = network_stride(model)
        self.heads = head_specs(model)
        self.jit_compile = DEFAULT_JIT_COMPILE.get(self.backend, False) if jit_compile is None else bool(jit_compile)
        self.max_candidates = int(max_candidates) if max_candidates else None
        self._functions = {}
        self._jax_functions = {}
        self._jax_values = None

    def __call__(self, images):
        outputs = self._run(self._prepare(images), decode=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]  # a Keras model with a single output returns it bare
        return [np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float32) for output in outputs]

    def detect(self, images):
        """Forward pass and decoding in one compiled call.

        Returns numpy float32 ``(boxes, objectness, class_probabilities)``: ``(batch, K, 4)``
        ``[x_min, y_min, x_max, y_max]`` pixels of the network input, ``(batch, K)`` and ``(batch, K, C)`` in
        ``[0, 1]``, for the ``K = min(max_candidates, N)`` predictions of each image with the highest score
        (objectness × best class probability), by decreasing score; all ``N`` rows of
        :func:`~defi1.yolo.decode.decode_heads` (in its order) when ``max_candidates`` is ``None``. Feed them to
        :func:`defi1.yolo.decode.postprocess`.
        """
        outputs = self._run(self._prepare(images), decode=True)
        return tuple(np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float32) for output in outputs)

    def warmup(self, shape=(1, 416, 416, 3), *, detect=False):
        """Compile for ``shape`` now (the first call of each shape traces and compiles); ``detect``: the
        :meth:`detect` function (forward pass and decoding)."""
        batch = np.zeros(shape, dtype=np.float32)
        self.detect(batch) if detect else self(batch)
        return self

    def _prepare(self, images):
        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        check_input_shape(batch.shape, max_stride=self.stride, source=f"{self.model.name} input")
        return np.ascontiguousarray(batch)

    def _graph(self, outputs, decode):
        """What runs after the network inside the compiled function: nothing, or the decoding and the top-K."""
        if not decode:
            return outputs
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        outputs = [keras.ops.cast(output, "float32") for output in outputs]
        boxes, objectness, class_probabilities = decode_heads(outputs, self.heads)
        return select_candidates(boxes, objectness, class_probabilities, max_candidates=self.max_candidates)

    def _run(self, batch, decode):
        if self.backend == "tensorflow":
            return self._tensorflow(batch, decode)
        if self.backend == "jax":
            return self._jax(batch, decode)
        if self.backend == "torch":
            return self._torch(batch, decode)
        return self._graph(self.model(batch, training=False), decode)

    def _tensorflow(self, batch, decode):
        import tensorflow as tf

        key = (batch.shape, decode)
        function = self._functions.get(key)
        if function is None:
            model, graph = self.model, self._graph

            def forward(inputs):
                return graph(model(inputs, training=False), decode)

            function = tf.function(forward, input_signature=[tf.TensorSpec(batch.shape, tf.float32)],
                                   jit_compile=self.jit_compile)
            self._functions[key] = function
        return function(tf.constant(batch))

    def _jax(self, batch, decode):
        import jax

        function = self._jax_functions.get(decode)
        if function is None:
            model, graph = self.model, self._graph

            def forward(trainable_values, non_trainable_values, inputs):
                outputs, _ = model.stateless_call(trainable_values, non_trainable_values, inputs, training=False)
                return graph(outputs, decode)

            function = self._jax_functions[decode] = jax.jit(forward)
        if self._jax_values is None:
            self._jax_values = ([variable.value for variable in self.model.trainable_variables],
                                [variable.value for variable in self.model.non_trainable_variables])
        return function(*self._jax_values, batch)

    def _torch(self, batch, decode):
        import torch

        with torch.no_grad():
            return self._graph(self.model(batch, training=False), decode)


def select_candidates(boxes, objectness, class_probabilities, *, max_candidates):
    """The ``max_candidates`` predictions of each image with the highest score (objectness × best class
    probability), by decreasing score (``keras.ops``; runs on the device inside :meth:`CompiledForward.detect`).

    Args:
        boxes: ``(batch, N, 4)`` xyxy network pixels. objectness: ``(batch, N)``. class_probabilities:
            ``(batch, N, C)``.
        max_candidates: ``K``; ``None`` (or ``K >= N``) keeps every row, in its order.
    Returns:
        ``(boxes (batch, K, 4), objectness (batch, K), class_probabilities (batch, K, C))``.
    """
    ops = keras.ops
    num_rows = boxes.shape[1]
    if max_candidates is None or num_rows is None or max_candidates >= num_rows:
        return boxes, objectness, class_probabilities
    boxes, objectness, class_probabilities = (ops.convert_to_tensor(values)
                                              for values in (boxes, objectness, class_probabilities))
    best = ops.multiply(objectness, ops.max(class_probabilities, axis=-1))
    _, indices = ops.top_k(best, max_candidates, sorted=True)  # (batch, K)
    batch_size = ops.shape(boxes)[0]
    flat = ops.reshape(indices + ops.arange(batch_size, dtype=indices.dtype)[:, None] * num_rows, (-1,))

    def gather(values):
        rows = ops.reshape(values, (-1,) + tuple(values.shape[2:]))
        return ops.reshape(ops.take(rows, flat, axis=0), (batch_size, max_candidates) + tuple(values.shape[2:]))

    return gather(boxes), gather(objectness), gather(class_probabilities)


def compile_forward(model, *, fold_batchnorm=True, mixed_precision=False, jit_compile=None,
                    max_candidates=DEFAULT_MAX_CANDIDATES) -> CompiledForward:
    """Compile a defi1 YOLO model for inference (see :class:`CompiledForward`; ``forward(batch)`` gives the raw
    heads, ``forward.detect(batch)`` the decoded best candidates, decoding compiled with the network).

    Args:
        model: a defi1 YOLO ``keras.Model`` (trained or converted from darknet).
        fold_batchnorm: run a copy with batch norm folded into the convolutions (:func:`fold_batchnorm`); the
            outputs equal the original model's within float32 rounding.
        mixed_precision: run the copy in ``mixed_float16`` (GPU); outputs are returned as float32.
        jit_compile: TensorFlow only: compile with XLA; ``None``: the backend's default
            (:data:`DEFAULT_JIT_COMPILE`: no XLA under TensorFlow, see the module docstring).
        max_candidates: predictions per image that :meth:`CompiledForward.detect` returns (``None``: all).

    Returns:
        A :class:`CompiledForward`. The weights are copied (when folding or in mixed precision): later training of
        ``model`` does not change it; compile again after training.
    """
    if fold_batchnorm or mixed_precision:
        model = _inference_copy(model, fold=fold_batchnorm, mixed_precision=mixed_precision)
    return CompiledForward(model, jit_compile=jit_compile, max_candidates=max_candidates)
