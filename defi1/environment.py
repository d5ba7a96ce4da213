"""What the code runs on: Keras backend, versions and compute device, for reports and results files."""

from __future__ import annotations

import os
import platform


def in_colab() -> bool:
    """True when running inside a Google Colab kernel."""
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def keras_backend() -> str:
    """Name of the active Keras backend (``tensorflow``, ``jax`` or ``torch``)."""
    import keras

    return keras.backend.backend()


def accelerator_name() -> str:
    """A short description of the device the backend computes on, e.g. ``"GPU: NVIDIA H100"`` or ``"CPU (2 cores)"``."""
    backend = keras_backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU: {details.get('device_name', gpus[0].name)}"
        elif backend == "jax":
            import jax

            devices = jax.devices()
            if devices and devices[0].platform != "cpu":
                return f"{devices[0].platform.upper()}: {devices[0].device_kind}"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)}"
    except Exception:  # device queries are informative only
        pass
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def versions() -> dict:
    """Versions of Python, Keras, the backend, numpy and OpenCV (absent packages are left out)."""
    import importlib.metadata as metadata

    found = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "jax", "torch", "numpy", "opencv-python-headless", "onnxruntime"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe() -> dict:
    """Backend, device, machine and versions in one dictionary."""
    return {
        "backend": keras_backend(),
        "device": accelerator_name(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores",
        "versions": versions(),
    }
