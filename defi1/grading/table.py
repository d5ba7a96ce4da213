"""The grades table (CSV, one row per student) and the Markdown summary of a collection.

Columns (:data:`CSV_COLUMNS`), in order:

* ``student``, ``source``;
* each figure as the student reported it, followed by the instructor's rescored value (``..._rescored``, empty
  without rescoring): Part 1 test accuracy, Part 2 mAP50 and mAP50-95, Part 3 FPS end to end and model only; then
  ``part3_device`` (the student's) and ``rescore_device`` (the instructor's);
* provenance: ``partN_measured_on`` (split and the first 12 hex digits of the dataset fingerprint) and
  ``partN_model_sha256`` (first 12 hex digits of the model file's SHA-256, as recorded);
* ``report``: the report files found (``report.md``, ``rapport.pdf``...), each with ``(untouched skeleton)`` when
  it is still exactly what ``defi1 report`` wrote; empty when there is none;
* ``flags`` (the codes of :data:`FLAGS`, ``;``-separated), ``missing_parts``, ``smoke_parts``, ``notebook_issues``
  and ``problems`` (every finding in words);
* the course's grading grid, empty for the instructor to fill (:data:`GRADING_GRID`, total out of 120 %).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from defi1.files import atomic_write_text, ensure_output_dir
from defi1.results import PARTS

#: The course's grading grid: (column name, weight in percent). Part 3 is optional; the total is out of 120 %.
GRADING_GRID = (
    ("grade_part1_classification_40", 40),
    ("grade_part2_localisation_20", 20),
    ("grade_part3_realtime_optional_20", 20),
    ("grade_report_20", 20),
    ("grade_code_and_data_20", 20),
)
GRADE_TOTAL_COLUMN = "grade_total_120"
#: Parts every submission must contain (Part 3, real time, is optional in the course).
REQUIRED_PARTS = ("classification", "localisation")

#: Measured figures copied to the grades table: (column, part, metric name or the payload key ``device``).
FIGURE_COLUMNS = (
    ("part1_test_accuracy", "classification", "test_accuracy"),
    ("part2_map50", "localisation", "map50"),
    ("part2_map50_95", "localisation", "map50_95"),
    ("part3_fps_end_to_end", "realtime", "fps_end_to_end"),
    ("part3_fps_model", "realtime", "fps_model"),
    ("part3_device", "realtime", "device"),
)
#: Rescored figures: (column, rescored figure name, the self-reported column it is compared with).
RESCORED_COLUMNS = (
    ("part1_test_accuracy_rescored", "test_accuracy", "part1_test_accuracy"),
    ("part2_map50_rescored", "map50", "part2_map50"),
    ("part2_map50_95_rescored", "map50_95", "part2_map50_95"),
    ("part3_fps_end_to_end_rescored", "fps_end_to_end", "part3_fps_end_to_end"),
    ("part3_fps_model_rescored", "fps_model", "part3_fps_model"),
)
#: Rescored figures compared with the self-reported ones (speed is not: the machines differ).
COMPARED_FIGURES = ("test_accuracy", "map50", "map50_95")
PROVENANCE_COLUMNS = (("part1_measured_on", "classification"), ("part2_measured_on", "localisation"),
                      ("part1_model_sha256", "classification"), ("part2_model_sha256", "localisation"),
                      ("part3_model_sha256", "realtime"))

#: Flag codes of the ``flags`` column and what they mean.
FLAGS = {
    "malformed": "a results file or the submission could not be read or does not follow the schema",
    "missing_part": "a required part (classification, localisation) has no results file",
    "smoke": "results produced with the small CI settings",
    "notebook_order": "a notebook was not executed top to bottom in one fresh kernel",
    "impossible_metric": "a metric outside its range (accuracy 91, mAP -0.5, FPS 0); left out of the summary",
    "no_provenance": "a results file without provenance (schema version 1) or without a model hash",
    "model_missing": "the model file a results file names is not in the submission",
    "model_mismatch": "the submitted model file's SHA-256 is not the one the results were measured with",
    "unsafe_archive": "zip entries refused (absolute path, '..', symbolic link) or a zip bomb",
    "unsafe_model": "a model refused before loading (Lambda layer, unknown custom object, too large)",
    "rescore_failed": "rescoring could not measure a figure (no model, wrong classes, time or memory limit...)",
    "rescore_disagrees": "a rescored figure differs from the self-reported one by more than the tolerance",
    "duplicate_id": "two submissions with the same student id",
}


def _figure_columns():
    columns = []
    rescored = {compared: column for column, _, compared in RESCORED_COLUMNS}
    for column, _, _ in FIGURE_COLUMNS:
        columns.append(column)
        if column in rescored:
            columns.append(rescored[column])
    return tuple(columns)


CSV_COLUMNS = (("student", "source") + _figure_columns() + ("rescore_device",)
               + tuple(column for column, _ in PROVENANCE_COLUMNS)
               + ("report", "flags", "missing_parts", "smoke_parts", "notebook_issues", "problems")
               + tuple(column for column, _ in GRADING_GRID) + (GRADE_TOTAL_COLUMN,))


def _format(value):
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def grade_rows(submissions) -> list[dict]:
    """One dictionary per student with the keys of :data:`CSV_COLUMNS`; grading-grid columns are left empty."""
    rows = []
    for submission in submissions:
        row = {"student": submission.student, "source": submission.source}
        for column, part, name in FIGURE_COLUMNS:
            row[column] = _format(submission.figure(part, name))
        for column, name, _ in RESCORED_COLUMNS:
            row[column] = _format(submission.rescored.get(name))
        row["rescore_device"] = submission.rescore_device or ""
        for column, part in PROVENANCE_COLUMNS:
            provenance = (submission.results.get(part) or {}).get("provenance") or {}
            if column.endswith("_measured_on"):
                split, fingerprint = provenance.get("split"), provenance.get("dataset_fingerprint")
                row[column] = " ".join(value for value in (split, (fingerprint or "")[:12]) if value)
            else:
                row[column] = (provenance.get("model_sha256") or "")[:12]
        row["report"] = "; ".join(name + {"skeleton": " (untouched skeleton)", "unread": " (unread)"}.get(status, "")
                                  for name, status in sorted(submission.reports.items()))
        row["flags"] = ";".join(submission.all_flags)
        row["missing_parts"] = ";".join(submission.missing_parts)
        row["smoke_parts"] = ";".join(submission.smoke_parts)
        row["notebook_issues"] = " | ".join(submission.notebook_issues)
        row["problems"] = " | ".join(submission.problems)
        for column, _ in GRADING_GRID:
            row[column] = ""
        row[GRADE_TOTAL_COLUMN] = ""
        rows.append(row)
    return rows


def write_grades_csv(submissions, path) -> Path:
    """Write the grades table (one row per student, columns :data:`CSV_COLUMNS`) atomically."""
    ensure_output_dir(Path(path).parent)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(grade_rows(submissions))
    return atomic_write_text(path, buffer.getvalue())


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def write_summary(submissions, path) -> Path:
    """Write a Markdown summary (counts, flags, distributions, the submissions to look at) and one PNG histogram per
    figure (``<stem>_<column>.png`` beside ``path``). Figures flagged impossible are left out of the distributions.
    Returns the Markdown path."""
    path = Path(path)
    ensure_output_dir(path.parent)
    total = len(submissions)
    lines = [f"# Results collected from {total} submission(s)", ""]
    lines.append("| part | results found | smoke mode |")
    lines.append("|---|---|---|")
    for part in PARTS:
        found = sum(part in submission.results for submission in submissions)
        smoke = sum(part in submission.smoke_parts for submission in submissions)
        optional = " (optional)" if part not in REQUIRED_PARTS else ""
        lines.append(f"| {part}{optional} | {found}/{total} | {smoke} |")
    out_of_order = sum(bool(submission.notebook_issues) for submission in submissions)
    written = sum("written" in submission.reports.values() for submission in submissions)
    lines += ["", f"Notebooks not executed top to bottom: {out_of_order} submission(s).",
              f"Reports written (not an untouched skeleton): {written}/{total}.", ""]
    counts = {flag: sum(flag in submission.all_flags for submission in submissions) for flag in FLAGS}
    if any(counts.values()):
        lines += ["| flag | submissions | meaning |", "|---|---|---|"]
        lines += [f"| {flag} | {count} | {FLAGS[flag]} |" for flag, count in counts.items() if count]
        lines.append("")
    lines += ["## Distributions", ""]
    series = [(column, [submission.figure(part, name, valid_only=True) for submission in submissions])
              for column, part, name in FIGURE_COLUMNS if name != "device"]
    series += [(column, [submission.rescored.get(name) for submission in submissions])
               for column, name, _ in RESCORED_COLUMNS]
    for column, values in series:
        values = [float(value) for value in values if value is not None]
        if not values:
            if not column.endswith("_rescored"):
                lines.append(f"- {column}: no values")
            continue
        plot_path = _histogram(values, column, path.with_name(f"{path.stem}_{column}.png"))
        lines.append(f"- {column}: n={len(values)}, min {min(values):.4g}, median {_median(values):.4g}, "
                     f"max {max(values):.4g}")
        lines.append(f"  ![{column}]({plot_path.name})")
    devices = {}
    for submission in submissions:
        device = submission.figure("realtime", "device")
        if device:
            devices[device] = devices.get(device, 0) + 1
    if devices:
        lines += ["", "Part 3 devices: " + ", ".join(f"{name} ({count})" for name, count in sorted(devices.items()))]
    flagged = [submission for submission in submissions if submission.all_flags or submission.problems]
    lines += ["", "## Submissions to look at", ""]
    if not flagged:
        lines.append("None: every submission has its results, none in smoke mode, notebooks in order.")
    for submission in flagged:
        notes = list(submission.problems)
        if submission.smoke_parts:
            notes.append("smoke-mode results: " + ", ".join(submission.smoke_parts))
        notes += submission.notebook_issues
        lines.append(f"- **{submission.student}** ({', '.join(submission.all_flags)}): " + "; ".join(notes))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _histogram(values, column, plot_path) -> Path:
    from defi1.figures import pyplot, save_figure

    figure, axis = pyplot().subplots(figsize=(5, 3))
    axis.hist(values, bins=min(20, max(5, len(values))), color="#4472c4", edgecolor="white")
    axis.set_xlabel(column)
    axis.set_ylabel("students")
    axis.set_title(f"{column} (n={len(values)})")
    return save_figure(figure, plot_path, dpi=100)
