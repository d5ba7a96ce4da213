"""Tests of defi1.runs: the checkpoint callback, the run state and the CSV history shared by the trainings."""

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
