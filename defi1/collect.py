"""Gather students' results for grading: ``defi1 collect SUBMISSION... -o grades.csv``.

A submission is one student's folder or zip file; the student id is the folder name or the zip file's stem, even
when the project sits one level down (``jack/defi1-main/results/``). Inside, every ``results/<part>.json`` (written
by :func:`defi1.results.record_results`, at any depth) is read and validated, and every notebook (``*.ipynb``) is
checked for being executed top to bottom in one fresh kernel: over its non-empty code cells, the saved
``execution_count`` must be exactly ``1, 2, ..., n``.

Submissions are untrusted input, read through :class:`defi1.grading.archive.SubmissionFiles` (unsafe zip entries
refused, sizes bounded, nothing extracted outside a work folder). What is checked, per student:

* each results file: size (a few MB at most), UTF-8 (a byte-order mark is accepted), the schema, metric ranges
  (an impossible value is flagged and left out of the summary statistics);
* provenance: a results file of schema version 2 records the SHA-256 of the model file that produced it; the model
  files of the submission (``.keras``, darknet ``.weights``) are hashed and the one with that hash found, else the
  row is flagged (model missing, or a file at the recorded path with another hash);
* the report: any ``report.md`` / ``rapport.pdf`` ... (:func:`defi1.report.is_report_name`) is listed in the grades
  table's ``report`` column, a Markdown report still exactly as ``defi1 report`` wrote it marked as an untouched
  skeleton;
* optionally (:func:`grade_submissions` with :class:`defi1.grading.rescore.RescoreSettings`), the submitted models
  are rescored on the instructor's own data, in one isolated process per student.

Problems in one submission are recorded for that student and never stop the collection. The grades table and
summary are written by :mod:`defi1.grading.table`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from defi1.fingerprint import TooLargeError
from defi1.grading.archive import SubmissionFiles, SubmissionLimits, UnsafeSubmissionError
from defi1.grading.table import (CSV_COLUMNS, FIGURE_COLUMNS, GRADE_TOTAL_COLUMN, GRADING_GRID,  # noqa: F401
                                 REQUIRED_PARTS, grade_rows, write_grades_csv, write_summary)
from defi1.report import is_report_name, report_status
from defi1.results import PARTS, ResultsSchemaError, metric_range_problems, validate_results

#: Suffixes of the model files hashed in a submission (only ``.keras`` and darknet files are ever loaded).
MODEL_SUFFIXES = (".keras", ".weights", ".h5")


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
class ModelFile:
    """A model file found in a submission: ``sha256`` is ``None`` when it could not be hashed (too large)."""

    name: str
    size: int
    sha256: str | None


@dataclass
class Submission:
    """What was found in one student's submission.

    ``results``: part -> validated results payload; ``results_files``: part -> the file it was read from;
    ``model_files``: name -> :class:`ModelFile`; ``part_models``: part -> the model file that produced its results
    (found by hash, or the file at the recorded path when its hash differs); ``reports``: report file -> ``"written"``,
    ``"skeleton"`` (a Markdown report untouched since ``defi1 report`` wrote it) or ``"unread"``;
    ``invalid_figures``: ``(part, metric)`` pairs out of range; ``rescored``: figure name -> value measured by the instructor; ``flags``: codes of
    :data:`defi1.grading.table.FLAGS` recorded with the ``problems``; ``readable``: False when the submission could
    not be read at all (not a zip, refused as a whole).
    """

    student: str
    source: str
    results: dict[str, dict] = field(default_factory=dict)
    results_files: dict[str, str] = field(default_factory=dict)
    notebooks: list[NotebookCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    model_files: dict[str, ModelFile] = field(default_factory=dict)
    part_models: dict[str, str] = field(default_factory=dict)
    invalid_figures: set = field(default_factory=set)
    rescored: dict[str, float] = field(default_factory=dict)
    rescore_device: str | None = None
    readable: bool = True
    reports: dict[str, str] = field(default_factory=dict)

    def note(self, flag: str, message: str) -> None:
        """Record a problem and its flag code."""
        self.problems.append(message)
        if flag not in self.flags:
            self.flags.append(flag)

    @property
    def missing_parts(self) -> list[str]:
        return [part for part in REQUIRED_PARTS if part not in self.results]

    @property
    def smoke_parts(self) -> list[str]:
        return [part for part in PARTS if part in self.results and self.results[part].get("smoke")]

    @property
    def notebook_issues(self) -> list[str]:
        return [f"{check.path}: {problem}" for check in self.notebooks for problem in check.problems]

    @property
    def all_flags(self) -> list[str]:
        """The recorded flags and those the columns imply (missing part, smoke, notebook order)."""
        derived = [flag for flag, present in (("missing_part", self.missing_parts), ("smoke", self.smoke_parts),
                                              ("notebook_order", self.notebook_issues)) if present]
        return self.flags + [flag for flag in derived if flag not in self.flags]

    def figure(self, part: str, name: str, *, valid_only: bool = False):
        """A metric (or ``device``) of one part as reported, or ``None`` when absent (or out of range, with
        ``valid_only``)."""
        payload = self.results.get(part)
        if payload is None:
            return None
        if name == "device":
            return payload.get("device")
        if valid_only and (part, name) in self.invalid_figures:
            return None
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


# ------------------------------------------------------------------------------------------ finding submissions


def find_submissions(paths, *, exclude=()) -> list[Path]:
    """Expand the command-line paths into one path per student (a folder or a ``.zip`` file).

    A zip file is one submission. A folder with a ``results`` folder or ``.ipynb`` files at its top level is one
    submission, and so is a folder whose only sub-folder is such a project (``jack/defi1-main/``, as GitHub's
    download unpacks): it is filed under the outer folder's name. Any other folder is a folder of submissions: each
    sub-folder and zip file, sorted by name, is one student, whatever depth its results sit at. (So a class folder
    holding a single student's project folder is read as that one student's wrapper: pass the student's folder
    itself, or several.) Folders in ``exclude`` (the grading's own outputs) are never submissions. Raises
    ``FileNotFoundError`` for a path that does not exist.
    """
    excluded = {Path(path).resolve() for path in exclude}
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such submission folder or zip file")
        if path.is_file() or _looks_like_submission(path) or _wrapped_submission(path, excluded):
            found.append(path)
        else:
            children = _children(path, excluded)
            found.extend(children if children else [path])
    return found


def _children(folder: Path, excluded=frozenset()) -> list[Path]:
    return sorted(child for child in folder.iterdir() if not child.name.startswith(".") and child.name != "__MACOSX"
                  and not child.is_symlink() and (child.is_dir() or child.suffix.lower() == ".zip")
                  and child.resolve() not in excluded)


def _looks_like_submission(folder: Path) -> bool:
    return (folder / "results").is_dir() or any(folder.glob("*.ipynb"))


def _wrapped_submission(folder: Path, excluded=frozenset()) -> bool:
    children = _children(folder, excluded)
    return len(children) == 1 and children[0].is_dir() and _looks_like_submission(children[0])


def student_id(path) -> str:
    """The student id of a submission: the folder name, or the zip file's name without ``.zip``."""
    path = Path(path)
    return path.stem if path.suffix.lower() == ".zip" else path.name


# ------------------------------------------------------------------------------------------ reading submissions


def read_submission(path, *, limits: SubmissionLimits | None = None) -> Submission:
    """Read one submission (folder or zip). Never raises for bad content: problems are recorded on the result."""
    path = Path(path)
    limits = limits or SubmissionLimits()
    submission = Submission(student=student_id(path), source=str(path))
    try:
        with SubmissionFiles(path, limits) as files:
            _read_files(files, submission, limits)
    except UnsafeSubmissionError as error:
        submission.readable = False
        submission.note("unsafe_archive", str(error))
        return submission
    except Exception as error:  # BadZipFile, OSError... one student's files never stop the class: report, go on
        submission.readable = False
        submission.note("malformed", f"{path}: cannot read the submission ({error.__class__.__name__}: {error})")
        return submission
    for part in submission.missing_parts:
        if part not in submission.results_files:
            submission.problems.append(f"missing results/{part}.json")
    return submission


def _read_files(files: SubmissionFiles, submission: Submission, limits: SubmissionLimits) -> None:
    for refused in files.refused:
        submission.note("unsafe_archive", f"{refused}: refused")
    candidates: dict[str, list] = {}
    models = []
    for entry in files.entries:
        pure = PurePosixPath(entry.name)
        if ".ipynb_checkpoints" in pure.parts:
            continue
        if pure.suffix == ".ipynb":
            submission.notebooks.append(_read_notebook(files, entry, limits))
        elif pure.suffix == ".json" and len(pure.parts) >= 2 and pure.parts[-2] == "results":
            candidates.setdefault(pure.stem, []).append(entry)
        elif pure.suffix.lower() in MODEL_SUFFIXES:
            models.append(entry)
        if is_report_name(pure.name):
            submission.reports[entry.name] = _report_status(files, entry, limits)
    _hash_models(files, models, submission, limits)
    for stem, entries in sorted(candidates.items()):
        if stem not in PARTS:
            submission.problems.append(f"{entries[0].name}: unexpected results file (expected "
                                       f"{', '.join(part + '.json' for part in PARTS)})")
            continue
        entries.sort(key=lambda entry: (len(PurePosixPath(entry.name).parts), entry.name))
        if len(entries) > 1:
            submission.problems.append(f"{len(entries)} results files for {stem}; used {entries[0].name}")
        entry = entries[0]
        submission.results_files[stem] = entry.name
        payload = _read_results(files, entry, stem, submission, limits)
        if payload is None:
            continue
        submission.results[stem] = payload
        for problem in metric_range_problems(payload["metrics"]):
            submission.note("impossible_metric", f"{entry.name}: {problem}")
        for name, value in payload["metrics"].items():
            if metric_range_problems({name: value}):
                submission.invalid_figures.add((stem, name))
        check_provenance(submission, stem)


def _read_notebook(files, entry, limits) -> NotebookCheck:
    try:
        text = files.read(entry, limits.max_notebook_bytes).decode("utf-8-sig")
    except TooLargeError as error:
        return NotebookCheck(path=entry.name, problems=[f"too large to check ({error})"])
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as error:
        return NotebookCheck(path=entry.name, problems=[f"unreadable ({error})"])
    return check_notebook_order(text, entry.name)


def _report_status(files, entry, limits) -> str:
    if PurePosixPath(entry.name).suffix.lower() != ".md":
        return "written"
    try:
        return report_status(files.read(entry, limits.max_notebook_bytes).decode("utf-8-sig", errors="replace"))
    except (TooLargeError, OSError, zipfile.BadZipFile, EOFError):
        return "unread"


def _hash_models(files, entries, submission, limits) -> None:
    for index, entry in enumerate(entries):
        if index >= limits.max_models:
            submission.problems.append(f"{len(entries)} model files; only the first {limits.max_models} checked")
            break
        try:
            sha256 = files.sha256(entry, limits.max_model_bytes)
        except TooLargeError as error:
            submission.note("unsafe_model", f"{entry.name}: model file not checked ({error})")
            sha256 = None
        except (OSError, zipfile.BadZipFile, EOFError) as error:
            submission.note("malformed", f"{entry.name}: unreadable ({error})")
            sha256 = None
        submission.model_files[entry.name] = ModelFile(entry.name, entry.size, sha256)


def _read_results(files, entry, expected_part, submission, limits):
    name = entry.name
    try:
        data = files.read(entry, limits.max_results_bytes)
    except TooLargeError as error:
        submission.note("malformed", f"{name}: too large for a results file ({error}); not read")
        return None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        submission.note("malformed", f"{name}: unreadable ({error})")
        return None
    try:
        payload = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        submission.note("malformed", f"{name}: not UTF-8 text (expected a JSON results file)")
        return None
    except json.JSONDecodeError as error:
        submission.note("malformed", f"{name}: not valid JSON (line {error.lineno}: {error.msg})")
        return None
    except RecursionError:
        submission.note("malformed", f"{name}: JSON nested too deeply")
        return None
    try:
        payload = validate_results(payload, source=name)
    except ResultsSchemaError as error:
        submission.note("malformed", str(error))
        return None
    if payload["part"] != expected_part:
        submission.note("malformed", f"{name}: says part {payload['part']!r} but is named {expected_part}.json")
        return None
    return payload


def check_provenance(submission: Submission, part: str) -> None:
    """Check one part's results against the submitted model files (see the module docstring): sets
    ``submission.part_models[part]`` and flags ``no_provenance``, ``model_missing`` or ``model_mismatch``."""
    name = submission.results_files[part]
    payload = submission.results[part]
    if payload["schema_version"] < 2:
        submission.note("no_provenance", f"{name}: schema version 1, no provenance (model hash, split, dataset "
                                         "fingerprint)")
        return
    provenance = payload["provenance"]
    expected, recorded_file = provenance["model_sha256"], provenance["model_file"]
    if expected is None:
        submission.note("no_provenance", f"{name}: no model file recorded")
        return
    project = PurePosixPath(name).parent.parent
    recorded = (project / recorded_file).as_posix() if recorded_file else None
    matching = [model for model, found in submission.model_files.items() if found.sha256 == expected]
    if matching:
        submission.part_models[part] = recorded if recorded in matching else matching[0]
        return
    at_path = recorded if recorded in submission.model_files else next(
        (model for model in submission.model_files
         if recorded_file and PurePosixPath(model).name == PurePosixPath(recorded_file).name), None)
    if at_path is None:
        submission.note("model_missing", f"{name}: model file {recorded_file} (SHA-256 {expected[:12]}...) is not in "
                                         "the submission")
        return
    submission.part_models[part] = at_path
    found = submission.model_files[at_path].sha256
    submission.note("model_mismatch", f"{name}: {at_path} has SHA-256 {(found or 'unknown')[:12]}..., but the "
                                      f"results were measured with {expected[:12]}...")


def collect_submissions(paths, *, limits: SubmissionLimits | None = None, progress=None,
                        exclude=()) -> list[Submission]:
    """Read every submission under ``paths`` (see :func:`find_submissions`), except the folders in ``exclude`` (the
    grading's own outputs). ``progress`` wraps the iteration (e.g. ``tqdm``). Two submissions with the same student
    id get ``#2``, ``#3`` suffixes and a problem noted."""
    submission_paths = find_submissions(paths, exclude=exclude)
    iterator = progress(submission_paths) if progress else submission_paths
    submissions = [read_submission(path, limits=limits) for path in iterator]
    seen: dict[str, int] = {}
    for submission in submissions:
        seen[submission.student] = seen.get(submission.student, 0) + 1
        if seen[submission.student] > 1:
            submission.note("duplicate_id", f"student id {submission.student!r} appears more than once")
            submission.student = f"{submission.student}#{seen[submission.student]}"
    return submissions


# ---------------------------------------------------------------------------------------------------- grading


def summary_path(output, summary=None) -> Path:
    """The Markdown summary's path: ``summary`` when given, else ``<output stem>_summary.md`` beside the table."""
    output = Path(output)
    return Path(summary) if summary else output.with_name(f"{output.stem}_summary.md")


def grade_submissions(paths, *, output, summary=None, rescore=None, tolerance: float = 0.1, work_dir=None,
                      limits: SubmissionLimits | None = None, progress=None) -> list[Submission]:
    """The whole of ``defi1 collect``: read the submissions, rescore them when ``rescore`` (a
    :class:`defi1.grading.rescore.RescoreSettings`) asks for it, flag rescored figures that differ from the reported
    ones by more than ``tolerance``, and write the grades table ``output`` and the Markdown ``summary`` (default:
    ``<output stem>_summary.md`` beside it).

    ``work_dir`` (default ``<output stem>_work`` beside the table) holds the rescoring state: a rerun skips the
    students already rescored. ``progress(iterable, total=None, desc=...)`` wraps long loops (e.g. ``tqdm``).
    Returns the submissions. Raises ``PermissionError`` for an unwritable output folder (before any work),
    ``FileNotFoundError`` / ``ConfigError`` for missing submissions or instructor data.
    """
    from defi1.files import ensure_output_dir

    output = Path(output)
    summary = summary_path(output, summary)
    ensure_output_dir(output.parent)  # fail before reading every submission, not after
    ensure_output_dir(summary.parent)
    limits = limits or SubmissionLimits()
    wrap = (lambda items: progress(items, desc="reading", unit="student")) if progress else None
    if rescore is not None and rescore.enabled:
        from defi1.grading.rescore import check_instructor_data

        check_instructor_data(rescore)  # a wrong path fails now, not after reading the class
    work_dir = Path(work_dir) if work_dir else output.with_name(f"{output.stem}_work")
    submissions = collect_submissions(paths, limits=limits, progress=wrap, exclude=[work_dir])
    if rescore is not None and rescore.enabled:
        from defi1.grading.rescore import flag_disagreements, rescore_submissions

        rescore_submissions(submissions, rescore, work_dir=work_dir, limits=limits, progress=progress)
        flag_disagreements(submissions, tolerance=tolerance)
    write_grades_csv(submissions, output)
    write_summary(submissions, summary)
    return submissions
