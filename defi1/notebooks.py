"""What the course notebooks need from the runtime they run in (Google Colab, a laptop, CI).

* :func:`runtime_summary`: the device the notebook computes on and, on a CPU, how to get a GPU on Colab;
* :func:`work_folder`: where runs, models and results are kept: a Google Drive folder on Colab when asked (the Colab
  machine and its disk are deleted after a while; Drive is not), else the current folder;
* :func:`internet_available`: whether the downloads of the online path can work (else the notebooks take their
  offline path and say so);
* :func:`find_trained_detector`: the detector that notebook 2 trained, for notebook 3;
* :func:`show_video`: a recording shown in the notebook (H.264 plays in every browser);
* :func:`timed`: measure and print how long a step took here; :func:`measure_seconds`: the median time of a call.

The notebooks call these; they define no logic of their own.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from defi1.environment import in_colab

#: Hosts the online path downloads from: Keras' weights and datasets, darknet's weights.
DOWNLOAD_HOSTS = (("storage.googleapis.com", 443), ("pjreddie.com", 443))

#: How to get a GPU on Colab, for the notebooks' CPU warning.
COLAB_GPU_STEPS = ("Runtime > Change runtime type > Hardware accelerator: a GPU (T4 is free) > Save, then run the "
                   "notebook again from the top")


def runtime_summary(*, needs_gpu: bool = False) -> str:
    """The device and software this notebook runs on, in a few lines; with ``needs_gpu`` (Parts 2 and 3), on a CPU,
    what that means and how to switch Colab to a GPU."""
    from defi1.environment import describe

    environment = describe()
    versions = environment["versions"]
    lines = [f"Running on: {environment['device']} ({environment['machine']}); Keras {versions.get('keras')} with "
             f"the {environment['backend']} backend, Python {versions.get('python')}"
             + ("; Google Colab" if in_colab() else "")]
    if needs_gpu and environment["device"].startswith("CPU"):
        lines.append("No GPU: every step runs, but training and real-time detection are several times slower (the "
                     "timings printed below are this machine's).")
        if in_colab():
            lines.append(f"To use a GPU on Colab: {COLAB_GPU_STEPS}.")
    return "\n".join(lines)


def work_folder(drive_folder=None, *, mount_point="/content/drive") -> Path:
    """The folder that holds this notebook's runs, models and results.

    On Colab with ``drive_folder`` (e.g. ``"MyDrive/defi1"``, relative to the Drive's root, or an absolute path under
    ``mount_point``), Google Drive is mounted (Colab asks for permission once) and the folder is created there: it
    outlives the Colab machine, and notebook 3 finds notebook 2's detector in it. Otherwise (no ``drive_folder``, or
    not on Colab, where the setting is ignored with a message) the current folder.
    """
    if not drive_folder:
        return Path(".")
    if not in_colab():
        print(f"DRIVE_FOLDER={drive_folder!r} is for Google Colab; here the work stays in the current folder")
        return Path(".")
    from google.colab import drive

    drive.mount(mount_point)
    folder = Path(drive_folder)
    if not folder.is_absolute():
        folder = Path(mount_point) / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def internet_available(hosts=DOWNLOAD_HOSTS, *, timeout: float = 3.0) -> bool:
    """True when a TCP connection to every one of ``hosts`` (``(name, port)`` pairs) opens within ``timeout`` s."""
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError:
            return False
    return True


def find_trained_detector(*folders) -> Path | None:
    """The newest ``best.keras`` written by a detection training run under any of ``folders`` (searched
    recursively), or ``None``. Notebook 2 writes ``<work folder>/runs/02_localisation/training/best.keras``."""
    found = [path for folder in folders if folder and Path(folder).is_dir()
             for path in Path(folder).rglob("best.keras") if path.is_file()]
    detectors = [path for path in found if _is_detector(path)]
    return max(detectors, key=lambda path: path.stat().st_mtime) if detectors else None


def _is_detector(path) -> bool:
    """Whether a ``.keras`` file is a YOLO detector (its config names a ``YoloHead``), read without Keras."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return b'"YoloHead"' in archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def show_video(path, *, width: int = 640):
    """A video file as a notebook output (embedded, so it survives in the saved notebook). Browsers play H.264
    (what :class:`defi1.realtime.video.AtomicVideoWriter` writes when FFmpeg is available), not OpenCV's mp4v."""
    from IPython.display import Video

    return Video(str(path), embed=True, width=width, mimetype="video/mp4", html_attributes="controls loop muted")


@contextlib.contextmanager
def timed(step: str):
    """Print how long the block took: ``training: 3 min 12 s on CPU (2 cores, x86_64)``."""
    from defi1.environment import accelerator_name

    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        minutes, seconds = divmod(round(elapsed), 60)
        duration = f"{minutes} min {seconds} s" if minutes else f"{elapsed:.1f} s"
        print(f"{step}: {duration} on {accelerator_name()}")


def measure_seconds(function, *, repeats: int = 3, warmup: int = 1) -> float:
    """The median wall time of ``function()`` over ``repeats`` calls, after ``warmup`` calls not counted (the first
    call of a Keras model builds and compiles it)."""
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return float(sorted(durations)[len(durations) // 2])
