"""``defi1 detect train`` and ``defi1 detect evaluate`` (defi1.cli.detect_train): every flag reaches the training
settings, evaluation reports are written, bad values are one-line errors."""

import json

import pytest

import defi1.detection.training as training
from defi1.cli import main
from defi1.detection.dataset import MULTI_SCALE_SIZES

from ..detection.test_evaluation import _write_prediction_files, dataset  # noqa: F401  (fixture)


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
    """Issue 11: from scratch, the measured recipe is the default (k-means anchors included); with pretrained
    weights, YOLOv3's own rules. best.keras is chosen on the validation map50-95."""
    from defi1.detection.training_settings import FROM_SCRATCH_RECIPE, PRETRAINED_DEFAULTS

    assert main(["detect", "train", "--data", "d.yaml", "--multi-scale"]) == 0
    (settings,) = captured_settings
    assert settings.multi_scale and settings.multi_scale_sizes == MULTI_SCALE_SIZES == tuple(range(320, 609, 32))
    assert settings.max_time_s is None and settings.jit_compile == "auto" and settings.best_metric == "map50-95"
    assert settings.validation_map and not settings.exist_ok
    from_scratch = settings.resolved()
    assert {key: getattr(from_scratch, key) for key in FROM_SCRATCH_RECIPE} == FROM_SCRATCH_RECIPE
    assert from_scratch.anchors == "kmeans" and from_scratch.learning_rate == 0.002
    assert main(["detect", "train", "--data", "d.yaml", "--weights", "w.weights"]) == 0
    pretrained = captured_settings[1].resolved()
    assert not captured_settings[1].multi_scale
    assert {key: getattr(pretrained, key) for key in PRETRAINED_DEFAULTS} == PRETRAINED_DEFAULTS


def test_every_training_setting_has_a_flag(captured_settings):
    """Issue 11: every TrainingSettings field is set by a flag of `detect train` (a value unlike its default for
    each), so the command line reproduces what a notebook does; the recipe's fields among them."""
    import dataclasses

    from defi1.detection.augment import AugmentationSettings
    from defi1.detection.training_settings import FROM_SCRATCH_RECIPE, TrainingSettings

    flags = ["--data", "d.yaml", "--model", "yolov3", "--weights", "w.weights", "--input-size", "320", "--epochs",
             "30", "--freeze-epochs", "5", "--batch-size", "4", "--learning-rate", "0.002",
             "--fine-tune-learning-rate", "0.0002", "--out", "runs/x", "--resume", "--exist-ok",
             "--mixed-precision", "--multi-scale", "128,224", "--distribute", "--no-augment", "--scale-jitter", "0.1",
             "--aspect-jitter", "0.1", "--translate", "0.05", "--flip", "0.25", "--hue", "0.05", "--saturation",
             "1.2", "--exposure", "1.3", "--min-box-size", "3", "--min-visible-fraction", "0.5", "--repeat", "2",
             "--anchors", "kmeans", "--schedule", "cosine", "--warmup-epochs", "1", "--final-lr-fraction", "0.05",
             "--ema", "0.99", "--patience", "0", "--reduce-lr-patience", "2", "--reduce-lr-factor", "0.5",
             "--max-boxes", "50", "--assign-threshold", "0.213", "--box-weighting", "uniform", "--box-loss", "ciou",
             "--batchnorm-momentum", "0.95", "--workers", "2",
             "--multiprocessing", "--seed", "4", "--steps-per-epoch", "7", "--time-limit", "2.5", "--best-metric",
             "map50", "--no-val-map", "--progress", "2", "--jit-compile", "on"]
    assert main(["detect", "train", *flags]) == 0
    (settings,) = captured_settings
    default = TrainingSettings(data="other.yaml")
    unchanged = [field.name for field in dataclasses.fields(TrainingSettings)
                 if getattr(settings, field.name) == getattr(default, field.name)]
    assert unchanged == []
    assert settings.augmentation == {"scale_range": (0.9, 1.1), "aspect_jitter": 0.1, "translate": 0.05,
                                     "flip_probability": 0.25, "hue": 0.05, "saturation": 1.2, "exposure": 1.3,
                                     "min_box_size": 3.0, "min_visible_fraction": 0.5}
    augmentation_fields = {field.name for field in dataclasses.fields(AugmentationSettings)} - {"fill"}
    assert set(settings.augmentation) == augmentation_fields  # fill: the letterbox grey, not a training choice
    # The recipe spelled out on the command line, with pretrained weights, gives the recipe.
    resolved = settings.resolved()
    recipe_values = {key: getattr(resolved, key) for key in FROM_SCRATCH_RECIPE}
    assert recipe_values["augmentation"] == dataclasses.replace(FROM_SCRATCH_RECIPE["augmentation"],
                                                                flip_probability=0.25, hue=0.05, saturation=1.2,
                                                                exposure=1.3, min_box_size=3.0,
                                                                min_visible_fraction=0.5)
    del recipe_values["augmentation"]
    assert recipe_values == {key: value for key, value in FROM_SCRATCH_RECIPE.items() if key != "augmentation"}


