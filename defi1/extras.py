"""Optional parts of defi1 and the ``pip install "defi1[...]"`` that brings each one.

The plain install holds what every part of the course needs. Some users need more:

* ``onnx``: ONNX export (``tf2onnx``) and the ONNX Runtime engine (``onnxruntime``), for Part 3 on a CPU;
* ``notebook``: Jupyter, to run the notebooks on a laptop (Colab already has it);
* ``test``: the test tools (pytest, nbclient, pycocotools as the mAP oracle, JAX for the second backend).
"""

from __future__ import annotations

import importlib

from defi1.errors import Defi1Error

#: Module -> the extra that installs it.
EXTRA_OF_MODULE = {"onnxruntime": "onnx", "tf2onnx": "onnx", "onnx": "onnx", "jupyterlab": "notebook",
                   "pycocotools": "test", "nbclient": "test"}


class MissingExtraError(Defi1Error, ImportError):
    """An optional package is not installed; the message says which ``pip install`` brings it."""


def install_command(extra: str) -> str:
    """The command that installs an extra: ``pip install "defi1[onnx]"``."""
    return f'pip install "defi1[{extra}]"'


def import_optional(module_name: str, *, purpose: str):
    """Import ``module_name`` or raise :class:`MissingExtraError` saying that ``purpose`` needs it and how to get it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] != module_name.split(".")[0]:
            raise  # the package is there but one of its own dependencies is missing: show the real error
        extra = EXTRA_OF_MODULE.get(module_name.split(".")[0])
        how = install_command(extra) if extra else f"pip install {module_name}"
        raise MissingExtraError(f"{purpose} needs {module_name}, which is not installed: {how}") from None
