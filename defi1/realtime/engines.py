"""Inference engines for a defi1 YOLO model: the compiled Keras forward pass, OpenCV's DNN module, ONNX Runtime.

:func:`make_forward` returns the same kind of callable as :func:`defi1.yolo.inference.compile_forward`: it takes a
float32 NHWC batch ``(batch, height, width, 3)`` of RGB values in ``[0, 1]`` and returns the list of raw head arrays
(numpy, model output order). :class:`defi1.yolo.detector.Detector` accepts it as ``forward=``, and
:func:`load_detector` (what ``detect predict``, ``detect stream``, ``detect evaluate`` and ``bench`` call) builds the
detector on the engine chosen with ``--engine auto|keras|opencv|onnxruntime``:

* ``keras``: the compiled Keras pass (TensorFlow graph with oneDNN, or JAX); on a GPU the only sensible choice. It
  also offers ``detect(batch)``: network and decoding in one compiled call.
* ``opencv``: OpenCV's DNN module (in the base install) running the ONNX file that defi1 writes itself
  (:mod:`defi1.realtime.onnx_writer`: batch norm folded, no ``onnx`` package needed).
* ``onnxruntime``: ONNX Runtime (the ``onnx`` extra) on the same file.
* ``auto`` (the command line's default): ``keras`` when the backend sees a GPU; on a CPU the fastest engine
  installed, measured on this machine for this model (:func:`choose_engine`, a few interleaved calls of each; the
  choice is cached per model file, input size and machine).

The ONNX file of a ``.keras`` model is written next to it, named after the SHA-256 of the model file and the input
size (:func:`exported_onnx_path`), so a retrained model gets a new export and an unchanged one is never exported
twice. Raw heads of OpenCV and ONNX Runtime are decoded on the host by :func:`defi1.yolo.decode.decode_heads_numpy`
(:func:`defi1.yolo.detector.infer_decoded` picks the path).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from defi1.choices import ENGINE_CHOICES, ENGINES  # noqa: F401 (re-exported)
from defi1.files import atomic_write_json, load_keras_model
from defi1.fingerprint import sha256_file
from defi1.realtime.export import (compare_export, default_export_path, export_model, saved_model_forward,
                                   uses_own_onnx_writer)


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
        # Idle threads that spin would take the cores the capture and post-processing threads need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = options.intra_op_num_threads
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
        self._replicas = {}

    def __call__(self, batch) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(self.output_names, {self.input_name: batch})

    def replicas(self, count: int) -> list:
        """``count`` sessions of the same file, for ``count`` frames at once (:func:`parallel_forwards`): each has
        ``max(1, threads // count)`` intra-op threads and the same providers. Built once per ``count`` (the same
        sessions on every call); ``count <= 1``: ``[self]``."""
        if count <= 1:
            return [self]
        if count not in self._replicas:
            threads = max(1, self.threads // count)
            self._replicas[count] = [OnnxRuntimeForward(self.path, threads=threads, providers=self.providers)
                                     for _ in range(count)]
        return self._replicas[count]


class OpenCVForward:
    """Run an ONNX YOLO model written by :mod:`defi1.realtime.onnx_writer` with OpenCV's DNN module (CPU; OpenCV 4.9
    or newer, 5 included). The network runs one image at a time (a batch is split: OpenCV gains nothing from
    batching on a CPU). ``threads``: ``cv2.setNumThreads`` (process-wide; default OpenCV's, every core).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming it for a file OpenCV cannot load.
    """

    engine = "opencv"

    def __init__(self, onnx_path, *, threads: int | None = None):
        import cv2

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        if threads:
            cv2.setNumThreads(int(threads))
        try:
            self.net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
            raise ValueError(f"{self.path}: OpenCV's DNN module cannot load this model ({reason})") from error
        names = list(self.net.getUnconnectedOutLayersNames())
        heads = sorted((name for name in names if name.startswith("head_")), key=lambda name: int(name[5:]))
        self.output_names = heads if len(heads) == len(names) else names
        self.threads = cv2.getNumThreads()

    def __call__(self, batch) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        results = []
        for image in batch:
            self.net.setInput(image[None])
            results.append([np.array(output, dtype=np.float32) for output in self.net.forward(self.output_names)])
        return [np.concatenate(outputs) if len(outputs) > 1 else outputs[0] for outputs in zip(*results)]


def parallel_forwards(forward, count: int) -> list:
    """``count`` forward passes of the same network that may run at the same time, each on its own frame (the
    model stages of :func:`defi1.realtime.stream.run_stream` with ``model_workers``).

    ONNX Runtime: ``count`` sessions sharing the cores (:meth:`OnnxRuntimeForward.replicas`). Keras: the same
    compiled pass ``count`` times (TensorFlow and JAX run concurrent calls of one compiled function). ``count <= 1``:
    ``[forward]``. Raises ``ValueError`` for an engine that cannot (OpenCV's DNN: its thread count is process-wide
    and a network runs one input at a time; any other callable).
    """
    if count <= 1:
        return [forward]
    replicas = getattr(forward, "replicas", None)
    if replicas is not None:
        return replicas(count)
    engine = getattr(forward, "engine", None)
    if engine == "keras":
        return [forward] * count
    raise ValueError(f"the {engine or 'given'} engine cannot run {count} frames at once: use one model worker "
                     "(--model-workers 1), or the keras or onnxruntime engine")


def cache_root() -> Path:
    """defi1's cache folder for exports and engine choices: ``$DEFI1_CACHE`` or ``<tmp>/defi1-cache``."""
    return Path(os.environ.get("DEFI1_CACHE", Path(tempfile.gettempdir()) / "defi1-cache"))


def _model_key(model) -> str:
    """A SHA-256 of a Keras model's weights and cfg (for models that are not a file)."""
    import keras

    from defi1.yolo.layers import yolo_heads

    digest = hashlib.sha256((yolo_heads(model)[0].cfg_text or model.name).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def exported_onnx_path(model_or_path, input_size, *, cache_dir=None) -> Path:
    """Where defi1's ONNX export (:mod:`defi1.realtime.onnx_writer`) of a model at ``input_size`` ``(width,
    height)`` lives: beside a ``.keras`` file, ``<stem>.<sha256 of the file, 16 digits>.<W>x<H>.onnx`` (in the cache
    folder when that folder cannot be written, or for an in-memory model: keyed by its weights)."""
    from defi1.realtime.onnx_writer import WRITER_VERSION

    width, height = input_size
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        name = f"{path.stem}.{sha256_file(path)[:16]}.{width}x{height}.v{WRITER_VERSION}.onnx"
        folder = Path(cache_dir) if cache_dir else path.parent
        if cache_dir is None and not os.access(folder, os.W_OK):
            folder = cache_root() / "onnx"
        return folder / name
    name = f"{model_or_path.name}.{_model_key(model_or_path)[:16]}.{width}x{height}.v{WRITER_VERSION}.onnx"
    return (Path(cache_dir) if cache_dir else cache_root() / "onnx") / name


def cached_onnx_path(model_path, cache_dir=None) -> Path:
    """Where the ONNX export of a ``.keras`` file is cached: ``<cache_dir>/<stem>-<hash of path, size and mtime>.onnx``
    (default cache folder: ``$DEFI1_CACHE`` or ``<tmp>/defi1-cache/onnx``)."""
    model_path = Path(model_path).resolve()
    status = model_path.stat()
    key = hashlib.sha1(f"{model_path}|{status.st_size}|{status.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir else cache_root() / "onnx"
    return root / f"{model_path.stem}-{key}.onnx"


def make_forward(model_or_path, engine: str = "keras", *, mixed_precision: bool = False,
                 fold_batchnorm: bool = True, onnx_path=None, cache_dir=None, threads: int | None = None,
                 jit_compile=None, input_size=None):
    """A forward callable (float32 NHWC batch -> list of head arrays) for a model and an engine.

    Args:
        model_or_path: a Keras model, a ``.keras`` path, or (``opencv``, ``onnxruntime``) an ``.onnx`` path.
        engine: ``"keras"`` (:func:`defi1.yolo.inference.compile_forward`: tf.function / jax.jit, batch norm
            folded, optional mixed precision on GPU), ``"opencv"`` or ``"onnxruntime"``.
        onnx_path: ``opencv`` / ``onnxruntime`` with a Keras model: use (or write) this ONNX file instead of
            :func:`exported_onnx_path`.
        cache_dir: where ONNX exports go instead of beside the model.
        threads: threads of OpenCV / ONNX Runtime.
        jit_compile: ``keras`` under TensorFlow: XLA (``None``: :data:`defi1.yolo.inference.DEFAULT_JIT_COMPILE`).
        input_size: ``(width, height)`` or a side of the ONNX export (its spatial size is fixed; default: the
            model's).

    The callable has an ``engine`` attribute (``"keras"``, ``"opencv"`` or ``"onnxruntime"``). Models written by
    defi1 (with a darknet cfg) are exported by :mod:`defi1.realtime.onnx_writer`; other models by Keras' own ONNX
    export (``onnxruntime`` only; needs tf2onnx).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    is_path = isinstance(model_or_path, (str, os.PathLike))
    if engine in ("opencv", "onnxruntime"):
        engine_class = OpenCVForward if engine == "opencv" else OnnxRuntimeForward
        if is_path and Path(model_or_path).suffix.lower() == ".onnx":
            return engine_class(model_or_path, threads=threads)
        if is_path and not Path(model_or_path).is_file():
            raise FileNotFoundError(f"{model_or_path}: no such model file (expected a .keras file)")
        onnx_path = _onnx_export(model_or_path, input_size=input_size, onnx_path=onnx_path, cache_dir=cache_dir,
                                 own_writer_only=engine == "opencv")
        return engine_class(onnx_path, threads=threads)
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


def _onnx_export(model_or_path, *, input_size, onnx_path, cache_dir, own_writer_only):
    """The ONNX file of a model: defi1's writer for models with a darknet cfg (cached, see
    :func:`exported_onnx_path`), else Keras' export (cached by :func:`cached_onnx_path`)."""
    from defi1.realtime.onnx_writer import write_onnx
    from defi1.yolo.heads import input_width_height
    from defi1.yolo.layers import yolo_heads

    is_path = isinstance(model_or_path, (str, os.PathLike))
    model = load_keras_model(model_or_path) if is_path else model_or_path
    heads = yolo_heads(model)
    if not heads[0].cfg_text:
        if own_writer_only:
            raise ValueError(f"{model_or_path if is_path else model.name}: the opencv engine needs a model built by "
                             "defi1 from a darknet cfg (use --engine keras or onnxruntime)")
        if onnx_path is None:
            onnx_path = (cached_onnx_path(model_or_path, cache_dir) if is_path
                         else Path(tempfile.mkdtemp(prefix="defi1-onnx-")) / f"{model.name}.onnx")
        if not Path(onnx_path).is_file():
            export_model(model, onnx_path, format="onnx")
        return Path(onnx_path)
    size = input_width_height(input_size if input_size is not None else heads[0].input_size)
    if onnx_path is None:
        onnx_path = exported_onnx_path(model_or_path, size, cache_dir=cache_dir)
    if not Path(onnx_path).is_file():
        write_onnx(model, onnx_path, input_size=size)
    return Path(onnx_path)


def export_detector(model_path, out_path=None, *, format: str = "onnx", input_size=None, dynamic: bool = False,
                    check: bool = True, check_size: int | None = None) -> dict:
    """``defi1 detect export`` as a function: :func:`~defi1.realtime.export.export_model` of a ``.keras`` detector,
    then (``check``) the largest difference between the export's heads and the Keras model's on a random input
    (:func:`~defi1.realtime.export.compare_export`).

    ``out_path`` defaults to :func:`~defi1.realtime.export.default_export_path`. The check runs a file from defi1's
    ONNX writer with OpenCV's DNN (always installed) at the file's own input size, other ONNX files with ONNX
    Runtime and SavedModels with TensorFlow at ``check_size`` (default: the model's input size). Returns ``{"path",
    "format", "writer" ("defi1" or "keras"), "max_abs_difference", "check_input_size"}`` (the last two ``None``
    without a check; the size an int, or ``(height, width)`` when not square).
    """
    from defi1.yolo.heads import input_width_height
    from defi1.yolo.layers import yolo_heads

    model = load_keras_model(model_path)
    own_writer = uses_own_onnx_writer(model, format=format, dynamic=dynamic)
    try:
        path = export_model(model, out_path or default_export_path(model_path, format), format=format,
                            input_size=input_size, dynamic=dynamic)
    except ValueError as error:  # the settings asked of this model's export: name the model file
        raise ValueError(f"{model_path}: {error}") from None
    result = {"path": str(path), "format": format, "writer": "defi1" if own_writer else "keras",
              "max_abs_difference": None, "check_input_size": None}
    if check:
        if own_writer:
            width, height = input_width_height(yolo_heads(model)[0].input_size if input_size is None else input_size)
            size, forward = (width if width == height else (height, width)), OpenCVForward(path)
        else:
            size = check_size or yolo_heads(model)[0].input_size
            forward = OnnxRuntimeForward(path) if format == "onnx" else saved_model_forward(path)
        result.update(max_abs_difference=compare_export(model, forward, input_size=size), check_input_size=size)
    return result


def load_detector(model=None, *, cfg=None, weights=None, names=None, engine: str = "keras",
                  mixed_precision: bool = False, **options):
    """The one way from what a user names to a :class:`~defi1.yolo.detector.Detector` running on an engine.

    Args:
        model: a ``.keras`` file or a Keras model (a defi1 YOLO model).
        cfg, weights, names: instead of ``model``, a darknet ``.weights`` with its ``.cfg`` (a file, a built-in
            name such as ``yolov3-tiny``, or ``None`` for darknet's released COCO weights:
            :mod:`defi1.yolo.released`) and a ``.names`` file or a list of class names.
        engine: ``"keras"``, ``"opencv"``, ``"onnxruntime"`` or ``"auto"`` (:func:`choose_engine`); see the module
            docstring. The engine in use is ``detector.forward.engine``.
        mixed_precision: Keras engine: a float16 copy of the network (GPU).
        options: :class:`~defi1.yolo.detector.Detector` settings (``input_size``, ``conf_threshold``,
            ``iou_threshold``, ``max_detections``, ``batch_size``, ``multi_label`` ...).
    Returns:
        a ``Detector`` whose ``forward`` is the engine's.
    Raises:
        ValueError: a model and darknet files both given, or neither; ``names`` with a ``.keras`` model; an
            unknown engine. ``FileNotFoundError`` / ``ValueError`` naming a file that is missing or cannot be loaded.
    """
    from defi1.yolo.detector import Detector

    if engine not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINE_CHOICES)}")
    if model is not None and (cfg or weights):
        raise ValueError("give either --model (a .keras file) or --cfg with --weights, not both")
    if model is None:
        if not weights:
            raise ValueError("no model: give --model MODEL.keras, or --weights FILE.weights [--cfg FILE.cfg] "
                             "[--names FILE]")
        from defi1.yolo.darknet import load_darknet
        from defi1.yolo.released import resolve_darknet_cfg

        cfg, names = resolve_darknet_cfg(cfg, weights, names)
        model = load_darknet(cfg, weights, class_names=names, input_size=options.get("input_size"))
    elif names:
        raise ValueError("--names goes with --cfg/--weights; a .keras model carries its class names")
    keras_model = load_keras_model(model) if isinstance(model, (str, os.PathLike)) else model
    probe = Detector(keras_model, forward=lambda batch: None, **options)  # checks the options, gives the size
    choice = {"engine": engine, "reason": "asked", "median_ms": {}}
    if engine == "auto":
        choice = choose_engine(model, keras_model, probe.input_size) if not mixed_precision else \
            {"engine": "keras", "reason": "mixed precision", "median_ms": {}}
        engine = choice["engine"]
    forward = choice.pop("forward", None)
    if forward is None and engine in ("opencv", "onnxruntime"):
        forward = make_forward(model, engine, input_size=probe.input_size)
    elif forward is None and mixed_precision:
        forward = make_forward(keras_model, "keras", mixed_precision=True)
    detector = Detector(keras_model, forward=forward, **options)
    detector.engine_choice = dict(choice, engine=engine)
    return detector


