"""Gather students' results for grading: ``defi1 collect SUBMISSION... -o grades.csv``.

A submission is one student's folder or zip file; the student id is the folder name or the zip file's stem. Inside,
every ``results/<part>.json`` (written by :func:`defi1.results.record_results`, at any depth) is read and validated,
and every notebook (``*.ipynb``) is checked for being executed top to bottom in one fresh kernel: over its non-empty
code cells, the saved ``execution_count`` must be exactly ``1, 2, ..., n``.

A folder that holds neither a ``results`` folder nor notebooks at its top level is taken as a folder OF submissions
(each sub-folder or zip file is one student). Problems in one submission (missing or malformed results, smoke-mode
results, notebooks run out of order, a corrupt zip) are recorded for that student and never stop the collection.

The grades table has one row per student: the measured figures (Part 1 test accuracy, Part 2 mAP50 and mAP50-95,
Part 3 FPS and device), the flags, and the course's grading grid (Part 1 40 %, Part 2 20 %, Part 3 optional 20 %,
report 20 %, code and data 20 %, total out of 120 %) as empty columns for the instructor to fill.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from defi1.files import atomic_write_text, ensure_output_dir
from defi1.results import PARTS, ResultsSchemaError, validate_results

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
CSV_COLUMNS = (("student", "source") + tuple(column for column, _, _ in FIGURE_COLUMNS)
               + ("missing_parts", "smoke_parts", "notebook_issues", "problems")
               + tuple(column for column, _ in GRADING_GRID) + (GRADE_TOTAL_COLUMN,))


@dataclass
class NotebookCheck:
    """Execution-order check of one notebook: ``problems`` is empty when it ran top to bottom in a fresh kernel."""

    path: str
    code_cells: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def in_order(self) -> bool:
        return not self.problems


@dataclass
class Submission:
    """What was found in one student's submission."""

    student: str
    source: str
    results: dict[str, dict] = field(default_factory=dict)  # part -> validated results payload
    notebooks: list[NotebookCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def missing_parts(self) -> list[str]:
        return [part for part in REQUIRED_PARTS if part not in self.results]

    @property
    def smoke_parts(self) -> list[str]:
        return [part for part in PARTS if part in self.results and self.results[part].get("smoke")]

    @property
    def notebook_issues(self) -> list[str]:
        return [f"{check.path}: {problem}" for check in self.notebooks for problem in check.problems]

    def figure(self, part: str, name: str):
        """A metric (or ``device``) of one part, or ``None`` when absent."""
        payload = self.results.get(part)
        if payload is None:
            return None
        if name == "device":
            return payload.get("device")
        return payload["metrics"].get(name)


# --------------------------------------------------------------------------------------------- notebook checks


def check_notebook_order(notebook_text: str, path: str = "notebook.ipynb") -> NotebookCheck:
    """Check that a notebook's saved outputs come from one top-to-bottom run.

    Over the code cells with non-blank source, ``execution_count`` must be exactly ``1, 2, ..., n``. Reports cells
    never executed, counts that go backwards (cells run out of order) and gaps or a start other than 1 (cells re-run,
    or a kernel that was not fresh). A file that is not a notebook yields one problem naming it.
    """
    import nbformat

    check = NotebookCheck(path=path)
    try:
        notebook = nbformat.reads(notebook_text, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for broken JSON or schema
        check.problems.append(f"not a readable notebook ({error.__class__.__name__}: {str(error)[:120]})")
        return check
    counts = []
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
            continue
        counts.append((index, cell.get("execution_count")))
    check.code_cells = len(counts)
    never = [index for index, count in counts if count is None]
    if never:
        check.problems.append(f"{len(never)} code cell(s) never executed (cell {_list_numbers(never)})")
    executed = [(index, count) for index, count in counts if count is not None]
    backwards = [index for (_, previous), (index, count) in zip(executed, executed[1:]) if count <= previous]
    if backwards:
        check.problems.append(f"cells executed out of order (execution count goes back at cell "
                              f"{_list_numbers(backwards)})")
    elif executed and [count for _, count in executed] != list(range(1, len(executed) + 1)):
        found = [count for _, count in executed]
        check.problems.append(f"execution counts {_list_numbers(found)} are not 1..{len(executed)} "
                              "(cells re-run or kernel not restarted)")
    return check


def _list_numbers(numbers, limit=8) -> str:
    shown = ", ".join(str(number) for number in numbers[:limit])
    return shown + (", ..." if len(numbers) > limit else "")


# ------------------------------------------------------------------------------------------ reading submissions


def find_submissions(paths) -> list[Path]:
    """Expand the command-line paths into one path per student (a folder or a ``.zip`` file).

    A zip file is one submission. A folder with a ``results`` folder or ``.ipynb`` files at its top level is one
    submission; any other folder is a folder of submissions (its sub-folders and zip files, sorted by name).
    Raises ``FileNotFoundError`` for a path that does not exist.
    """
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such submission folder or zip file")
        if path.is_file():
            found.append(path)
        elif _looks_like_submission(path):
            found.append(path)
        else:
            children = sorted(child for child in path.iterdir() if not child.name.startswith(".")
                              and (child.is_dir() or child.suffix.lower() == ".zip"))
            found.extend(children if children else [path])
    return found


def _looks_like_submission(folder: Path) -> bool:
    return (folder / "results").is_dir() or any(folder.glob("*.ipynb"))


def student_id(path) -> str:
    """The student id of a submission: the folder name, or the zip file's name without ``.zip``."""
    path = Path(path)
    return path.stem if path.suffix.lower() == ".zip" else path.name


def read_submission(path) -> Submission:
    """Read one submission (folder or zip). Never raises for bad content: problems are recorded on the result."""
    path = Path(path)
    submission = Submission(student=student_id(path), source=str(path))
    try:
        files = _submission_files(path)
    except (zipfile.BadZipFile, OSError) as error:
        submission.problems.append(f"{path}: cannot read the submission ({error.__class__.__name__}: {error})")
        return submission
    candidates: dict[str, list[tuple[str, bytes]]] = {}
    for name, read in files:
        pure = PurePosixPath(name)
        if pure.suffix == ".ipynb" and ".ipynb_checkpoints" not in pure.parts:
            try:
                text = read().decode("utf-8")
            except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
                submission.notebooks.append(NotebookCheck(path=name, problems=[f"unreadable ({error})"]))
                continue
            submission.notebooks.append(check_notebook_order(text, name))
        elif pure.suffix == ".json" and len(pure.parts) >= 2 and pure.parts[-2] == "results":
            try:
                candidates.setdefault(pure.stem, []).append((name, read()))
            except (OSError, zipfile.BadZipFile) as error:
                submission.problems.append(f"{name}: unreadable ({error})")
    for stem, entries in sorted(candidates.items()):
        if stem not in PARTS:
            submission.problems.append(f"{entries[0][0]}: unexpected results file (expected "
                                       f"{', '.join(part + '.json' for part in PARTS)})")
            continue
        entries.sort(key=lambda entry: (len(PurePosixPath(entry[0]).parts), entry[0]))
        if len(entries) > 1:
            submission.problems.append(f"{len(entries)} results files for {stem}; used {entries[0][0]}")
        name, data = entries[0]
        payload = _parse_results(name, data, stem, submission.problems)
        if payload is not None:
            submission.results[stem] = payload
    for part in submission.missing_parts:
        if part not in candidates:
            submission.problems.append(f"missing results/{part}.json")
    return submission


def _submission_files(path: Path):
    """``(relative posix name, reader)`` for every file of a folder or zip submission (readers load lazily)."""
    if path.is_dir():
        return [(file.relative_to(path).as_posix(), file.read_bytes) for file in sorted(path.rglob("*"))
                if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts[:-1])]
    archive = zipfile.ZipFile(path)
    entries = []
    for info in archive.infolist():
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        entries.append((info.filename, lambda info=info: archive.read(info)))
    return entries


def _parse_results(name: str, data: bytes, expected_part: str, problems: list[str]):
    try:
        payload = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{name}: not UTF-8 text (expected a JSON results file)")
        return None
    except json.JSONDecodeError as error:
        problems.append(f"{name}: not valid JSON (line {error.lineno}: {error.msg})")
        return None
    try:
        payload = validate_results(payload, source=name)
    except ResultsSchemaError as error:
        problems.append(str(error))
        return None
    if payload["part"] != expected_part:
        problems.append(f"{name}: says part {payload['part']!r} but is named {expected_part}.json")
        return None
    return payload


def collect_submissions(paths, *, progress=None) -> list[Submission]:
    """Read every submission under ``paths`` (see :func:`find_submissions`). ``progress`` wraps the iteration
    (e.g. ``tqdm``). Two submissions with the same student id get ``#2``, ``#3`` suffixes and a problem noted."""
    submission_paths = find_submissions(paths)
    iterator = progress(submission_paths) if progress else submission_paths
    submissions = [read_submission(path) for path in iterator]
    seen: dict[str, int] = {}
    for submission in submissions:
        seen[submission.student] = seen.get(submission.student, 0) + 1
        if seen[submission.student] > 1:
            submission.problems.append(f"student id {submission.student!r} appears more than once")
            submission.student = f"{submission.student}#{seen[submission.student]}"
    return submissions


# --------------------------------------------------------------------------------------------------- outputs


def grade_rows(submissions) -> list[dict]:
    """One dictionary per student with the keys of :data:`CSV_COLUMNS`; grading-grid columns are left empty."""
    rows = []
    for submission in submissions:
        row = {"student": submission.student, "source": submission.source}
        for column, part, name in FIGURE_COLUMNS:
            value = submission.figure(part, name)
            row[column] = "" if value is None else (f"{value:.6g}" if isinstance(value, float) else value)
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


def write_summary(submissions, path) -> Path:
    """Write a Markdown summary (counts, flags per student, distributions) and one PNG histogram per figure
    (``<stem>_<figure>.png`` beside ``path``). Returns the Markdown path."""
    from defi1.figures import pyplot, save_figure

    plt = pyplot()
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
    lines += ["", f"Notebooks not executed top to bottom: {out_of_order} submission(s).", ""]
    lines += ["## Distributions", ""]
    for column, part, name in FIGURE_COLUMNS:
        if name == "device":
            continue
        values = [submission.figure(part, name) for submission in submissions]
        values = [float(value) for value in values if value is not None]
        if not values:
            lines.append(f"- {column}: no values")
            continue
        sorted_values = sorted(values)
        median = sorted_values[len(values) // 2] if len(values) % 2 else \
            (sorted_values[len(values) // 2 - 1] + sorted_values[len(values) // 2]) / 2
        plot_path = path.with_name(f"{path.stem}_{column}.png")
        figure, axis = plt.subplots(figsize=(5, 3))
        axis.hist(values, bins=min(20, max(5, len(values))), color="#4472c4", edgecolor="white")
        axis.set_xlabel(column)
        axis.set_ylabel("students")
        axis.set_title(f"{column} (n={len(values)})")
        figure.tight_layout()
        save_figure(figure, plot_path, dpi=100, tight=False)
        lines.append(f"- {column}: n={len(values)}, min {min(values):.4g}, median {median:.4g}, "
                     f"max {max(values):.4g}")
        lines.append(f"  ![{column}]({plot_path.name})")
    devices = {}
    for submission in submissions:
        device = submission.figure("realtime", "device")
        if device:
            devices[device] = devices.get(device, 0) + 1
    if devices:
        lines += ["", "Part 3 devices: " + ", ".join(f"{name} ({count})" for name, count in sorted(devices.items()))]
    flagged = [submission for submission in submissions
               if submission.problems or submission.smoke_parts or submission.notebook_issues]
    lines += ["", "## Submissions to look at", ""]
    if not flagged:
        lines.append("None: every submission has its results, none in smoke mode, notebooks in order.")
    for submission in flagged:
        notes = list(submission.problems)
        if submission.smoke_parts:
            notes.append("smoke-mode results: " + ", ".join(submission.smoke_parts))
        notes += submission.notebook_issues
        lines.append(f"- **{submission.student}**: " + "; ".join(notes))
    return atomic_write_text(path, "\n".join(lines) + "\n")
