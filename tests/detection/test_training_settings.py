"""Tests of defi1.detection.training_settings: the course's stages and the settings refused."""

import dataclasses

import pytest

from defi1.detection.training_settings import TrainingSettings

pytestmark = pytest.mark.backend_agnostic


def test_stages_follow_the_course():
    with_weights = TrainingSettings(data="d.yaml", weights="yolov3-tiny.weights", epochs=30)
    # 3 frozen epochs, then all layers at 1e-3: measured best on BCCD from darknet's tiny weights (RESULTS.md).
    assert with_weights.stages() == [(0, 3, 1e-3, True, 1), (3, 30, 1e-3, False, 2)]
    from_scratch = TrainingSettings(data="d.yaml", epochs=30)
    assert from_scratch.stages() == [(0, 30, 2e-3, False, 1)]  # the from-scratch recipe's rate
    capped = TrainingSettings(data="d.yaml", epochs=5, freeze_epochs=8, learning_rate=0.01)
    assert capped.stages() == [(0, 5, 0.01, True, 1)]


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainingSettings(data="d.yaml", input_size=100).check()
    with pytest.raises(ValueError, match="at least 1"):
        TrainingSettings(data="d.yaml", epochs=0).check()


def test_impossible_schedule_settings_are_refused():
    for wrong, message in ((dict(learning_rate_schedule="step"), "must be one of plateau, cosine, got 'step'"),
                           (dict(ema_momentum=1.0), r"ema_momentum must be in \(0, 1\) or None, got 1.0"),
                           (dict(warmup_epochs=-1), "warmup_epochs must be >= 0"),
                           (dict(multi_scale_sizes=(320, 100)), r"positive multiples of 32, got \(320, 100\)"),
                           (dict(assign_threshold=-0.1), r"assign_threshold must be in \[0, 1\]"),
                           (dict(max_time_s=0), "the time limit must be positive, got 0 s")):
        with pytest.raises(ValueError, match=message):
            TrainingSettings(data="d.yaml", **wrong).check()


def test_auto_fields_resolve_to_the_recipe_from_scratch_only():
    from defi1.detection.augment import AugmentationSettings
    from defi1.detection.training_settings import FROM_SCRATCH_RECIPE, LIGHT_AUGMENTATION

    scratch = TrainingSettings(data="d.yaml").resolved()
    assert {key: getattr(scratch, key) for key in FROM_SCRATCH_RECIPE} == FROM_SCRATCH_RECIPE
    pretrained = TrainingSettings(data="d.yaml", weights="w.weights", ema_momentum=0.9).resolved()
    assert (pretrained.learning_rate_schedule, pretrained.ema_momentum, pretrained.anchors) == ("plateau", 0.9, None)
    # From pretrained weights with a time limit, the budget is known: cosine decays to its end (BCCD, RESULTS.md).
    timed = TrainingSettings(data="d.yaml", weights="w.weights", max_time_s=1800).resolved()
    assert timed.learning_rate_schedule == "cosine"
    assert TrainingSettings(data="d.yaml", weights="w.weights", max_time_s=1800,
                            learning_rate_schedule="plateau").resolved().learning_rate_schedule == "plateau"
    # A darknet cfg carries its own anchors: no k-means for it; a dict changes fields of the resolved augmentation.
    cfg = TrainingSettings(data="d.yaml", model="my.cfg", augmentation={"hue": 0.0}).resolved()
    assert cfg.anchors is None and cfg.augmentation == AugmentationSettings(
        scale_range=LIGHT_AUGMENTATION.scale_range, aspect_jitter=0.1, translate=0.05, hue=0.0)
    with pytest.raises(ValueError, match="best_metric must be one of map50-95, map50, val_loss, got 'map'"):
        TrainingSettings(data="d.yaml", best_metric="map").check()
    assert TrainingSettings(data="d.yaml").best_monitor(True) == ("val_map50_95", "max")
    assert TrainingSettings(data="d.yaml", validation_map=False).best_monitor(True) == ("val_loss", "min")
    assert TrainingSettings(data="d.yaml", best_metric="map50").best_monitor(False) == ("loss", "min")


def test_early_stopping_watches_the_smooth_loss_with_plateaus_and_the_graded_metric_with_cosine():
    # Plateau: the validation loss, which the rate cuts watch too. Cosine: what chooses best.keras (the validation
    # loss rises and falls with the rate; on BCCD it stopped a 30-minute run halfway down the decay).
    plateau = TrainingSettings(data="d.yaml", weights="w.weights").resolved()
    assert plateau.learning_rate_schedule == "plateau" and plateau.stopping_monitor(True) == ("val_loss", "min")
    cosine = TrainingSettings(data="d.yaml", weights="w.weights", max_time_s=1800).resolved()
    assert cosine.stopping_monitor(True) == ("val_map50_95", "max")
    assert dataclasses.replace(cosine, best_metric="map50").stopping_monitor(True) == ("val_map50", "max")
    assert dataclasses.replace(cosine, validation_map=False).stopping_monitor(True) == ("val_loss", "min")
    assert cosine.stopping_monitor(False) == plateau.stopping_monitor(False) == ("loss", "min")