def describe_engine(detector) -> str:
    """One line saying which engine a detector from :func:`load_detector` runs on, and why (what every command
    prints), e.g. ``engine: opencv (auto, measured here: opencv 36 ms, keras 61 ms per frame)``."""
    choice = getattr(detector, "engine_choice", None) or {}
    engine = choice.get("engine") or getattr(detector.forward, "engine", "keras")
    threads = getattr(detector.forward, "threads", None)
    details = {"asked": "--engine", "gpu": "auto: a GPU", "only engine": "auto: the only engine installed",
               "mixed precision": "auto: mixed precision needs keras"}.get(choice.get("reason"), "auto")
    if choice.get("median_ms"):
        measured = "measured here" if choice.get("reason") == "measured" else "measured earlier on this machine"
        timings = ", ".join(f"{name} {value:.0f} ms" for name, value in sorted(choice["median_ms"].items(),
                                                                              key=lambda item: item[1]))
        details = f"auto, {measured}: {timings} per frame"
    return f"engine: {engine}" + (f", {threads} threads" if threads else "") + f" ({details})"


def installed_engines() -> list[str]:
    """The engines usable here: ``keras`` always; ``opencv`` when OpenCV's DNN module reads ONNX (OpenCV 4.9 and
    5 wheels do); ``onnxruntime`` when the onnx extra is installed."""
    import importlib.util

    import cv2

    found = ["keras"]
    if hasattr(getattr(cv2, "dnn", None), "readNetFromONNX"):
        found.append("opencv")
    if importlib.util.find_spec("onnxruntime"):
        found.append("onnxruntime")
    return found


