"""Inference engines for a defi1 YOLO model: the compiled Keras forward pass or ONNX Runtime.

:func:`make_forward` returns the same kind of callable as :func:`defi1.yolo.inference.compile_forward`: it takes a
float32 NHWC batch ``(batch, height, width, 3)`` of RGB values in ``[0, 1]`` and returns the list of raw head arrays
(numpy, model output order). :class:`defi1.yolo.detector.Detector` accepts it as ``forward=``, and
:func:`load_detector` (what ``detect predict``, ``detect stream``, ``detect evaluate`` and ``bench`` call) builds the
detector on the engine chosen with ``--engine keras|onnxruntime``. The Keras engine also offers
``detect(batch)``: network and decoding in one compiled call, only the best candidates copied to the host; ONNX Runtime
returns raw heads, decoded on the host by :func:`defi1.yolo.decode.decode_heads_numpy`
(:func:`defi1.yolo.detector.infer_decoded` picks the path).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from defi1.files import load_keras_model
from defi1.realtime.export import export_model

ENGINES = ("keras", "onnxruntime")


class OnnxRuntimeForward:
    """Run an exported ``.onnx`` YOLO model with ONNX Runtime (CPU by default; CUDA first when
    ``onnxruntime-gpu`` provides it and ``providers`` is not given).

    ``threads`` sets ONNX Runtime's intra-op threads (default: every core). Raises ``FileNotFoundError`` for a
    missing file and ``ValueError`` naming it for a file ONNX Runtime cannot load.
    """

    engine = "onnxruntime"

    def __init__(self, onnx_path, *, threads: int | None = None, providers=None):
        from defi1.extras import import_optional

        onnxruntime = import_optional("onnxruntime", purpose="the ONNX Runtime engine")

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = onnxruntime.get_available_providers()
        if providers is None:
            providers = [name for name in ("CUDAExecutionProvider", "CPUExecutionProvider") if name in available]
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph ...)
            raise ValueError(f"{self.path}: ONNX Runtime cannot load this model ({error})") from error
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one image input, the model has {len(inputs)}")
        self.input_name = inputs[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.providers = self.session.get_providers()

    def __call__(self, batch) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(self.output_names, {self.input_name: batch})


def cached_onnx_path(model_path, cache_dir=None) -> Path:
    """Where the ONNX export of a ``.keras`` file is cached: ``<cache_dir>/<stem>-<hash of path, size and mtime>.onnx``
    (default cache folder: ``$DEFI1_CACHE`` or ``<tmp>/defi1-cache/onnx``)."""
    model_path = Path(model_path).resolve()
    status = model_path.stat()
    key = hashlib.sha1(f"{model_path}|{status.st_size}|{status.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("DEFI1_CACHE", Path(tempfile.gettempdir())
                                                                 / "defi1-cache")) / "onnx"
    return root / f"{model_path.stem}-{key}.onnx"


def make_forward(model_or_path, engine: str = "keras", *, mixed_precision: bool = False,
                 fold_batchnorm: bool = True, onnx_path=None, cache_dir=None, threads: int | None = None,
                 jit_compile=None):
    """A forward callable (float32 NHWC batch -> list of head arrays) for a model and an engine.

    Args:
        model_or_path: a Keras model, a ``.keras`` path, or (``onnxruntime`` only) an ``.onnx`` path.
        engine: ``"keras"`` (:func:`defi1.yolo.inference.compile_forward`: tf.function / jax.jit, batch norm
            folded, optional mixed precision on GPU) or ``"onnxruntime"``.
        onnx_path: for ``onnxruntime`` with a Keras model: use (or write) this export instead of the cache.
        cache_dir: folder of cached ONNX exports (see :func:`cached_onnx_path`).
        threads: ONNX Runtime intra-op threads.
        jit_compile: ``keras`` under TensorFlow: XLA (``None``: :data:`defi1.yolo.inference.DEFAULT_JIT_COMPILE`).

    The callable has an ``engine`` attribute (``"keras"`` or ``"onnxruntime"``).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    is_path = isinstance(model_or_path, (str, os.PathLike))
    if engine == "onnxruntime":
        if is_path and Path(model_or_path).suffix.lower() == ".onnx":
            return OnnxRuntimeForward(model_or_path, threads=threads)
        if onnx_path is None:
            if not is_path:
                onnx_path = Path(tempfile.mkdtemp(prefix="defi1-onnx-")) / f"{model_or_path.name}.onnx"
            else:
                if not Path(model_or_path).is_file():
                    raise FileNotFoundError(f"{model_or_path}: no such model file (expected a .keras file)")
                onnx_path = cached_onnx_path(model_or_path, cache_dir)
        if not Path(onnx_path).is_file():
            export_model(model_or_path, onnx_path, format="onnx")
        return OnnxRuntimeForward(onnx_path, threads=threads)
    from defi1.yolo.inference import compile_forward

    model = load_keras_model(model_or_path) if is_path else model_or_path
    forward = compile_forward(model, fold_batchnorm=fold_batchnorm, mixed_precision=mixed_precision,
                              jit_compile=jit_compile)
    if not hasattr(forward, "engine"):
        try:
            forward.engine = "keras"
        except AttributeError:  # a bound method or builtin: wrap it to carry the attribute
            inner = forward

            def forward(batch):
                return inner(batch)
            forward.engine = "keras"
    return forward


