"""Tests of defi1.collect: submissions (folders and zips) -> grades table, summary, flags per student."""

import csv
import json
import zipfile

import nbformat
import pytest

from defi1.collect import (CSV_COLUMNS, GRADING_GRID, check_notebook_order, collect_submissions, find_submissions,
                           read_submission, write_grades_csv, write_summary)

pytestmark = pytest.mark.backend_agnostic  # files, JSON and notebooks only


def results_payload(part, metrics, *, smoke=False, device="CPU (2 cores, x86_64)"):
    return {"schema_version": 1, "part": part, "metrics": metrics, "dataset": "d", "model": "m",
            "keras_version": "3.15.1", "backend": "tensorflow", "device": device, "smoke": smoke,
            "timestamp": "2026-11-27T10:00:00+00:00"}


def notebook_text(counts):
    """A notebook whose code cells carry these execution counts (None = never run)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("# title"))
    for index, count in enumerate(counts):
        cell = nbformat.v4.new_code_cell(f"x = {index}")
        cell.execution_count = count
        notebook.cells.append(cell)
    notebook.cells.append(nbformat.v4.new_code_cell("   "))  # blank cells are never executed by nbclient
    return nbformat.writes(notebook)


def write_student(folder, *, parts, notebook_counts=(1, 2, 3)):
    (folder / "results").mkdir(parents=True)
    for part, payload in parts.items():
        text = payload if isinstance(payload, str) else json.dumps(payload)
        (folder / "results" / f"{part}.json").write_text(text)
    (folder / "01_classification.ipynb").write_text(notebook_text(list(notebook_counts)))
    return folder


GOOD_PARTS = {
    "classification": results_payload("classification", {"test_accuracy": 0.91}),
    "localisation": results_payload("localisation", {"map50": 0.55, "map50_95": 0.31}),
    "realtime": results_payload("realtime", {"fps_end_to_end": 27.5, "fps_model": 29.0}),
}


def test_notebook_in_order_has_no_problem():
    check = check_notebook_order(notebook_text([1, 2, 3]))
    assert check.code_cells == 3 and check.in_order


def test_notebook_out_of_order_names_the_cell():
    check = check_notebook_order(notebook_text([1, 3, 2]))
    # cells: 1 markdown, then code cells 2, 3, 4; the count goes back at cell 4
    assert check.problems == ["cells executed out of order (execution count goes back at cell 4)"]


def test_notebook_never_executed_and_rerun_cells():
    assert check_notebook_order(notebook_text([1, None, 2])).problems == [
        "1 code cell(s) never executed (cell 3)"]
    assert check_notebook_order(notebook_text([2, 3, 5])).problems == [
        "execution counts 2, 3, 5 are not 1..3 (cells re-run or kernel not restarted)"]


def test_notebook_unreadable():
    check = check_notebook_order("{not json", "x.ipynb")
    assert len(check.problems) == 1 and check.problems[0].startswith("not a readable notebook")


def test_folder_submission_figures(tmp_path):
    submission = read_submission(write_student(tmp_path / "alice", parts=GOOD_PARTS))
    assert submission.student == "alice"
    assert submission.problems == [] and submission.missing_parts == [] and submission.smoke_parts == []
    assert submission.figure("classification", "test_accuracy") == 0.91
    assert submission.figure("localisation", "map50_95") == 0.31
    assert submission.figure("realtime", "device") == "CPU (2 cores, x86_64)"


def test_zip_submission_nested_folder(tmp_path):
    folder = write_student(tmp_path / "work" / "bob-project", parts=GOOD_PARTS, notebook_counts=(1, 3, 2))
    archive_path = tmp_path / "bob.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for file in folder.rglob("*"):
            archive.write(file, file.relative_to(tmp_path / "work").as_posix())
    submission = read_submission(archive_path)
    assert submission.student == "bob"
    assert submission.figure("localisation", "map50") == 0.55
    assert submission.notebook_issues == [
        "bob-project/01_classification.ipynb: cells executed out of order (execution count goes back at cell 4)"]


def test_bad_submissions_are_reported_per_student_and_never_abort(tmp_path):
    root = tmp_path / "submissions"
    write_student(root / "alice", parts=GOOD_PARTS)
    write_student(root / "carol", parts={"classification": "{\"schema_version\": 1,",  # truncated JSON
                                         "localisation": results_payload("localisation", {"map50": "high"})})
    write_student(root / "dave", parts={"classification": results_payload("classification", {"test_accuracy": 0.5},
                                                                          smoke=True)})
    (root / "erin.zip").write_bytes(b"this is not a zip file")
    # a zip without any results folder
    with zipfile.ZipFile(root / "frank.zip", "w") as archive:
        archive.writestr("frank/readme.txt", "hello")
    submissions = {submission.student: submission for submission in collect_submissions([root])}
    assert sorted(submissions) == ["alice", "carol", "dave", "erin", "frank"]
    assert submissions["alice"].problems == []
    carol = submissions["carol"].problems
    assert carol[0] == "results/classification.json: not valid JSON (line 1: Expecting property name enclosed in " \
                       "double quotes)"
    assert carol[1] == "results/localisation.json: metric 'map50' is 'high', expected a finite number"
    assert submissions["carol"].missing_parts == ["classification", "localisation"]
    assert submissions["dave"].smoke_parts == ["classification"]
    assert submissions["dave"].problems == ["missing results/localisation.json"]
    assert "cannot read the submission (BadZipFile" in submissions["erin"].problems[0]
    assert submissions["frank"].problems == ["missing results/classification.json",
                                             "missing results/localisation.json"]


def test_grades_csv_and_summary(tmp_path):
    root = tmp_path / "submissions"
    write_student(root / "alice", parts=GOOD_PARTS)
    second = dict(GOOD_PARTS)
    second["classification"] = results_payload("classification", {"test_accuracy": 0.75})
    del second["realtime"]
    write_student(root / "bob", parts=second, notebook_counts=(1, None))
    submissions = collect_submissions([root])
    csv_path = write_grades_csv(submissions, tmp_path / "out" / "grades.csv")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["student"] for row in rows] == ["alice", "bob"]
    assert rows[0]["part1_test_accuracy"] == "0.91" and rows[0]["part3_fps_end_to_end"] == "27.5"
    assert rows[1]["part3_fps_end_to_end"] == "" and rows[1]["missing_parts"] == ""  # Part 3 is optional
    assert rows[1]["notebook_issues"] == "01_classification.ipynb: 1 code cell(s) never executed (cell 3)"
    assert sum(weight for _, weight in GRADING_GRID) == 120
    assert all(rows[0][column] == "" for column, _ in GRADING_GRID)
    summary = write_summary(submissions, tmp_path / "out" / "grades_summary.md").read_text()
    assert "| classification | 2/2 | 0 |" in summary
    assert "- part1_test_accuracy: n=2, min 0.75, median 0.83, max 0.91" in summary
    assert (tmp_path / "out" / "grades_summary_part1_test_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert "**bob**" in summary and "**alice**" not in summary


def test_find_submissions_single_folder_and_missing_path(tmp_path):
    folder = write_student(tmp_path / "alice", parts=GOOD_PARTS)
    assert find_submissions([folder]) == [folder]
    with pytest.raises(FileNotFoundError, match="nobody"):
        find_submissions([tmp_path / "nobody"])
