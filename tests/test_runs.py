"""Tests of defi1.runs: the checkpoint callback, the run state and the CSV history shared by the trainings."""

import json
import math

import keras
import numpy as np
import pytest

from defi1.errors import DataError
from defi1.runs import (BEST_MODEL, LAST_MODEL, STATE_FILE, RunCheckpoint, read_csv_history, read_run_state,
                        write_run_state)


@pytest.fixture
def compiled_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    return model


def test_checkpoint_keeps_last_best_and_state(compiled_model, tmp_path):
    checkpoint = RunCheckpoint(tmp_path, monitor="val_loss", mode="min", state={"stage": 1})
    checkpoint.set_model(compiled_model)
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_loss": 0.8})
    best_after_first = (tmp_path / BEST_MODEL).read_bytes()
    checkpoint.state["stage"] = 2
    checkpoint.on_epoch_end(1, {"loss": 0.9, "val_loss": 0.9})  # worse: best.keras stays that of epoch 1
    assert (tmp_path / BEST_MODEL).read_bytes() == best_after_first and (tmp_path / LAST_MODEL).is_file()
    state = read_run_state(tmp_path)
    assert state == {"epochs_completed": 2, "monitor": "val_loss", "mode": "min", "best_value": 0.8,
                     "best_epoch": 1, "learning_rate": pytest.approx(0.01), "stage": 2}
    assert checkpoint.last_epoch_saved == 1


def test_checkpoint_skips_a_diverged_epoch_and_needs_its_metric(compiled_model, tmp_path):
    checkpoint = RunCheckpoint(tmp_path, monitor="val_accuracy", mode="max", best_value=0.5, best_epoch=3)
    checkpoint.set_model(compiled_model)
    checkpoint.on_epoch_end(3, {"loss": math.nan, "val_accuracy": 0.9})
    assert list(tmp_path.iterdir()) == [] and checkpoint.last_epoch_saved is None  # nothing written
    checkpoint.on_epoch_end(4, {"loss": 0.5, "val_accuracy": 0.75})
    assert (checkpoint.best_value, checkpoint.best_epoch) == (0.75, 5)
    with pytest.raises(KeyError, match="'val_accuracy' not in the training logs .* validation data is needed"):
        checkpoint.on_epoch_end(5, {"loss": 0.4})
    with pytest.raises(ValueError, match="mode='best'"):
        RunCheckpoint(tmp_path, mode="best")


def test_run_state_round_trip_and_errors(tmp_path):
    assert read_run_state(tmp_path) is None
    write_run_state(tmp_path, {"epochs_completed": 3, "finished": True})
    assert read_run_state(tmp_path) == {"epochs_completed": 3, "finished": True}
    (tmp_path / STATE_FILE).write_text('{\n"epochs_completed": }')
    with pytest.raises(DataError, match=r"state.json: not valid JSON \(line 2: .*\); delete it to restart"):
        read_run_state(tmp_path)


def test_csv_history_keeps_every_column_aligned(tmp_path):
    assert read_csv_history(tmp_path / "missing.csv") == {}
    (tmp_path / "log.csv").write_text("epoch,loss,val_loss\n0,1.5,NA\n1,0.5,0.25\n2,0.4\n")
    history = read_csv_history(tmp_path / "log.csv")
    assert history["epoch"] == [0.0, 1.0, 2.0] and history["loss"] == [1.5, 0.5, 0.4]
    assert math.isnan(history["val_loss"][0]) and history["val_loss"][1] == 0.25 and math.isnan(history["val_loss"][2])
    np.testing.assert_array_equal(np.isnan(history["val_loss"]), [True, False, True])


def test_a_new_run_never_reuses_a_folder_holding_a_run(tmp_path):
    """Issues 11 and 12: runs/detect/train taken -> train2, train3 ...; an empty folder is used as it is; exist_ok
    reuses the folder asked for."""
    from defi1.runs import new_run_dir

    train = tmp_path / "train"
    assert new_run_dir(train) == train  # does not exist
    train.mkdir()
    assert new_run_dir(train) == train  # empty
    (train / STATE_FILE).write_text("{}")
    assert new_run_dir(train) == tmp_path / "train2"
    (tmp_path / "train2").mkdir()
    (tmp_path / "train2" / "best.keras").write_bytes(b"m")
    assert new_run_dir(train) == tmp_path / "train3"
    assert new_run_dir(tmp_path / "train2") == tmp_path / "train3"  # train2 taken: the next number, not train22
    assert new_run_dir(train, exist_ok=True) == train
    (tmp_path / "exp10").mkdir()
    (tmp_path / "exp10" / "last.keras").write_bytes(b"m")
    assert new_run_dir(tmp_path / "exp10") == tmp_path / "exp11"


def test_a_full_disk_while_checkpointing_is_one_clear_error(compiled_model, tmp_path, monkeypatch):
    """Issue 12: ENOSPC while writing a checkpoint: a one-line error saying what happened and that the last good
    checkpoint is intact; the half-written temporary file is removed, the earlier files are untouched."""
    import errno

    from defi1.runs import CheckpointWriteError

    checkpoint = RunCheckpoint(tmp_path, monitor="val_loss", mode="min")
    checkpoint.set_model(compiled_model)
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_loss": 0.8})
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def full_disk(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match="disk full") as caught:
        checkpoint.on_epoch_end(1, {"loss": 0.9, "val_loss": 0.9})
    assert str(caught.value) == (
        f"{tmp_path / LAST_MODEL}: cannot write the checkpoint of epoch 2, disk full (No space left on device); the "
        f"last good checkpoint {tmp_path / LAST_MODEL} (epoch 1) is intact; free some space and continue with "
        "--resume")
    assert "\n" not in str(caught.value)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # no temporary left
    assert read_run_state(tmp_path)["epochs_completed"] == 1


def test_the_checkpoint_keeps_the_optimizer_in_last_only(compiled_model, tmp_path):
    compiled_model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)  # Adam's moments exist
    checkpoint = RunCheckpoint(tmp_path, monitor="val_map50_95", mode="max")
    checkpoint.set_model(compiled_model)
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_map50_95": 0.25})
    import zipfile

    def stored(name):
        with zipfile.ZipFile(tmp_path / name) as archive:
            return sorted(archive.namelist()), json.loads(archive.read("config.json"))

    (best_files, best_config), (last_files, last_config) = stored(BEST_MODEL), stored(LAST_MODEL)
    assert not best_config.get("compile_config")  # nothing of the optimizer, not even its settings
    assert last_config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert (tmp_path / BEST_MODEL).stat().st_size < (tmp_path / LAST_MODEL).stat().st_size
