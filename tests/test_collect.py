"""Tests of defi1.collect: submissions (folders and zips) -> grades table, summary, flags per student."""

import csv
import hashlib
import json
import zipfile

import nbformat
import pytest

from defi1.collect import (CSV_COLUMNS, GRADING_GRID, check_notebook_order, collect_submissions, find_submissions,
                           read_submission, write_grades_csv, write_summary)

pytestmark = pytest.mark.backend_agnostic  # files, JSON and notebooks only


def model_bytes(part):
    """The stand-in model file each student submits for ``part`` (collect hashes it, never loads it)."""
    return f"model of {part}".encode()


def results_payload(part, metrics, *, smoke=False, device="CPU (2 cores, x86_64)", version=2):
    """A results file as record_results writes it (version 2: provenance naming ``models/<part>.keras``)."""
    payload = {"schema_version": version, "part": part, "metrics": metrics, "dataset": "d", "model": "m",
               "keras_version": "3.15.1", "backend": "tensorflow", "device": device, "smoke": smoke,
               "timestamp": "2026-11-27T10:00:00+00:00"}
    if version >= 2:
        payload["defi1_version"] = "0.1.0"
        payload["provenance"] = {"split": "test", "dataset_fingerprint": "f" * 64, "input_size": 64,
                                 "thresholds": None, "model_file": f"models/{part}.keras",
                                 "model_sha256": hashlib.sha256(model_bytes(part)).hexdigest()}
    return payload


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
    (folder / "models").mkdir()
    for part, payload in parts.items():
        text = payload if isinstance(payload, str) else json.dumps(payload)
        (folder / "results" / f"{part}.json").write_text(text)
        (folder / "models" / f"{part}.keras").write_bytes(model_bytes(part))
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


# --------------------------------------------------------------------------------- bad input (issue 12, collect)


def test_impossible_metrics_are_flagged_and_left_out_of_the_summary(tmp_path):
    root = tmp_path / "submissions"
    write_student(root / "alice", parts=GOOD_PARTS)  # 0.91, 0.55, 0.31
    write_student(root / "bob", parts={
        "classification": results_payload("classification", {"test_accuracy": 91}),
        "localisation": results_payload("localisation", {"map50": -0.5, "map50_95": 7}),
        "realtime": results_payload("realtime", {"fps_end_to_end": 0.0})})
    submissions = collect_submissions([root])
    bob = submissions[1]
    assert bob.problems == ["results/classification.json: metric 'test_accuracy' is 91, expected a value in [0, 1]",
                            "results/localisation.json: metric 'map50' is -0.5, expected a value in [0, 1]",
                            "results/localisation.json: metric 'map50_95' is 7, expected a value in [0, 1]",
                            "results/realtime.json: metric 'fps_end_to_end' is 0, expected a value above 0"]
    assert bob.all_flags == ["impossible_metric"] and submissions[0].all_flags == []
    summary = write_summary(submissions, tmp_path / "grades_summary.md").read_text()
    # only alice's figures count: bob's impossible ones would make the maximum 91 and the minimum -0.5
    assert "- part1_test_accuracy: n=1, min 0.91, median 0.91, max 0.91" in summary
    assert "- part2_map50: n=1, min 0.55, median 0.55, max 0.55" in summary
    assert "- part2_map50_95: n=1, min 0.31, median 0.31, max 0.31" in summary
    assert "| impossible_metric | 1 |" in summary
    rows = list(csv.DictReader(open(write_grades_csv(submissions, tmp_path / "grades.csv"), newline="")))
    assert rows[1]["part1_test_accuracy"] == "91" and rows[1]["flags"] == "impossible_metric"  # shown as reported


def test_results_one_level_down_are_filed_under_the_student(tmp_path):
    root = tmp_path / "submissions"
    write_student(root / "jack" / "defi1-main", parts=GOOD_PARTS)  # GitHub's "Download ZIP", unpacked
    write_student(root / "alice", parts=GOOD_PARTS)
    for paths in ([root], [root / "jack", root / "alice"]):  # the class folder, or each student (shell glob)
        submissions = collect_submissions(paths)
        assert sorted(submission.student for submission in submissions) == ["alice", "jack"]
        jack = next(submission for submission in submissions if submission.student == "jack")
        assert jack.problems == [] and jack.figure("localisation", "map50") == 0.55
    with zipfile.ZipFile(tmp_path / "kim.zip", "w") as archive:
        for file in (root / "jack").rglob("*"):
            archive.write(file, file.relative_to(root / "jack").as_posix())
    kim = read_submission(tmp_path / "kim.zip")
    assert kim.student == "kim" and kim.problems == [] and kim.part_models["localisation"] == \
        "defi1-main/models/localisation.keras"


