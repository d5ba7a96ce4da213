"""The command line offers exactly the values the library accepts (one definition, :mod:`defi1.choices`)."""

import argparse

import pytest

from defi1 import choices
from defi1.cli import build_parser
from defi1.detection.training_settings import TrainingSettings
from defi1.realtime.engines import make_forward
from defi1.yolo.loss import YoloLoss


def option_choices(parser: argparse.ArgumentParser, command: list[str], flag: str):
    """The ``choices`` of ``flag`` in the sub-command ``command`` (e.g. ``["detect", "train"]``)."""
    for name in command:
        subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        parser = subparsers.choices[name]
    option = next(action for action in parser._actions if flag in action.option_strings)
    return tuple(option.choices)


@pytest.mark.parametrize("command", [["detect", "predict"], ["detect", "stream"], ["detect", "evaluate"], ["bench"]])
def test_every_engine_option_offers_the_library_engines(command):
    assert option_choices(build_parser(), command, "--engine") == ("auto", "keras", "opencv", "onnxruntime")
    assert option_choices(build_parser(), command, "--engine") == choices.ENGINE_CHOICES


def test_training_options_offer_what_the_settings_accept():
    parser = build_parser()
    assert option_choices(parser, ["detect", "train"], "--box-weighting") == choices.BOX_WEIGHTINGS == (
        "darknet", "uniform")
    assert option_choices(parser, ["detect", "train"], "--box-loss") == choices.BOX_LOSSES == ("darknet", "ciou")
    for box_loss in choices.BOX_LOSSES:
        TrainingSettings(data="data.yaml", box_loss=box_loss).resolved().check()
        YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, box_loss=box_loss)
    assert option_choices(parser, ["detect", "train"], "--schedule") == ("auto",) + choices.LEARNING_RATE_SCHEDULES
    assert option_choices(parser, ["detect", "train"], "--best-metric") == tuple(choices.BEST_METRICS)
    for weighting in choices.BOX_WEIGHTINGS:
        TrainingSettings(data="data.yaml", box_weighting=weighting).resolved().check()
        YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, box_weighting=weighting)
    for schedule in choices.LEARNING_RATE_SCHEDULES:
        TrainingSettings(data="data.yaml", learning_rate_schedule=schedule).resolved().check()


def test_values_outside_the_choices_are_refused_with_the_allowed_ones_named():
    with pytest.raises(ValueError, match="box_weighting must be one of darknet, uniform, got 'area'"):
        TrainingSettings(data="data.yaml", box_weighting="area").resolved().check()
    with pytest.raises(ValueError, match="box_loss must be one of darknet, ciou, got 'giou'"):
        TrainingSettings(data="data.yaml", box_loss="giou").resolved().check()
    with pytest.raises(ValueError, match="box_loss='giou': expected one of darknet, ciou"):
        YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, box_loss="giou")
    with pytest.raises(ValueError, match="learning_rate_schedule must be one of plateau, cosine, got 'step'"):
        TrainingSettings(data="data.yaml", learning_rate_schedule="step").resolved().check()
    with pytest.raises(ValueError, match="expected one of darknet, uniform"):
        YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, box_weighting="area")
    with pytest.raises(ValueError, match="unknown engine 'tensorrt': expected one of keras, opencv, onnxruntime"):
        make_forward(None, "tensorrt")
