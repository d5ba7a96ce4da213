"""Rescoring a class: each student's submitted models evaluated on the instructor's own held-out data.

For every submission (after :func:`defi1.collect.collect_submissions`), one worker process
(:mod:`defi1.grading.worker`) loads the student's detector and classifier safely and measures them with defi1's
metrics: mAP50 and mAP50-95 on a split of the instructor's YOLO dataset, test accuracy on the instructor's class
folders, and (optionally) FPS with ``defi1 bench`` on the instructor's machine, so that speed compares across
students. The figures land in ``Submission.rescored`` beside the self-reported ones.

Which model plays which role: the file whose SHA-256 the part's results record (``Submission.part_models``);
without one, the worker tries the submission's other ``.keras`` files and keeps the first detector (or classifier).

Batch behaviour:

* students run one after the other (``jobs=1``, right for one GPU) or ``jobs`` at a time (CPU);
* each worker is isolated (:func:`defi1.grading.isolation.run_isolated`): a time and a memory limit, its output in
  ``<work_dir>/students/<id>/worker.log``; a worker that crashes, hangs or runs out of memory is reported on its
  student's row and the class goes on;
* resumable: each finished student is appended to ``<work_dir>/rescoring_state.jsonl`` (one JSON line, flushed to
  disk) with a key made of the model hashes, the instructor's data fingerprints and the settings; a rerun reuses
  every line whose key still matches, so a crash costs at most the student in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from defi1.grading.archive import GIB, SubmissionFiles, SubmissionLimits
from defi1.grading.isolation import run_isolated
from defi1.grading.table import COMPARED_FIGURES, RESCORED_COLUMNS

STATE_FILE = "rescoring_state.jsonl"
_FIGURE_PARTS = {"test_accuracy": "classification", "map50": "localisation", "map50_95": "localisation"}
_MAX_CANDIDATES = 8


@dataclass(frozen=True)
class RescoreSettings:
    """What to rescore and under which limits.

    Args:
        detection_data: the instructor's dataset YAML (held-out images), or ``None``.
        split: its split to measure (``"test"``).
        classification_data: the instructor's class-per-folder dataset (or ``defi1 data split`` output, whose test
            split is used), or ``None``.
        bench: re-run ``defi1 bench`` on each detector; bench_frames: frames timed per measurement.
        time_limit_s, memory_limit_bytes: per student (wall time; resident memory and ``RLIMIT_DATA``).
        jobs: students rescored at the same time.
        worker_command: the worker's command line (default ``python -m defi1.grading.worker``), followed by the job
            and result paths.
    """

    detection_data: str | None = None
    split: str = "test"
    classification_data: str | None = None
    bench: bool = False
    bench_frames: int = 50
    time_limit_s: float = 1800.0
    memory_limit_bytes: int = 8 * GIB
    jobs: int = 1
    worker_command: tuple = field(default=(sys.executable, "-m", "defi1.grading.worker"))

    def __post_init__(self):
        if self.bench and self.jobs > 1:
            raise ValueError("speed is only comparable with one student at a time: use jobs=1 (--jobs 1) with the "
                             "bench rescoring")
        if self.jobs < 1 or self.time_limit_s <= 0 or self.bench_frames < 1:
            raise ValueError("jobs and bench_frames must be at least 1 and time_limit_s above 0")

    @property
    def enabled(self) -> bool:
        return bool(self.detection_data or self.classification_data or self.bench)


def check_instructor_data(settings: RescoreSettings) -> dict:
    """Fingerprints of the instructor's data (``{"detection": ..., "classification": ...}``), which also checks
    that it exists and reads: ``FileNotFoundError`` / ``ConfigError`` / ``DataError`` naming the path otherwise."""
    fingerprints = {}
    if settings.detection_data:
        from defi1.detection.labels import split_fingerprint

        fingerprints["detection"] = split_fingerprint(settings.detection_data, settings.split)
    if settings.classification_data:
        from defi1.classification.data import scan_class_folders, split_fingerprint
        from defi1.classification.pipeline import is_split_folder

        folder = Path(settings.classification_data)
        if is_split_folder(folder):
            folder = folder / "test" if (folder / "test").is_dir() else folder / "val"
        dataset = scan_class_folders(folder, check_images=False)
        fingerprints["classification"] = split_fingerprint(dataset.paths, dataset.labels,
                                                           class_names=dataset.class_names, root=folder)
    return fingerprints


# ------------------------------------------------------------------------------------------------------ state


class RescoringState:
    """The resumable record of finished students: ``<work_dir>/rescoring_state.jsonl``, one JSON object per line
    (``student``, ``key``, ``result``). A line cut short by a crash is ignored."""

    def __init__(self, work_dir):
        self.path = Path(work_dir) / STATE_FILE
        self.records: dict[str, dict] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        self.records[record["student"]] = record
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue

    def finished(self, student: str, key: str) -> dict | None:
        """The stored result of ``student`` when it was rescored with the same ``key``, else ``None``."""
        record = self.records.get(student)
        return record["result"] if record and record.get("key") == key else None

    def record(self, student: str, key: str, result: dict) -> None:
        """Append one finished student, flushed and synced to disk before returning."""
        line = json.dumps({"student": student, "key": key, "result": result}) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.records[student] = {"student": student, "key": key, "result": result}


# ------------------------------------------------------------------------------------------------------- jobs


def _folder_name(student: str) -> str:
    digest = hashlib.sha256(student.encode("utf-8")).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', student)[:60]}-{digest}"


def _roles(submission) -> dict:
    """Role -> ``(model file name, recorded input size)`` from the parts' provenance."""
    roles = {}
    for role, part in (("classifier", "classification"), ("detector", "localisation"), ("realtime", "realtime")):
        name = submission.part_models.get(part)
        if name:
            provenance = submission.results[part].get("provenance") or {}
            roles[role] = (name, provenance.get("input_size"))
    return roles


