"""Grading a generated class in one command: honest, edited, wrong-model, malformed and malicious submissions,
rescored by real isolated workers on the instructor's own data (``defi1 collect ... --rescore-*``)."""

import csv
import os

import pytest

from defi1.cli import main
from defi1.grading.rescore import STATE_FILE
from defi1.grading.table import CSV_COLUMNS, GRADING_GRID
from tests.grading.builders import KINDS, assert_close, build_class, build_material, files_outside

#: Flags expected on each kind of submission (rescoring accuracy and mAP with the default tolerance of 0.1).
EXPECTED_FLAGS = {
    "honest": [], "honest_zip": [], "nested": [], "byte_order_mark": [],
    "edited_json": ["rescore_disagrees"],
    "wrong_model": ["model_mismatch"],
    "no_provenance": ["no_provenance"],
    "impossible_metric": ["impossible_metric", "rescore_disagrees"],
    "malformed_zip": ["malformed", "missing_part"],
    "truncated_json": ["malformed", "missing_part"],
    "path_traversal": ["unsafe_archive"],
    "symlink": ["unsafe_archive"],
    "zip_bomb": ["unsafe_archive", "missing_part"],
    "lambda_model": ["unsafe_model"],
}
RESCORED_IN_FULL = ("honest", "honest_zip", "nested", "byte_order_mark", "edited_json", "no_provenance",
                    "impossible_metric", "path_traversal", "symlink", "truncated_json")


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    return build_material(tmp_path_factory.mktemp("material"))


def grade(root, material, out_dir, *options):
    return main(["collect", str(root), "-o", str(out_dir / "grades.csv"), "--rescore-detection",
                 str(material.data_yaml), "--rescore-classification", str(material.digits_dir), *options])


def read_rows(out_dir):
    with open(out_dir / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def check_row(row, kind, material):
    """The row of one generated submission: its flags, and rescored figures where a model could be measured."""
    assert (row["flags"].split(";") if row["flags"] else []) == EXPECTED_FLAGS[kind], (row["student"], row["flags"])
    truth = material.scores[0]
    if kind in RESCORED_IN_FULL:
        assert_close(row["part2_map50_rescored"], truth["map50"])
        assert_close(row["part2_map50_95_rescored"], truth["map50_95"])
        assert_close(row["part1_test_accuracy_rescored"], truth["test_accuracy"])
    if kind in ("honest", "honest_zip", "nested", "byte_order_mark"):
        assert_close(row["part2_map50"], truth["map50"])  # self-reported equals rescored
    if kind == "edited_json":
        assert row["part2_map50"] == "0.97" and "map50: reported 0.97, rescored " in row["problems"]
    if kind == "wrong_model":  # the submitted detector is rescored: it is not the one that was measured
        assert row["part2_map50_rescored"] != "" and "but the results were measured with" in row["problems"]
    if kind == "lambda_model":
        assert row["part2_map50_rescored"] == ""
        assert "Lambda layer 'student_code' (it holds Python code)" in row["problems"]
        assert_close(row["part1_test_accuracy_rescored"], truth["test_accuracy"])
    if kind in ("malformed_zip", "zip_bomb"):
        assert row["part1_test_accuracy_rescored"] == "" and row["part2_map50_rescored"] == ""
    if kind == "zip_bomb":
        assert "zip bomb? 5.6 GB uncompressed" in row["problems"]
    assert all(row[column] == "" for column, _ in GRADING_GRID)


def test_a_small_class_in_one_command(material, tmp_path, capsys):
    # three rescored by real workers; the wrong model and the other kinds are in the slow test of 100 below
    kinds = ("honest_zip", "edited_json", "lambda_model", "malformed_zip", "zip_bomb")
    students = build_class(tmp_path / "class", material, len(kinds), kinds=kinds)
    before = files_outside(tmp_path)
    out_dir = tmp_path / "out"
    assert grade(tmp_path / "class", material, out_dir, "--jobs", "2") == 0
    printed = capsys.readouterr().out
    assert "5 submission(s), 4 flagged" in printed
    rows = read_rows(out_dir)
    assert sorted(rows) == sorted(students) and tuple(next(iter(rows.values()))) == CSV_COLUMNS
    for student, kind in students.items():
        check_row(rows[student], kind, material)
    assert not (material.lambda_detector.parent.parent / "LAMBDA_RAN").exists()  # the Lambda never ran
    assert {path for path in files_outside(tmp_path) - before if not path.startswith(str(out_dir))} == set()
    # run again: every student is taken from the state file, nothing is rescored twice
    state = (out_dir / "grades_work" / STATE_FILE).read_text()
    assert len(state.splitlines()) == 3  # the three readable submissions
    assert grade(tmp_path / "class", material, out_dir, "--jobs", "2") == 0
    assert (out_dir / "grades_work" / STATE_FILE).read_text() == state and read_rows(out_dir) == rows


@pytest.mark.slow
def test_a_class_of_100_generated_submissions(material, tmp_path, capsys):
    students = build_class(tmp_path / "class", material, 100)
    assert sorted(set(students.values())) == sorted(KINDS)
    out_dir = tmp_path / "out"
    assert grade(tmp_path / "class", material, out_dir, "--jobs", "2") == 0
    rows = read_rows(out_dir)
    assert sorted(rows) == sorted(students)
    for student, kind in students.items():
        check_row(rows[student], kind, material)
    assert not os.path.exists("/tmp/defi1_absolute_escape.txt")
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    summary = (out_dir / "grades_summary.md").read_text()
    unsafe = sum(kind in ("path_traversal", "symlink", "zip_bomb") for kind in students.values())
    assert "# Results collected from 100 submission(s)" in summary and f"| unsafe_archive | {unsafe} |" in summary


@pytest.mark.slow
def test_speed_is_rescored_on_the_instructors_machine(material, tmp_path):
    students = build_class(tmp_path / "class", material, 2, kinds=("honest", "nested"))
    out_dir = tmp_path / "out"
    assert grade(tmp_path / "class", material, out_dir, "--rescore-bench", "--bench-frames", "5") == 0
    for student in students:
        row = read_rows(out_dir)[student]
        assert float(row["part3_fps_end_to_end_rescored"]) > 0 and float(row["part3_fps_model_rescored"]) > 0
        assert row["rescore_device"].startswith(("CPU", "GPU")) and row["flags"] == ""
