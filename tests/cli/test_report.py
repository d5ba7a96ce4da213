"""``defi1 report`` (defi1.cli.report): the skeleton written, updated while untouched, kept once edited."""

import pytest

from defi1.cli import main
from defi1.report import PLACEHOLDER

from ..test_report import make_project

pytestmark = pytest.mark.backend_agnostic  # files and text only


def test_cli_report_writes_updates_and_refuses_to_replace_an_edited_report(tmp_path, capsys):
    root = make_project(tmp_path / "student")
    out = root / "report.md"
    arguments = ["report", "--results", str(root / "results"), "--out", str(out)]
    assert main(arguments) == 0
    assert f"report skeleton written: {out}" in capsys.readouterr().out
    assert "| test_accuracy | 0.9125 |" in out.read_text()
    assert main(arguments) == 0  # untouched skeleton: updated
    out.write_text(out.read_text().replace(PLACEHOLDER, "Mine.", 1))
    assert main(arguments) == 1
    assert "already exists and holds your own writing; not replaced (use --force" in capsys.readouterr().err
    assert "Mine." in out.read_text()
    assert main(arguments + ["--force"]) == 0 and "Mine." not in out.read_text()


def test_cli_report_missing_results_folder(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "r.md")]) == 1
    assert "no such results folder" in capsys.readouterr().err
