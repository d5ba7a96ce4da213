"""``defi1 collect`` (defi1.cli.collect): a grades table from submission folders; flags and errors printed."""

import pytest

from defi1.cli import main

from ..test_collect import GOOD_PARTS, write_student

pytestmark = pytest.mark.backend_agnostic  # files, JSON and notebooks only


def test_cli_collect(tmp_path, capsys):
    root = tmp_path / "submissions"
    write_student(root / "alice", parts=GOOD_PARTS)
    write_student(root / "bob", parts={"classification": "[]"})
    assert main(["collect", str(root), "-o", str(tmp_path / "grades.csv")]) == 0
    printed = capsys.readouterr().out
    assert "bob: results/classification.json: expected a JSON object, got list" in printed
    assert "2 submission(s), 1 flagged" in printed
    assert (tmp_path / "grades_summary.md").is_file()


def test_cli_collect_unwritable_output(tmp_path, capsys):
    root = tmp_path / "submissions"
    write_student(root / "alice", parts=GOOD_PARTS)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["collect", str(root), "-o", str(blocker / "grades.csv")]) == 1
    assert "cannot create the output folder" in capsys.readouterr().err
