"""Tests of defi1.yolo.cfg: darknet cfg parsing, formatting and the supported-subset check."""

import pytest

from defi1.errors import ConfigError
from defi1.yolo.cfg import NET_KEYS_IGNORED, check_supported, format_cfg, parse_cfg

SMALL_CFG = """# a comment
[net]
width = 64
height=64   # trailing comment
channels=3
learning_rate=0.001

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

; another comment style
[route]
layers = -1, 0
"""


def test_parse_sections_options_and_lines():
    sections = parse_cfg(SMALL_CFG)
    assert [section.type for section in sections] == ["net", "convolutional", "route"]
    assert sections[0].options == {"width": "64", "height": "64", "channels": "3", "learning_rate": "0.001"}
    assert sections[1].options["filters"] == "8"
    assert [section.line for section in sections] == [2, 8, 17]
    assert sections[1].key_lines["stride"] == 12
    assert sections[2].get_ints("layers") == [-1, 0]
    assert sections[0].get_int("width") == 64
    assert sections[1].get_int("dilation", 1) == 1


def test_parse_reads_a_file_and_names_it_in_errors(tmp_path):
    path = tmp_path / "small.cfg"
    path.write_text(SMALL_CFG)
    assert [section.type for section in parse_cfg(path)] == ["net", "convolutional", "route"]
    assert len(parse_cfg(str(path))) == 3
    path.write_text("[net]\nwidth=64\nthis line has no equals sign\n")
    with pytest.raises(ConfigError, match=r"small\.cfg: line 3: expected 'key=value'"):
        parse_cfg(path)


def test_format_cfg_round_trips():
    sections = parse_cfg(SMALL_CFG)
    again = parse_cfg(format_cfg(sections))
    assert [(section.type, section.options) for section in again] == [
        (section.type, section.options) for section in sections]


@pytest.mark.parametrize("text, message", [
    ("width=3\n[net]\n", r"line 1: key 'width=3' before the first \[section\]"),
    ("[net]\n[convolutional\n", r"line 2: malformed section header"),
    ("[net]\nwidth=1\nwidth=2\n", r"line 3: key 'width' given twice in \[net\] \(first at line 2\)"),
    ("# nothing\n", r"no \[section\] found"),
])
def test_syntax_errors_name_the_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_cfg(text)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.cfg"):
        parse_cfg(tmp_path / "missing.cfg")


def test_check_supported_accepts_training_keys():
    sections = parse_cfg(SMALL_CFG)
    assert sections[0].options["learning_rate"] == "0.001" and "learning_rate" in NET_KEYS_IGNORED
    assert check_supported(sections) is None  # accepted: no ConfigError
    assert sections[0].options["learning_rate"] == "0.001"  # and kept, for writing the cfg back
    # Every [net] key of darknet's own training loop is accepted the same way.
    every_key = "[net]\n" + "".join(f"{key}=1\n" for key in sorted(NET_KEYS_IGNORED)) + "\n[route]\nlayers=-1\n"
    assert check_supported(parse_cfg(every_key)) is None


def test_unsupported_section_names_section_and_line():
    text = SMALL_CFG + "\n[dropout]\nprobability=.5\n"
    with pytest.raises(ConfigError, match=r"line 20: unsupported section \[dropout\] \(layer 2\)"):
        check_supported(parse_cfg(text), source="small.cfg")


def test_unsupported_key_names_key_section_and_line():
    text = SMALL_CFG.replace("activation=leaky", "activation=leaky\nxnor=1")
    with pytest.raises(ConfigError, match=r"line 15: unsupported key 'xnor' in \[convolutional\] at line 8"):
        check_supported(parse_cfg(text))
    text = SMALL_CFG.replace("learning_rate=0.001", "mystery=1")
    with pytest.raises(ConfigError, match=r"line 6: unsupported key 'mystery' in \[net\]"):
        check_supported(parse_cfg(text))


@pytest.mark.parametrize("replacement, message", [
    ("activation=mish", r"activation 'mish' in \[convolutional\] at line 8 is not supported"),
    ("activation=leaky\ngroups=2", r"groups=2 in \[convolutional\] at line 8 is not supported"),
])
def test_unsupported_values(replacement, message):
    with pytest.raises(ConfigError, match=message):
        check_supported(parse_cfg(SMALL_CFG.replace("activation=leaky", replacement)))


def test_first_section_must_be_net():
    with pytest.raises(ConfigError, match=r"first section must be \[net\], found \[convolutional\] at line 1"):
        check_supported(parse_cfg("[convolutional]\nfilters=3\n"))
    with pytest.raises(ConfigError, match="channels=3"):
        check_supported(parse_cfg("[net]\nchannels=1\n"))


@pytest.mark.parametrize("name, num_layers", [("yolov3", 107), ("yolov3-tiny", 24), ("yolov3-spp", 114),
                                              ("yolov3-voc", 107)])
def test_reference_cfgs_parse_and_are_supported(darknet_dir, name, num_layers):
    sections = parse_cfg(darknet_dir / "cfg" / f"{name}.cfg")
    check_supported(sections)
    assert len(sections) - 1 == num_layers
    assert sum(section.type == "yolo" for section in sections) == (2 if name == "yolov3-tiny" else 3)