def test_pretrained_two_stage_defaults_are_the_library_ones(captured_settings):
    """The CLI's two-stage defaults are TrainingSettings' (measured on BCCD, benchmarks/RESULTS.md): 3 frozen epochs
    at 1e-3, then every layer at 1e-3, 416 px, COCO's anchors; cosine decay with a time limit, plateau without."""
    from defi1.detection.training_settings import TrainingSettings

    assert main(["detect", "train", "--data", "d.yaml", "--weights", "yolov3-tiny.weights"]) == 0
    (settings,) = captured_settings
    library = TrainingSettings(data="d.yaml", weights="yolov3-tiny.weights")
    assert settings.stages() == library.stages() == [(0, 3, 1e-3, True, 1), (3, 50, 1e-3, False, 2)]
    resolved, library_resolved = settings.resolved(), library.resolved()
    assert resolved.learning_rate_schedule == library_resolved.learning_rate_schedule == "plateau"
    timed = ["detect", "train", "--data", "d.yaml", "--weights", "yolov3-tiny.weights", "--time-limit", "30"]
    assert main(timed) == 0
    assert captured_settings[-1].resolved().learning_rate_schedule == "cosine"
    assert (resolved.input_size, resolved.anchors) == (library_resolved.input_size, library_resolved.anchors) == (416, None)


@pytest.mark.parametrize("value", ["100,200", "320", "608,320", "a,b"])
def test_bad_multi_scale_range_is_a_one_line_error(captured_settings, capsys, value):
    assert main(["detect", "train", "--data", "d.yaml", "--multi-scale", value]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"defi1: error: --multi-scale {value}: expected MIN,MAX") and not captured_settings


def test_cli_evaluate_pred_writes_metrics(dataset, tmp_path, capsys):
    pred_dir = tmp_path / "predictions"
    pred_dir.mkdir()
    # Every box shifted right by 5 pixels: IoUs 0.6 (20-wide), 0.71 (30-wide), 0.6 (20-wide), 0.78 (40-wide):
    # all true positives at IoU 0.5, so mAP50 = 1, but not at 0.75 and above.
    _write_prediction_files(pred_dir, shift=5.0)
    out_dir = tmp_path / "cli_report"
    code = main(["detect", "evaluate", "--pred", str(pred_dir), "--data", str(dataset), "--split", "test",
                 "--out", str(out_dir)])
    assert code == 0
    written = json.loads((out_dir / "metrics.json").read_text())
    assert written["map50"] == pytest.approx(1.0)
    assert written["map50_95"] < 0.6
    # Issue 11: precision and recall at the best-F1 confidence: every detection (all at 0.8) is right at IoU 0.5.
    assert written["best_f1"] == {"confidence": 0.8, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    output = capsys.readouterr().out
    assert "metrics.json" in output and "at confidence 0.800 (best F1 1.000): precision 1.000, recall 1.000" in output


def test_cli_evaluate_needs_a_model_or_predictions(dataset, capsys):
    with pytest.raises(SystemExit, match="^2$"):  # argparse's usage error
        main(["detect", "evaluate", "--data", str(dataset)])
    assert "one of the arguments --model --pred is required" in capsys.readouterr().err


def test_cli_evaluate_missing_model_is_one_line_error(dataset, tmp_path, capsys):
    code = main(["detect", "evaluate", "--model", str(tmp_path / "absent.keras"), "--data", str(dataset)])
    assert code == 1
    assert "absent.keras" in capsys.readouterr().err


def test_cli_train_maps_every_option_to_the_settings(monkeypatch, tmp_path):
    import defi1.detection.training as training

    captured = {}

    def fake_train(settings):
        captured["settings"] = settings
        return training.TrainingResult(out_dir=tmp_path, best_model_path=tmp_path / "best.keras",
                                       last_model_path=tmp_path / "last.keras", log_path=tmp_path / "log.csv",
                                       curves_path=None, epochs_completed=3, best_validation_loss=1.0)

    monkeypatch.setattr(training, "train_detector", fake_train)
    code = main(["detect", "train", "--data", "d.yaml", "--model", "yolov3", "--weights", "yolov3.weights",
                 "--input-size", "320", "--epochs", "30", "--freeze-epochs", "5", "--batch-size", "4", "--out",
                 str(tmp_path), "--resume", "--mixed-precision", "--multi-scale", "--distribute", "--no-augment",
                 "--anchors", "kmeans"])
    assert code == 0
    settings = captured["settings"]
    assert (settings.data, settings.model, settings.weights) == ("d.yaml", "yolov3", "yolov3.weights")
    assert (settings.input_size, settings.epochs, settings.freeze_epochs, settings.batch_size) == (320, 30, 5, 4)
    assert settings.resume and settings.mixed_precision and settings.multi_scale and settings.distribute
    assert not settings.augment and settings.anchors == "kmeans" and settings.out_dir == str(tmp_path)


def test_cli_evaluate_multi_label_reaches_the_detector(dataset, tmp_path, monkeypatch):  # noqa: F811
    import defi1.detection.evaluation as evaluation

    asked = []
    monkeypatch.setattr(evaluation, "evaluate_model", lambda *args, **options: asked.append(options) or {})
    for flags in ([], ["--multi-label"]):
        assert main(["detect", "evaluate", "--model", "m.keras", "--data", str(dataset), *flags]) == 0
    assert [options["multi_label"] for options in asked] == [False, True]
