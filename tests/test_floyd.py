"""floyd.yml parses in FloydHub's format and every `defi1 ...` command in it is accepted by the CLI's parser."""

import shlex
from pathlib import Path

import pytest
import yaml

from defi1.cli import build_parser

FLOYD_FILE = Path(__file__).resolve().parents[1] / "floyd.yml"


def _defi1_commands(command_line):
    for segment in command_line.split("&&"):
        words = shlex.split(segment.strip())
        if words and words[0] == "defi1":
            yield words[1:]


def _tasks():
    config = yaml.safe_load(FLOYD_FILE.read_text(encoding="utf-8"))
    return config


def test_floyd_file_has_floydhub_structure():
    config = _tasks()
    assert config["env"] and config["machine"] in ("cpu", "gpu", "cpu2", "gpu2")
    for mount in config["input"]:
        assert set(mount) == {"source", "destination"}
    assert isinstance(config["task"], dict) and config["task"]
    for name, task in config["task"].items():
        assert task["machine"] in ("cpu", "gpu", "cpu2", "gpu2"), name
        assert "defi1 " in task["command"], name


@pytest.mark.parametrize("task_name", sorted(_tasks()["task"]))
def test_each_task_command_is_accepted_by_the_cli(task_name):
    parser = build_parser()
    commands = list(_defi1_commands(_tasks()["task"][task_name]["command"]))
    assert commands, f"task {task_name} runs no defi1 command"
    for words in commands:
        arguments = parser.parse_args(words)  # argparse exits (SystemExit) on an unknown command or option
        assert callable(arguments.handler), words


def test_inputs_are_mounted_where_the_commands_read_them():
    config = _tasks()
    destinations = {mount["destination"] for mount in config["input"]}
    for name, task in config["task"].items():
        for word in shlex.split(task["command"].replace("&&", " ")):
            if word.startswith("/floyd/input/"):
                assert word.split("/")[3] in destinations, (name, word)
