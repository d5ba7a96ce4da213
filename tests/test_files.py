"""Tests of defi1.files: writes are atomic (the previous file survives a failed write, no temporary is left),
output folders are checked, class-name files and .keras models are read with errors naming the file."""

import json

import numpy as np
import pytest

from defi1.errors import DataError
from defi1.files import (AtomicOutput, atomic_copy, atomic_save_model, atomic_write_bytes, atomic_write_json,
                         atomic_write_text, ensure_output_dir, load_keras_model, read_names_file)


def names_in(folder):
    return sorted(entry.name for entry in folder.iterdir())


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "deep" / "note.txt", "first\n")
    assert path.read_text() == "first\n"
    atomic_write_bytes(path, b"second\n")
    assert path.read_bytes() == b"second\n" and names_in(path.parent) == ["note.txt"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = atomic_write_text(tmp_path / "state.json", "{}\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with AtomicOutput(path) as temporary:
            assert temporary.parent == tmp_path and temporary.name.startswith(".state.tmp")
            assert temporary.suffix == ".json"  # the writer sees the target's format
            temporary.write_text('{"half": ')
            raise RuntimeError("disk full")
    assert path.read_text() == "{}\n" and names_in(tmp_path) == ["state.json"]


def test_atomic_output_replaces_a_folder_once_the_new_one_is_complete(tmp_path):
    target = tmp_path / "export"
    (target / "old").mkdir(parents=True)
    output = AtomicOutput(target)
    (output.temporary / "new").mkdir(parents=True)
    assert (target / "old").is_dir()  # untouched until the commit
    assert output.commit() == target
    assert names_in(target) == ["new"] and names_in(tmp_path) == ["export"]
    abandoned = AtomicOutput(tmp_path / "never.mp4")
    abandoned.temporary.write_bytes(b"partial")
    abandoned.discard()
    assert names_in(tmp_path) == ["export"]


def test_json_copy_and_model_saves(tmp_path):
    path = atomic_write_json(tmp_path / "figures.json", {"fps": np.float32(2.5), "shape": np.arange(2),
                                                         "where": tmp_path})
    assert json.loads(path.read_text()) == {"fps": 2.5, "shape": [0, 1], "where": str(tmp_path)}
    with pytest.raises(TypeError, match="cannot write set as JSON"):
        atomic_write_json(tmp_path / "bad.json", {"value": {1}})
    assert not (tmp_path / "bad.json").exists()
    copy = atomic_copy(path, tmp_path / "copies" / "figures.json")
    assert copy.read_bytes() == path.read_bytes()

    class FailingModel:
        def save(self, path):
            path.write_bytes(b"half a model")
            raise OSError("interrupted")
    model_path = atomic_write_bytes(tmp_path / "best.keras", b"the previous model")
    with pytest.raises(OSError, match="interrupted"):
        atomic_save_model(FailingModel(), model_path)
    assert model_path.read_bytes() == b"the previous model"
    assert names_in(tmp_path) == ["best.keras", "copies", "figures.json"]


def test_ensure_output_dir(tmp_path):
    assert ensure_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="file/out: cannot create the output folder"):
        ensure_output_dir(blocker / "out")


def test_read_names_file(tmp_path):
    (tmp_path / "coco.names").write_text("person\n\n  bicycle  \ncar\n")
    assert read_names_file(tmp_path / "coco.names") == ["person", "bicycle", "car"]
    with pytest.raises(FileNotFoundError, match="missing.names: no such class names file"):
        read_names_file(tmp_path / "missing.names")
    (tmp_path / "empty.names").write_text("\n \n")
    with pytest.raises(DataError, match="empty.names: no class names"):
        read_names_file(tmp_path / "empty.names")


def test_load_keras_model_loads_and_names_bad_files(mini_model, mini_model_path, tmp_path):
    loaded = load_keras_model(mini_model_path)
    assert loaded.name == mini_model.name and getattr(loaded, "optimizer", None) is None  # not compiled unless asked
    for ours, theirs in zip(loaded.get_weights(), mini_model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(FileNotFoundError, match="missing.keras: no such model file"):
        load_keras_model(tmp_path / "missing.keras")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected a Keras model file ending in .keras"):
        load_keras_model(tmp_path / "model.h5")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.keras: cannot load this Keras model"):
        load_keras_model(tmp_path / "broken.keras")


def test_files_written_atomically_get_the_users_normal_mode(tmp_path):
    """Issue 12: state.json, loss_curves.png, grades.csv and exported .weights (all written by AtomicOutput) get the
    mode the umask gives a new file (0644 under umask 022), as .keras files do, not a temporary file's 0600."""
    import os

    previous = os.umask(0o022)
    try:
        written = [atomic_write_json(tmp_path / "state.json", {}), atomic_write_bytes(tmp_path / "model.weights", b"w"),
                   atomic_write_text(tmp_path / "grades.csv", "a,b\n")]
        os.umask(0o027)
        written.append(atomic_write_text(tmp_path / "group.txt", "g"))
    finally:
        os.umask(previous)
    assert [oct(path.stat().st_mode & 0o777) for path in written] == ["0o644", "0o644", "0o644", "0o640"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    """Issue 12: a checkpoint write killed half way leaves `.last.tmp<pid>-<hex>.keras`; the next run removes it,
    but not the temporaries of a process still writing, nor other hidden files."""
    import os
    import subprocess
    import sys

    from defi1.files import remove_stale_temporaries

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead_pid = int(finished.stdout)
    stale = tmp_path / f".last.tmp{dead_pid}-0123abcd.keras"
    stale.write_bytes(b"half a model")
    stale_folder = tmp_path / f".export.tmp{dead_pid}-89abcdef"
    stale_folder.mkdir()
    ours = AtomicOutput(tmp_path / "best.keras").temporary
    ours.write_bytes(b"being written")
    (tmp_path / ".keep").write_text("")
    (tmp_path / "last.keras").write_bytes(b"a model")
    assert remove_stale_temporaries(tmp_path) == sorted([stale_folder, stale])
    assert names_in(tmp_path) == sorted([".keep", ours.name, "last.keras"])
    assert ours.name.startswith(f".best.tmp{os.getpid()}-")


def test_a_weights_only_save_leaves_out_the_optimizer(tmp_path):
    """Issue 11: best.keras holds the architecture and weights only: its size is that of the weights, where a save
    with Adam's two moments is three times larger; the model saved is still the one being trained."""
    import keras

    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dense(2048)(inputs)), name="wide")
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 64)), np.zeros((4, 10)), verbose=0)
    weights_bytes = sum(weight.size * 4 for weight in model.get_weights())
    full = atomic_save_model(model, tmp_path / "last.keras").stat().st_size
    light = atomic_save_model(model, tmp_path / "best.keras", include_optimizer=False).stat().st_size
    assert light / weights_bytes < 1.1 and full / weights_bytes > 2.9
    loaded = load_keras_model(tmp_path / "best.keras")
    assert loaded.name == "wide" and model.optimizer is not None
    for ours, theirs in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path):
    """Issue 12: the folders made for a run that fails before writing anything are removed; an existing folder, or
    one the run wrote to, is kept."""
    from defi1.files import output_dir_for

    with pytest.raises(ValueError, match="bad data"):
        with output_dir_for(tmp_path / "runs" / "detect" / "train") as folder:
            assert folder.is_dir()
            raise ValueError("bad data")
    assert names_in(tmp_path) == []
    (tmp_path / "runs").mkdir()
    with pytest.raises(ValueError, match="bad data"):
        with output_dir_for(tmp_path / "runs" / "train") as folder:
            (folder / "log.csv").write_text("epoch\n")
            raise ValueError("bad data")
    assert names_in(tmp_path / "runs" / "train") == ["log.csv"]
    with pytest.raises(KeyboardInterrupt, match="^$"):
        with output_dir_for(tmp_path / "runs" / "other"):
            raise KeyboardInterrupt
    assert names_in(tmp_path / "runs") == ["train"]
