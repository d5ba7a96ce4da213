"""Executing the course notebooks as Colab does, with nbclient (papermill is not on Colab).

:func:`execute_notebook` injects the given parameters in a cell right after the cell tagged ``parameters`` (the
convention papermill set: the notebook's own values stay visible, the overrides follow), runs every cell in a fresh
``python3`` kernel with ``cwd`` as its working folder, and writes the executed notebook. A failing cell raises
``nbclient.exceptions.CellExecutionError`` with the cell's traceback.
"""

from pathlib import Path

import pytest


def execute_notebook(path, output_path, *, cwd, parameters=None, timeout=1800):
    """Run the notebook at ``path`` with ``parameters`` (name -> Python literal) and save it to ``output_path``."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (the test extra; on Colab) executes the notebooks")
    notebook = nbformat.read(str(path), as_version=4)
    if parameters:
        position = next(index for index, cell in enumerate(notebook.cells)
                        if "parameters" in cell.get("metadata", {}).get("tags", []))
        source = "# Injected parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
        injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(position + 1, injected)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, str(output_path))
    return Path(output_path)
