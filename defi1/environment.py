"""What the code runs on: Keras backend, versions and compute device, for reports and results files."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform``'s guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD extensions of this CPU that matter for convolutions (``avx2``, ``fma``, ``avx512f``,
    ``avx512_vnni``, ``amx_tile``, ``neon`` ...), from ``/proc/cpuinfo`` (empty elsewhere)."""
    interesting = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni",
                   "amx_tile", "amx_bf16", "neon", "asimd", "sve")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return [flag for flag in interesting if flag in flags]


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (``"0.52 0.80 1.10"``; ``""`` where the system has none): the machine's
    load beside a figure."""
    if not hasattr(os, "getloadavg"):
        return ""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
