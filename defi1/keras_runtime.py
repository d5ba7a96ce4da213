"""Keras and its backend, loaded only when needed, quietly, with defi1's Keras objects registered.

``import defi1`` does not import Keras: the command line's ``--help``, ``defi1 data ...`` and ``defi1 collect`` never
pay for TensorFlow's start-up (seconds). :func:`install` (called by ``defi1/__init__.py``) puts a one-shot import
hook in front of ``sys.meta_path``; when anything first imports ``keras``, ``tensorflow`` or ``jax``:

* the backend's start-up messages are kept out of the terminal: TensorFlow's C++ logging (``absl`` "All log
  messages before absl::InitializeLog()", oneDNN notices, CUDA stubs, ``failed call to cuInit`` on a machine without
  a GPU) is written to file descriptor 2 before Python can filter it, so the import and the device discovery run with
  that descriptor pointed at a temporary file, replayed only if the import fails; the Python loggers ``absl``,
  ``tensorflow`` and JAX's platform warnings are set to errors only;
* once ``keras`` is loaded, defi1's serialisable layers, losses and models are registered, so that
  ``keras.saving.load_model(path, safe_mode=True)`` loads defi1's ``.keras`` files after a plain ``import defi1``.

Set ``DEFI1_VERBOSE=1`` (the command line's ``--verbose`` does) to see every backend message.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import logging
import os
import sys
import tempfile

#: Environment variable that turns the backend's own messages back on (``1``, ``true`` or ``yes``).
VERBOSE_VARIABLE = "DEFI1_VERBOSE"

#: Modules defining defi1's serialisable Keras objects (they register themselves when imported).
KERAS_OBJECT_MODULES = ("defi1.yolo.layers", "defi1.yolo.loss", "defi1.classification.models")

_HOOKED_MODULES = ("keras", "tensorflow", "jax")
_QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "3"}
_QUIET_LOGGERS = ("absl", "tensorflow", "jax._src.xla_bridge", "jax._src.cloud_tpu_init")


def verbose() -> bool:
    """Whether the backend's start-up messages are wanted (:data:`VERBOSE_VARIABLE`)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(enabled: bool = True) -> None:
    """Show (or hide) the backend's messages from now on; effective for a backend not imported yet."""
    os.environ[VERBOSE_VARIABLE] = "1" if enabled else "0"


@contextlib.contextmanager
def quiet_standard_error():
    """Point file descriptor 2 at a temporary file for the duration of the block (C/C++ libraries write there
    directly); if the block raises, what was written is copied back to the real standard error."""
    if verbose():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedded interpreter): nothing to silence
        yield
        return
    captured = tempfile.TemporaryFile()
    _flush_standard_streams()
    os.dup2(captured.fileno(), 2)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _flush_standard_streams()
        os.dup2(saved, 2)
        os.close(saved)
        if failed:
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
        captured.close()


def _flush_standard_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def quiet_python_loggers() -> None:
    """Errors only from the backends' Python loggers (unless :func:`verbose`)."""
    if verbose():
        return
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def register_keras_objects() -> None:
    """Import the modules that register defi1's Keras layers, losses and models (needs Keras).

    When Keras is first imported by a defi1 module that is itself being imported (``defi1.yolo.decode`` when a
    command imports the Detector), those modules cannot be imported yet (they import that module: a circle); they
    are then registered when they are imported, or at the latest by :func:`defi1.files.load_keras_model`, which
    calls this function again before it loads a model.
    """
    if any(name.startswith("defi1.") and getattr(getattr(module, "__spec__", None), "_initializing", False)
           for name, module in list(sys.modules.items())):
        return
    for module_name in KERAS_OBJECT_MODULES:
        importlib.import_module(module_name)


def _discover_devices(module_name):
    """Let the backend look for accelerators now, inside the quiet block (where a CPU-only machine's CUDA
    messages are printed)."""
    if module_name == "tensorflow":
        tensorflow = sys.modules.get("tensorflow")
        config = getattr(tensorflow, "config", None)
        if config is not None:
            config.list_physical_devices()


class _QuietLoader(importlib.abc.Loader):
    """Wraps the real loader of a hooked module: runs it quietly, then what must follow the import."""

    def __init__(self, loader, module_name):
        self.loader = loader
        self.module_name = module_name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if not verbose():
            for key, value in _QUIET_ENVIRONMENT.items():
                os.environ.setdefault(key, value)
        with quiet_standard_error():
            self.loader.exec_module(module)
            if self.module_name == "keras":
                _discover_devices(os.environ.get("KERAS_BACKEND", "tensorflow"))
            else:
                _discover_devices(self.module_name)
        quiet_python_loggers()
        if self.module_name == "keras":
            _ImportHook.finished = True
            register_keras_objects()

    def __getattr__(self, name):  # anything else (get_code, is_package, resource readers...) from the real loader
        return getattr(self.loader, name)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for the hooked top-level modules, takes the spec the other finders give and wraps its
    loader in a :class:`_QuietLoader`."""

    finished = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _HOOKED_MODULES or _ImportHook.finished:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader, fullname)
                return spec
        return None


def install() -> None:
    """Arrange for the backend to load quietly and for defi1's Keras objects to be registered with Keras: at once
    if Keras is already imported, else when it first is. Idempotent."""
    if "keras" in sys.modules:
        quiet_python_loggers()
        register_keras_objects()
        return
    if not any(isinstance(finder, _ImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ImportHook())
