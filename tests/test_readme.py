"""Every `defi1 ...` command shown in the README's code blocks is accepted by the CLI's parser."""

import re
import shlex
from pathlib import Path

import pytest

from defi1.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands():
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for segment in line.split("#")[0].split("&&"):
                words = shlex.split(segment.strip())
                if words and words[0] == "defi1":
                    commands.append(words[1:])
    return commands


def test_readme_has_the_two_quick_start_commands():
    text = README.read_text(encoding="utf-8")
    assert 'pip install -e . && defi1 demo' in text
    assert 'pip install -e ".[test]" && python -m pytest' in text
    ci_script = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test]" && python -m pytest' in ci_script


@pytest.mark.parametrize("words", _readme_commands(), ids=lambda words: " ".join(words[:2]))
def test_readme_command_is_accepted_by_the_cli(words):
    arguments = build_parser().parse_args(words)
    assert callable(arguments.handler)