def _candidates(submission, assigned) -> list[str]:
    names = [name for name, model in submission.model_files.items()
             if name.endswith(".keras") and name not in assigned and model.sha256]
    return names[:_MAX_CANDIDATES]


def _darknet_cfg(submission, weights_name, files) -> str | None:
    sibling = PurePosixPath(weights_name).with_suffix(".cfg").as_posix()
    names = {entry.name for entry in files.entries}
    if sibling in names:
        return sibling
    cfgs = [name for name in names if name.endswith(".cfg")]
    return cfgs[0] if len(cfgs) == 1 else None


def job_key(submission, settings: RescoreSettings, fingerprints: dict) -> str:
    """What a rescoring result depends on: the models (by hash), the instructor's data, the settings, defi1."""
    from defi1 import __version__

    models = {role: (submission.model_files[name].sha256, size) for role, (name, size) in _roles(submission).items()}
    candidates = sorted(submission.model_files[name].sha256 for name in _candidates(submission, set()))
    payload = {"models": models, "candidates": candidates, "data": fingerprints, "split": settings.split,
               "bench": settings.bench, "bench_frames": settings.bench_frames, "defi1": __version__,
               "limits": [settings.time_limit_s, settings.memory_limit_bytes]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def write_job(submission, settings: RescoreSettings, job_dir: Path, limits: SubmissionLimits) -> Path | None:
    """Extract the student's model files into ``job_dir/models`` (zip) or point at them (folder) and write
    ``job_dir/job.json`` (format in :mod:`defi1.grading.worker`). ``None`` when there is no model to rescore."""
    roles = _roles(submission)
    candidates = _candidates(submission, {name for name, _ in roles.values()})
    if not roles and not candidates:
        return None
    models, paths = {}, {}
    with SubmissionFiles(submission.source, limits) as files:
        entries = {entry.name: entry for entry in files.entries}

        def local(name, limit=limits.max_model_bytes):
            if name not in paths:
                paths[name] = str(files.local_path(entries[name], job_dir / "models", limit))
            return paths[name]

        for role, (name, input_size) in roles.items():
            entry = {"path": local(name), "cfg": None, "input_size": input_size}
            if name.endswith(".weights"):
                cfg = _darknet_cfg(submission, name, files)
                entry["cfg"] = local(cfg, limits.max_cfg_bytes) if cfg else None
            models[role] = entry
        candidate_paths = [local(name) for name in candidates]
    job = {"student": submission.student, "memory_limit_bytes": settings.memory_limit_bytes,
           "limits": asdict(limits), "work_dir": str(job_dir), "models": models, "candidates": candidate_paths,
           "detection": ({"data_yaml": str(Path(settings.detection_data).resolve()), "split": settings.split}
                         if settings.detection_data else None),
           "classification": ({"data_dir": str(Path(settings.classification_data).resolve())}
                              if settings.classification_data else None),
           "bench": {"frames": settings.bench_frames} if settings.bench else None}
    job["names"] = {path: name for name, path in paths.items()}
    job_path = job_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    return job_path


def rescore_one(submission, settings: RescoreSettings, job_dir: Path, limits: SubmissionLimits) -> dict:
    """Rescore one student in an isolated worker; returns the worker's result (module :mod:`defi1.grading.worker`),
    or one describing why there is none (no model, worker killed or crashed). Never raises for the student's data."""
    if job_dir.exists():
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True)
    empty = {"student": submission.student, "figures": {}, "problems": [], "models": {}, "device": None}
    try:
        job_path = write_job(submission, settings, job_dir, limits)
    except Exception as error:  # unreadable or oversized entries: report on the row
        empty["problems"].append(["rescore_failed", f"cannot prepare the models ({error.__class__.__name__}: "
                                                    f"{error})"])
        return empty
    if job_path is None:
        empty["problems"].append(["rescore_failed", "no model file to rescore in the submission"])
        return empty
    result_path = job_dir / "result.json"
    # Several workers may share one GPU: each takes GPU memory as it needs it, not all of it at start.
    environment = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        run = run_isolated(list(settings.worker_command) + [job_path, result_path], time_limit_s=settings.time_limit_s,
                           memory_limit_bytes=settings.memory_limit_bytes, log_path=job_dir / "worker.log",
                           env=environment)
    except OSError as error:
        empty["problems"].append(["rescore_failed", f"cannot start the worker ({error})"])
        return empty
    finally:
        if (job_dir / "models").is_dir():
            shutil.rmtree(job_dir / "models", ignore_errors=True)  # extracted copies: the submission keeps them
    result = _read_result(result_path) or empty  # a killed worker keeps the tasks it finished
    names = json.loads(job_path.read_text(encoding="utf-8")).get("names", {})
    result["problems"] = [[flag, _with_names(message, names)] for flag, message in result.get("problems", [])]
    result["models"] = {role: names.get(path, path) for role, path in (result.get("models") or {}).items()}
    if not run.ok:
        result["problems"].append(["rescore_failed", f"worker {run.describe()}"])
    result["seconds"] = round(run.seconds, 1)
    return result


