"""Tests of defi1.yolo.architectures: the generated cfgs describe the same networks as darknet's files."""

import numpy as np
import pytest

from defi1.yolo.architectures import yolov3_cfg, yolov3_spp_cfg, yolov3_tiny_cfg
from defi1.yolo.cfg import parse_cfg


def _value(text):
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return tuple(float(item) for item in items)
    except ValueError:
        return text.strip()


def _layers(sections):
    """Layer sections with normalised values (``.7`` == ``0.7``, ``6, 7,8`` == ``6,7,8``)."""
    return [(section.type, {key: _value(value) for key, value in section.options.items()})
            for section in sections[1:]]


@pytest.mark.parametrize("name, generator, arguments", [
    ("yolov3", yolov3_cfg, {"num_classes": 80, "input_size": 608}),
    ("yolov3-spp", yolov3_spp_cfg, {"num_classes": 80, "input_size": 608}),
    ("yolov3-voc", yolov3_cfg, {"num_classes": 20, "input_size": 416, "ignore_threshold": 0.5}),
    ("yolov3-tiny", yolov3_tiny_cfg, {"num_classes": 80, "input_size": 416}),
])
def test_generated_cfg_matches_darknet_file(darknet_dir, name, generator, arguments):
    reference = parse_cfg(darknet_dir / "cfg" / f"{name}.cfg")
    generated = parse_cfg(generator(**arguments))
    assert _layers(generated) == _layers(reference)
    assert generated[0].options == {"width": str(arguments["input_size"]), "height": str(arguments["input_size"]),
                                    "channels": "3"}
    assert generated[0].get_int("width") == reference[0].get_int("width")


def test_custom_classes_and_anchors():
    anchors = np.arange(1, 13, dtype=float).reshape(6, 2) * 10
    sections = parse_cfg(yolov3_tiny_cfg(num_classes=3, input_size=320, anchors=anchors))
    yolo = [section for section in sections if section.type == "yolo"]
    assert [section.options["classes"] for section in yolo] == ["3", "3"]
    assert yolo[0].get_floats("anchors") == list(anchors.ravel())
    head_convolutions = [sections[sections.index(section) - 1] for section in yolo]
    assert [section.options["filters"] for section in head_convolutions] == ["24", "24"]


@pytest.mark.parametrize("arguments, message", [
    ({"num_classes": 0}, "num_classes must be at least 1"),
    ({"num_classes": 3, "input_size": 100}, "multiple of 32"),
    ({"num_classes": 3, "anchors": [[10, 10]] * 3}, r"does not index into the 3 anchors"),
    ({"num_classes": 3, "masks": [[0, 1, 2]]}, "expected 3 masks"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        yolov3_cfg(**arguments)
