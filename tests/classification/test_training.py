"""Tests of defi1.classification.training: checkpoints, resume, Ctrl-C, two-phase transfer learning."""

import csv

import keras
import numpy as np
import pytest

from defi1.classification import models, training
from defi1.errors import DataError


def separable_data(count=60, seed=0):
    """3 classes of 4×4 grey images: class k has pixels around 40 + 80 k (noise ±20): easy to learn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = (40 + 80 * labels[:, None, None, None] + rng.uniform(-20, 20, (count, 4, 4, 1))).astype(np.float32)
    return images, labels


def small_model():
    keras.utils.set_random_seed(0)
    return models.build_dropout_mlp(input_shape=(4, 4, 1), num_classes=3, dropout_rate=0.0)


def history_epochs(run_dir):
    with open(run_dir / training.HISTORY_NAME, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.backend_agnostic
def test_training_reaches_full_validation_accuracy_and_writes_the_run(tmp_path):
    train, val = separable_data(), separable_data(30, seed=1)
    result = training.train_classifier(small_model(), train, val, run_dir=tmp_path / "run", epochs=12,
                                       learning_rate=2e-2, batch_size=10, verbose=0,
                                       early_stopping_patience=2)
    assert result.best_value == 1.0
    assert result.finished and result.epochs_completed <= 12
    assert len(result.history["val_accuracy"]) == result.epochs_completed
    state = training.read_state(tmp_path / "run")
    assert state["best_value"] == 1.0 and state["best_epoch"] == result.best_epoch and state["finished"]
    best = keras.saving.load_model(result.best_path, safe_mode=True)
    predicted = best.predict_on_batch(val[0]).argmax(axis=1)
    assert np.array_equal(predicted, val[1])
    with pytest.raises(FileExistsError, match="previous run"):
        training.train_classifier(small_model(), train, val, run_dir=tmp_path / "run", epochs=1, verbose=0)


@pytest.mark.backend_agnostic
def test_resume_continues_at_the_next_epoch(tmp_path):
    train, val = separable_data(), separable_data(30, seed=1)
    run_dir = tmp_path / "run"
    first = training.train_classifier(small_model(), train, val, run_dir=run_dir, epochs=2, learning_rate=1e-3,
                                      verbose=0)
    assert first.epochs_completed == 2 and history_epochs(run_dir) == [0, 1]
    resumed = training.train_classifier(small_model(), train, val, run_dir=run_dir, epochs=4, learning_rate=1e-3,
                                        resume=True, verbose=0, early_stopping_patience=100)
    assert resumed.epochs_completed == 4
    assert history_epochs(run_dir) == [0, 1, 2, 3]
    assert len(resumed.history["loss"]) == 4
    # the optimizer state came back with the model: 4 epochs of 2 steps (60 images, batches of 32)
    assert int(keras.ops.convert_to_numpy(resumed.model.optimizer.iterations)) == 4 * 2


class InterruptAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (Ctrl-C) in the middle of an epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt(f"Ctrl-C at epoch {self.current + 1}, batch {batch + 1}")


@pytest.mark.backend_agnostic
def test_ctrl_c_mid_epoch_keeps_the_best_checkpoint_and_resume_continues(tmp_path, capsys):
    train, val = separable_data(), separable_data(30, seed=1)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C at epoch 3, batch 4"):
        training.train_classifier(small_model(), train, val, run_dir=run_dir, epochs=5, batch_size=10,
                                  callbacks=[InterruptAt(epoch=2, batch=3)], verbose=0)
    assert "2 epoch(s) completed" in capsys.readouterr().err
    best = keras.saving.load_model(run_dir / training.BEST_NAME, safe_mode=True)
    assert best.predict_on_batch(val[0]).shape == (30, 3)
    state = training.read_state(run_dir)
    assert state["epochs_completed"] == 2 and not state["finished"]
    assert not list(run_dir.glob(".*tmp*"))  # no half-written file left behind
    resumed = training.train_classifier(small_model(), train, val, run_dir=run_dir, epochs=5, batch_size=10,
                                        resume=True, verbose=0, early_stopping_patience=100)
    assert history_epochs(run_dir) == [0, 1, 2, 3, 4]
    assert resumed.epochs_completed == 5 and training.read_state(run_dir)["finished"]


def test_model_with_the_wrong_number_of_classes_is_refused(tmp_path):
    images, labels = separable_data()
    labels = labels + 2  # labels 2..4: five classes
    with pytest.raises(DataError, match="predicts 3 classes but the training data has labels up to 4"):
        training.train_classifier(small_model(), (images, labels), (images, labels), run_dir=tmp_path / "run",
                                  epochs=1, verbose=0)
    with pytest.raises(DataError, match="predicts 3 classes but the training data has 4 classes"):
        training.train_classifier(small_model(), separable_data(), separable_data(), run_dir=tmp_path / "other",
                                  epochs=1, verbose=0, num_classes=4)


def test_unwritable_run_folder_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="cannot create the output folder"):
        training.train_classifier(small_model(), separable_data(), separable_data(), run_dir=blocker / "run",
                                  epochs=1, verbose=0)


@pytest.mark.slow
def test_two_phase_transfer_learning_writes_both_phases(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build_transfer_classifier(backbone="mobilenet_v2", input_shape=(32, 32, 3), num_classes=3,
                                             weights=None)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
    labels = np.arange(6) % 3
    result = training.train_transfer_classifier(model, (images, labels), (images, labels), run_dir=tmp_path,
                                                head_epochs=1, fine_tune_epochs=2, fine_tune_layers=10,
                                                batch_size=6, verbose=0)
    assert training.read_state(tmp_path / "head")["epochs_completed"] == 1
    assert training.read_state(tmp_path / "fine_tune")["epochs_completed"] == 2
    fine_tuned = keras.saving.load_model(tmp_path / "fine_tune" / "last.keras", safe_mode=True)
    backbone = models.backbone_of(fine_tuned)
    trainable = [layer.name for layer in backbone.layers if layer.trainable and layer.weights]
    assert trainable == [layer.name for layer in backbone.layers[-10:]
                         if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    assert float(keras.ops.convert_to_numpy(fine_tuned.optimizer.learning_rate)) == pytest.approx(1e-5)
    assert result["best_path"].name == "best.keras"
