"""``defi1 detect train``: every flag reaches the training settings; bad values are one-line errors."""

import pytest

import defi1.detection.training as training
from defi1.cli import main
from defi1.detection.dataset import MULTI_SCALE_SIZES


@pytest.fixture
def captured_settings(monkeypatch):
    """Replaces train_detector by a recorder: the CLI is tested for what it asks, not for training itself."""
    captured = []

    def record(settings):
        captured.append(settings)
        return training.TrainingResult(out_dir=settings.out_dir, best_model_path="best.keras",
                                       last_model_path="last.keras", log_path="log.csv", curves_path=None,
                                       epochs_completed=0, best_validation_loss=None)

    monkeypatch.setattr(training, "train_detector", record)
    return captured


def test_flags_reach_the_settings(captured_settings):
    code = main(["detect", "train", "--data", "d.yaml", "--model", "yolov3", "--weights", "w.weights",
                 "--input-size", "320", "--epochs", "30", "--freeze-epochs", "5", "--batch-size", "4",
                 "--learning-rate", "0.002", "--fine-tune-learning-rate", "0.0002", "--out", "runs/x",
                 "--multi-scale", "128,224", "--schedule", "cosine", "--warmup-epochs", "1.5", "--ema", "0.99",
                 "--assign-threshold", "0.213", "--time-limit", "2.5", "--jit-compile", "on", "--anchors", "kmeans",
                 "--patience", "0", "--workers", "2", "--multiprocessing", "--seed", "4", "--no-augment"])
    assert code == 0
    (settings,) = captured_settings
    assert (settings.data, settings.model, settings.weights, settings.input_size) == ("d.yaml", "yolov3",
                                                                                       "w.weights", 320)
    assert (settings.epochs, settings.freeze_epochs, settings.batch_size) == (30, 5, 4)
    assert (settings.learning_rate, settings.fine_tune_learning_rate) == (0.002, 0.0002)
    assert settings.multi_scale and settings.multi_scale_sizes == (128, 160, 192, 224)
    assert (settings.learning_rate_schedule, settings.warmup_epochs, settings.ema_momentum) == ("cosine", 1.5, 0.99)
    assert settings.assign_threshold == 0.213 and settings.max_time_s == 150.0 and settings.jit_compile is True
    assert (settings.anchors, settings.early_stopping_patience, settings.workers) == ("kmeans", 0, 2)
    assert settings.use_multiprocessing and settings.seed == 4 and not settings.augment


def test_defaults_follow_the_course(captured_settings):
    assert main(["detect", "train", "--data", "d.yaml", "--multi-scale"]) == 0
    (settings,) = captured_settings
    assert settings.multi_scale and settings.multi_scale_sizes == MULTI_SCALE_SIZES == tuple(range(320, 609, 32))
    assert settings.learning_rate_schedule == "plateau" and settings.ema_momentum is None
    assert settings.assign_threshold == 1.0 and settings.max_time_s is None and settings.jit_compile == "auto"
    assert main(["detect", "train", "--data", "d.yaml"]) == 0
    assert not captured_settings[1].multi_scale


@pytest.mark.parametrize("value", ["100,200", "320", "608,320", "a,b"])
def test_bad_multi_scale_range_is_a_one_line_error(captured_settings, capsys, value):
    assert main(["detect", "train", "--data", "d.yaml", "--multi-scale", value]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"defi1: error: --multi-scale {value}: expected MIN,MAX") and not captured_settings