def load_detector(model=None, *, cfg=None, weights=None, names=None, engine: str = "keras",
                  mixed_precision: bool = False, **options):
    """The one way from what a user names to a :class:`~defi1.yolo.detector.Detector` running on an engine.

    Args:
        model: a ``.keras`` file or a Keras model (a defi1 YOLO model).
        cfg, weights, names: instead of ``model``, a darknet ``.weights`` with its ``.cfg`` (a file, a built-in
            name such as ``yolov3-tiny``, or ``None`` for darknet's released COCO weights:
            :mod:`defi1.yolo.released`) and a ``.names`` file or a list of class names; the Keras engine only.
        engine: ``"keras"`` (the detector's compiled forward pass) or ``"onnxruntime"`` (:func:`make_forward`; the
            export of a ``.keras`` file is cached).
        mixed_precision: Keras engine: a float16 copy of the network (GPU).
        options: :class:`~defi1.yolo.detector.Detector` settings (``input_size``, ``conf_threshold``,
            ``iou_threshold``, ``max_detections``, ``batch_size``, ``multi_label`` ...).
    Returns:
        a ``Detector`` whose ``forward`` is the engine's.
    Raises:
        ValueError: a model and darknet files both given, or neither; ``names`` with a ``.keras`` model; an ONNX
            Runtime engine for darknet files. ``FileNotFoundError`` / ``ValueError`` naming a file that is missing or
            cannot be loaded.
    """
    from defi1.yolo.detector import Detector

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if model is not None and (cfg or weights):
        raise ValueError("give either --model (a .keras file) or --cfg with --weights, not both")
    if model is None:
        if engine != "keras":
            raise ValueError(f"--engine {engine} needs --model MODEL.keras (export it with "
                             "'defi1 detect convert-darknet' first)")
        if not weights:
            raise ValueError("no model: give --model MODEL.keras, or --weights FILE.weights [--cfg FILE.cfg] "
                             "[--names FILE]")
        return Detector.from_darknet(cfg, weights, names, **options)
    if names:
        raise ValueError("--names goes with --cfg/--weights; a .keras model carries its class names")
    keras_model = load_keras_model(model) if isinstance(model, (str, os.PathLike)) else model
    forward = None
    if engine == "onnxruntime":
        forward = make_forward(model, "onnxruntime")
    elif mixed_precision:
        forward = make_forward(keras_model, "keras", mixed_precision=True)
    return Detector(keras_model, forward=forward, **options)


def installed_engines() -> list[str]:
    """The engines usable here: ``keras`` always; ``onnxruntime`` when the onnx extra (ONNX Runtime, and tf2onnx
    under TensorFlow to export ``.keras`` models) is installed."""
    import importlib.util

    from defi1.environment import keras_backend

    needed = ["onnxruntime"] + (["tf2onnx"] if keras_backend() == "tensorflow" else ["jax2onnx"])
    return ["keras"] + (["onnxruntime"] if all(importlib.util.find_spec(name) for name in needed) else [])
