"""Detection training (defi1.detection.training, the loop): the two stages, checkpoints, resume, NaN handling, data
parallelism, and the overfit proof. Settings, model and callbacks have their own test files."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from defi1.detection.training import LOG_FILE, TrainingDivergedError, train_detector
from defi1.detection.training_settings import PRETRAINED_DEFAULTS, TrainingSettings
from defi1.runs import BEST_MODEL, LAST_MODEL, STATE_FILE, read_csv_history

from .conftest import narrow_tiny_cfg, shapes_dataset

# ---------------------------------------------------------------------------------------------------------------
# Training runs (slow: each traces the YOLO graph)


class WeightsRecorder(keras.callbacks.Callback):
    """Keeps copies of chosen layers' weights at the end of every epoch, and the epochs that began."""

    def __init__(self, layer_names):
        super().__init__()
        self.layer_names = layer_names
        self.snapshots = {}
        self.epochs_begun = []

    def on_train_begin(self, logs=None):
        self.snapshots.setdefault("start", self._copy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_begun.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots[epoch] = self._copy()

    def _copy(self):
        return {name: [np.array(weight) for weight in self.model.get_layer(name).get_weights()]
                for name in self.layer_names}


@pytest.mark.slow
def test_two_stages_checkpoints_and_resume(small_run):
    folder, data_yaml, cfg = small_run
    out_dir = folder / "two_stages"
    recorder = WeightsRecorder(["conv_0", "batchnorm_0", "conv_15"])  # backbone conv and its BN; a head conv
    settings = TrainingSettings(data=data_yaml, model=str(cfg), input_size=64, epochs=2, freeze_epochs=1,
                                batch_size=2, out_dir=out_dir, augment=False, verbose=0,
                                **PRETRAINED_DEFAULTS)  # YOLOv3's plateau schedule: the rates are known
    messages = []
    result = train_detector(settings, callbacks=[recorder], log=messages.append)
    # Each stage says its rate and the schedule "auto" resolved to.
    stage_lines = [message for message in messages if message.startswith("Stage ")]
    assert stage_lines[0].startswith("Stage 1: epochs 1-1, learning rate 0.001 (plateau schedule), ")
    assert stage_lines[0].endswith("backbone layers frozen")
    assert stage_lines[1] == "Stage 2: epochs 2-2, learning rate 0.001 (plateau schedule), all layers trained"
    start, stage1, stage2 = recorder.snapshots["start"], recorder.snapshots[0], recorder.snapshots[1]
    # Stage 1: backbone (weights and BN statistics) untouched, head trained.
    for old, new in zip(start["conv_0"] + start["batchnorm_0"], stage1["conv_0"] + stage1["batchnorm_0"]):
        np.testing.assert_array_equal(old, new)
    assert not np.allclose(start["conv_15"][0], stage1["conv_15"][0])
    # Stage 2: everything trained.
    assert not np.allclose(stage1["conv_0"][0], stage2["conv_0"][0])
    assert not np.allclose(stage1["batchnorm_0"][2], stage2["batchnorm_0"][2])  # moving mean
    assert result.epochs_completed == 2
    for name in (BEST_MODEL, LAST_MODEL, STATE_FILE, LOG_FILE, "loss_curves.png"):
        assert (out_dir / name).is_file(), name
    state = json.loads((out_dir / STATE_FILE).read_text())
    assert state["epochs_completed"] == 2 and state["stage"] == 2
    # The default fine-tuning rate (measured on BCCD, benchmarks/RESULTS.md).
    assert state["learning_rate"] == pytest.approx(1e-3)
    last = keras.saving.load_model(out_dir / LAST_MODEL, safe_mode=True)
    np.testing.assert_allclose(last.get_layer("conv_0").get_weights()[0], stage2["conv_0"][0])

    # Resume: continues at epoch 3 (index 2) from last.keras, appends to the log.
    resumed_recorder = WeightsRecorder(["conv_0"])
    resumed = train_detector(settings, epochs=3, resume=True, callbacks=[resumed_recorder], log=lambda message: None)
    assert resumed_recorder.epochs_begun == [2]
    np.testing.assert_allclose(resumed_recorder.snapshots["start"]["conv_0"][0], stage2["conv_0"][0])
    assert resumed.epochs_completed == 3
    assert read_csv_history(out_dir / LOG_FILE)["epoch"] == [0.0, 1.0, 2.0]
    assert json.loads((out_dir / STATE_FILE).read_text())["epochs_completed"] == 3


class PoisonWeights(keras.callbacks.Callback):
    """Sets a kernel to NaN at the start of ``epoch``: the next loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            kernel = self.model.get_layer("conv_15").kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(small_run):
    folder, data_yaml, cfg = small_run
    out_dir = folder / "nan"
    settings = TrainingSettings(data=data_yaml, model=str(cfg), input_size=64, epochs=3, batch_size=2,
                                out_dir=out_dir, augment=False, verbose=0)
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 2, batch 2") as caught:
        train_detector(settings, callbacks=[PoisonWeights(epoch=1)], log=lambda message: None)
    message = str(caught.value)
    assert "loss became nan at epoch 2, batch 2" in message
    assert str(out_dir / LAST_MODEL) in message and "(epoch 1)" in message
    assert json.loads((out_dir / STATE_FILE).read_text())["epochs_completed"] == 1
    model = keras.saving.load_model(out_dir / LAST_MODEL, safe_mode=True)
    assert all(np.all(np.isfinite(weight)) for weight in model.get_weights())
    assert len(read_csv_history(out_dir / LOG_FILE)["epoch"]) >= 1


DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras

    if keras.backend.backend() == "tensorflow":  # two logical devices on the one CPU
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from defi1.detection.training import device_count, train_detector

    data_yaml, cfg, out_dir = sys.argv[1:4]
    weights, losses, replicas = {}, {}, None
    for distribute in (False, True):
        result = train_detector(data=data_yaml, model=cfg, input_size=64, epochs=1, batch_size=4, augment=False,
                                seed=7, out_dir=f"{out_dir}/{distribute}", distribute=distribute, verbose=0,
                                early_stopping_patience=0, reduce_lr_patience=0, log=lambda message: None)
        model = keras.saving.load_model(result.last_model_path, compile=False)
        weights[distribute] = model.get_weights()
        losses[distribute] = result.history["loss"][0]
        if distribute:
            from defi1.detection.training import distribution_scope

            with distribution_scope(True):
                replicas = device_count(True)
    difference = max(float(abs(a - b).max()) for a, b in zip(weights[False], weights[True]))
    print(json.dumps({"replicas": replicas, "max_weight_difference": difference, "loss_single": losses[False],
                      "loss_distributed": losses[True]}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distributed_training_matches_single_device(small_run, tmp_path, backend):
    """Data-parallel training on two devices of the one CPU (TensorFlow: two logical devices and MirroredStrategy;
    JAX: two host devices and keras.distribution.DataParallel) gives the single-device result."""
    if backend == "jax":
        pytest.importorskip("jax")
    folder, data_yaml, _ = small_run
    # Without batch normalisation: per-replica batch statistics would (rightly) differ from whole-batch ones.
    cfg = narrow_tiny_cfg(tmp_path / "no_bn.cfg", batch_normalize=False)
    environment = dict(os.environ, KERAS_BACKEND=backend,
                       XLA_FLAGS="--xla_force_host_platform_device_count=2")  # JAX: two CPU devices
    completed = subprocess.run([sys.executable, "-c", DISTRIBUTED_SCRIPT, str(data_yaml), str(cfg), str(tmp_path)],
                               capture_output=True, text=True, env=environment, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss_distributed"] == pytest.approx(report["loss_single"], rel=1e-4)
    assert report["max_weight_difference"] < 1e-4


@pytest.mark.slow
def test_parallel_loaders_train_exactly_like_one(small_run):
    """Batches are drawn from the seed, epoch and index, so worker processes (2 epochs: shuffling and augmentation
    redrawn) give the same losses and weights as the single in-process loader."""
    folder, data_yaml, cfg = small_run
    runs = {}
    for workers, processes in ((1, False), (2, True)):
        result = train_detector(data=data_yaml, model=str(cfg), input_size=64, epochs=2, batch_size=2, augment=True,
                                seed=5, workers=workers, use_multiprocessing=processes,
                                out_dir=folder / f"loaders_{workers}", verbose=0, early_stopping_patience=0,
                                reduce_lr_patience=0, log=lambda message: None)
        model = keras.saving.load_model(result.last_model_path, compile=False)
        runs[workers] = result.history["loss"], model.get_weights()
    np.testing.assert_allclose(runs[2][0], runs[1][0], rtol=1e-4)
    assert max(float(np.abs(a - b).max()) for a, b in zip(runs[1][1], runs[2][1])) < 1e-4


@pytest.mark.slow
def test_multi_scale_training_feeds_every_size_through_fit(small_run, monkeypatch):
    from defi1.detection.dataset import DetectionDataset

    folder, data_yaml, cfg = small_run
    sides = []
    original = DetectionDataset.__getitem__

    def recording_getitem(self, index):
        images, targets = original(self, index)
        if self.augment:  # training batches only
            sides.append(images.shape[1])
        return images, targets

    monkeypatch.setattr(DetectionDataset, "__getitem__", recording_getitem)
    result = train_detector(data=data_yaml, model=str(cfg), input_size=64, epochs=3, batch_size=1,
                            multi_scale=True, multi_scale_sizes=(64, 96, 128), seed=1, out_dir=folder / "multi_scale",
                            verbose=0, early_stopping_patience=0, reduce_lr_patience=0, log=lambda message: None)
    # The 12 training batches of the 3 epochs (TensorFlow's adapter also reads the first two once, for the shapes).
    assert len(sides) >= 12 and set(sides) == {64, 96, 128}
    assert result.epochs_completed == 3 and all(np.isfinite(result.history["loss"]))


@pytest.mark.slow
def test_overfit_reaches_map50(tmp_path):
    """The strongest test of the port: targets, loss, decoding and NMS must all be right to reach mAP50 >= 0.9."""
    from defi1.detection.evaluation import evaluate_model
    from defi1.detection.anchors import dataset_box_sizes
    from defi1.yolo.anchors import kmeans_anchors

    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=8, image_size=128)
    anchors, _ = kmeans_anchors(dataset_box_sizes(data_yaml, input_size=128), 6, seed=0)
    cfg = narrow_tiny_cfg(tmp_path / "narrow.cfg", input_size=128, divisor=4, anchors=anchors)
    result = train_detector(data=data_yaml, model=str(cfg), input_size=128, epochs=25, batch_size=8, repeat=4,
                            learning_rate=3e-3, augment=False, batchnorm_momentum=0.9, early_stopping_patience=0,
                            reduce_lr_patience=0, learning_rate_schedule="plateau", warmup_epochs=0.0,
                            ema_momentum=None, assign_threshold=1.0, best_metric="val_loss",
                            out_dir=tmp_path / "run", verbose=0, log=lambda message: None)
    metrics = evaluate_model(result.last_model_path, data_yaml, "train", print_table=False)
    assert metrics["num_ground_truth"] >= 8
    assert metrics["map50"] >= 0.9, metrics["per_class"]


@pytest.mark.slow
@pytest.mark.smoke
def test_smoke_mixed_precision_training(small_run):
    folder, data_yaml, cfg = small_run
    result = train_detector(data=data_yaml, model=str(cfg), input_size=64, epochs=1, batch_size=2, augment=False,
                            mixed_precision=True, out_dir=folder / "mixed", verbose=0, log=lambda message: None)
    assert np.isfinite(result.history["loss"][0])
    model = keras.saving.load_model(result.last_model_path, safe_mode=True)
    assert model.get_layer("conv_0").dtype_policy.name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