def on_gpu() -> bool:
    """Whether the Keras backend computes on an accelerator (then the ``keras`` engine is the one to use)."""
    from defi1.environment import accelerator_name

    return not accelerator_name().startswith("CPU")


def choose_engine(model, keras_model=None, input_size=(416, 416), *, rounds: int = 3, calls: int = 3,
                  cache: bool = True) -> dict:
    """``--engine auto``: ``keras`` on a GPU; on a CPU the fastest engine installed, measured here.

    Each installed engine (:func:`installed_engines`; ``opencv`` and ``onnxruntime`` only for models defi1 can
    export) runs one warm-up call, then ``rounds`` interleaved rounds of ``calls`` calls on a ``(1, height, width,
    3)`` batch; the engine with the lowest median wins. The result is cached (``<cache>/engine-choice.json``) by model
    (file SHA-256 or weights), input size, CPU and library versions: the next start does not measure again.

    Returns:
        ``{"engine": name, "reason": "gpu" | "measured" | "cached" | "only engine", "median_ms": {engine: ms}}``.
    """
    from defi1.environment import cpu_name, versions
    from defi1.yolo.layers import yolo_heads

    if on_gpu():
        return {"engine": "keras", "reason": "gpu", "median_ms": {}}
    is_path = isinstance(model, (str, os.PathLike))
    keras_model = keras_model if keras_model is not None else (load_keras_model(model) if is_path else model)
    candidates = installed_engines()
    if not yolo_heads(keras_model)[0].cfg_text:
        candidates = ["keras"]
    if len(candidates) == 1:
        return {"engine": candidates[0], "reason": "only engine", "median_ms": {}}
    width, height = input_size
    key = "|".join([sha256_file(model) if is_path else _model_key(keras_model), f"{width}x{height}",
                    cpu_name(), str(os.cpu_count()), json.dumps(versions(), sort_keys=True), ",".join(candidates)])
    key = hashlib.sha256(key.encode()).hexdigest()[:24]
    cache_file = cache_root() / "engine-choice.json"
    choices = _read_json(cache_file) if cache else {}
    if key in choices:
        return dict(choices[key], reason="cached")
    batch = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
    forwards = {}
    for name in candidates:
        try:
            forwards[name] = make_forward(model if name != "keras" else keras_model, name, input_size=input_size)
            forwards[name](batch)  # warm-up: compilation, memory
        except (ValueError, OSError, ImportError):
            continue  # an engine that cannot run this model is not a candidate
    timings = {name: [] for name in forwards}
    for _ in range(rounds):
        for name, forward in forwards.items():
            for _ in range(calls):
                started = time.perf_counter()
                forward(batch)
                timings[name].append((time.perf_counter() - started) * 1000.0)
    medians = {name: float(np.median(values)) for name, values in timings.items()}
    result = {"engine": min(medians, key=medians.get), "reason": "measured", "median_ms": medians}
    result["forward"] = forwards[result["engine"]]  # already built and warm: load_detector uses it
    if cache:
        choices[key] = {"engine": result["engine"], "median_ms": medians}
        try:
            atomic_write_json(cache_file, choices)
        except OSError:  # a cache that cannot be written: measure again next time
            pass
    return result


def _read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