def test_an_oversized_results_file_is_reported_without_being_read(tmp_path):
    import tracemalloc

    huge = json.dumps(results_payload("localisation", {"map50": 0.5, "map50_95": 0.3}))[:-1] + " " * (24 << 20) + "}"
    with zipfile.ZipFile(tmp_path / "zoe.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("results/localisation.json", huge)  # 24 MB of JSON in a 24 KB zip
        archive.writestr("results/classification.json",
                         json.dumps(results_payload("classification", {"test_accuracy": 0.8})))
        archive.writestr("models/classification.keras", model_bytes("classification"))
    del huge
    tracemalloc.start()
    zoe = read_submission(tmp_path / "zoe.zip")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert zoe.problems[0] == ("results/localisation.json: too large for a results file (24.0 MB, more than the "
                               "4.0 MB allowed); not read")
    assert zoe.figure("classification", "test_accuracy") == 0.8  # the rest of the submission is collected
    assert peak < 2 << 20  # nothing near the file's size was held in memory


def test_a_results_file_with_a_byte_order_mark_is_read(tmp_path):
    folder = write_student(tmp_path / "win", parts=GOOD_PARTS)
    path = folder / "results" / "classification.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Windows Notepad saves UTF-8
    submission = read_submission(folder)
    assert submission.problems == [] and submission.figure("classification", "test_accuracy") == 0.91


# ------------------------------------------------------------------------------------------------- provenance


def test_version_1_results_are_collected_and_flagged_as_lacking_provenance(tmp_path):
    folder = write_student(tmp_path / "old", parts={
        "classification": results_payload("classification", {"test_accuracy": 0.9}, version=1),
        "localisation": results_payload("localisation", {"map50": 0.5, "map50_95": 0.3})})
    submission = read_submission(folder)
    assert submission.figure("classification", "test_accuracy") == 0.9
    assert submission.problems == ["results/classification.json: schema version 1, no provenance (model hash, "
                                   "split, dataset fingerprint)"]
    assert submission.all_flags == ["no_provenance"]


def test_the_submitted_model_must_have_the_recorded_hash(tmp_path):
    folder = write_student(tmp_path / "eve", parts=GOOD_PARTS)
    (folder / "models" / "localisation.keras").write_bytes(b"another model")  # not the one measured
    (folder / "models" / "realtime.keras").unlink()
    (folder / "models" / "renamed_classifier.keras").write_bytes(
        (folder / "models" / "classification.keras").read_bytes())  # moved: found by its hash
    (folder / "models" / "classification.keras").unlink()
    submission = read_submission(folder)
    localisation_hash = hashlib.sha256(b"another model").hexdigest()
    recorded = hashlib.sha256(model_bytes("localisation")).hexdigest()
    assert submission.problems == [
        f"results/localisation.json: models/localisation.keras has SHA-256 {localisation_hash[:12]}..., but the "
        f"results were measured with {recorded[:12]}...",
        f"results/realtime.json: model file models/realtime.keras (SHA-256 "
        f"{hashlib.sha256(model_bytes('realtime')).hexdigest()[:12]}...) is not in the submission"]
    assert submission.all_flags == ["model_mismatch", "model_missing"]
    assert submission.part_models == {"classification": "models/renamed_classifier.keras",
                                      "localisation": "models/localisation.keras"}


def test_grades_table_columns(tmp_path):
    submissions = collect_submissions([write_student(tmp_path / "alice", parts=GOOD_PARTS)])
    (row,) = list(csv.DictReader(open(write_grades_csv(submissions, tmp_path / "grades.csv"), newline="")))
    assert row["part1_test_accuracy"] == "0.91" and row["part1_test_accuracy_rescored"] == ""
    assert row["part2_measured_on"] == "test ffffffffffff"
    assert row["part2_model_sha256"] == hashlib.sha256(model_bytes("localisation")).hexdigest()[:12]
    assert row["flags"] == "" and row["problems"] == ""
    assert list(CSV_COLUMNS[:6]) == ["student", "source", "part1_test_accuracy", "part1_test_accuracy_rescored",
                                     "part2_map50", "part2_map50_rescored"]
    assert CSV_COLUMNS[-6:] == tuple(column for column, _ in GRADING_GRID) + ("grade_total_120",)


def test_report_column_tells_written_reports_from_untouched_skeletons(tmp_path):
    from defi1.report import PLACEHOLDER, write_report

    root = tmp_path / "submissions"
    for student in ("alice", "bob", "carol"):
        write_student(root / student, parts=GOOD_PARTS)
    write_report(root / "alice" / "results", root / "alice" / "report.md")
    text = (root / "alice" / "report.md").read_text()
    (root / "alice" / "report.md").write_text(text.replace(PLACEHOLDER, "We chose the CNN.", 1))
    write_report(root / "bob" / "results", root / "bob" / "report.md")
    (root / "bob" / "docs").mkdir()
    (root / "bob" / "docs" / "Rapport.pdf").write_bytes(b"%PDF-1.4")
    submissions = collect_submissions([root])
    csv_path = write_grades_csv(submissions, tmp_path / "grades.csv")
    with open(csv_path, newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert rows["alice"]["report"] == "report.md"
    assert rows["bob"]["report"] == "docs/Rapport.pdf; report.md (untouched skeleton)"
    assert rows["carol"]["report"] == ""
    summary = write_summary(submissions, tmp_path / "grades_summary.md").read_text()
    assert "Reports written (not an untouched skeleton): 2/3." in summary