def _read_result(path: Path) -> dict | None:
    """The worker's result file, or ``None`` when absent or not a JSON object of a sane size."""
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return result if isinstance(result, dict) else None


def _with_names(message: str, names: dict) -> str:
    """A worker's message with the work-folder paths of models replaced by their names in the submission."""
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        message = message.replace(path, name)
    return message


def apply_result(submission, result: dict) -> None:
    """Copy a worker's figures and problems onto the submission."""
    figures = result.get("figures") or {}
    known = {name for _, name, _ in RESCORED_COLUMNS}
    submission.rescored.update({name: float(value) for name, value in figures.items() if name in known})
    submission.rescore_device = result.get("device") or submission.rescore_device
    for flag, message in result.get("problems") or []:
        submission.note(flag, f"rescoring: {message}")


def rescore_submissions(submissions, settings: RescoreSettings, *, work_dir, limits: SubmissionLimits | None = None,
                        progress=None) -> None:
    """Rescore every submission (see the module docstring), filling ``submission.rescored`` and flagging problems.

    Students already recorded in ``work_dir``'s state with the same key are not run again. ``progress(iterable,
    total=..., desc=..., unit=...)`` (e.g. ``tqdm``) shows the students as they finish.
    """
    limits = limits or SubmissionLimits()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    fingerprints = check_instructor_data(settings)
    state = RescoringState(work_dir)
    pending = []
    for submission in submissions:
        if not submission.readable:
            continue  # already flagged (malformed, unsafe_archive): nothing to load
        key = job_key(submission, settings, fingerprints)
        stored = state.finished(submission.student, key)
        if stored is not None:
            apply_result(submission, stored)
        else:
            pending.append((submission, key))

    def run(item):
        submission, key = item
        result = rescore_one(submission, settings, work_dir / "students" / _folder_name(submission.student), limits)
        state.record(submission.student, key, result)
        return submission, result

    bar = progress(total=len(pending), desc="rescoring", unit="student") if progress and pending else None
    with ThreadPoolExecutor(max_workers=max(1, int(settings.jobs))) as pool:
        for future in as_completed([pool.submit(run, item) for item in pending]):
            submission, result = future.result()
            apply_result(submission, result)
            if bar is not None:
                bar.set_postfix_str(submission.student)
                bar.update(1)
    if bar is not None:
        bar.close()


def flag_disagreements(submissions, *, tolerance: float) -> None:
    """Flag ``rescore_disagrees`` where a rescored accuracy or mAP differs from the reported one by more than
    ``tolerance`` (absolute). Speed is not compared: the machines differ."""
    for submission in submissions:
        for name in COMPARED_FIGURES:
            reported = submission.figure(_FIGURE_PARTS[name], name)
            rescored = submission.rescored.get(name)
            if reported is None or rescored is None or abs(float(reported) - rescored) <= tolerance:
                continue
            submission.note("rescore_disagrees", f"{name}: reported {float(reported):.4g}, rescored {rescored:.4g} "
                                                 f"(tolerance {tolerance:g})")
