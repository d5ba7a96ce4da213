"""Tests of defi1.grading.rescore with a stand-in worker: limits, crashes, resuming, comparisons.

The real worker (loading students' models in a child process) is exercised by tests/grading/test_class.py."""

import os
import subprocess
import sys

import pytest

from defi1.collect import collect_submissions, grade_submissions
from defi1.grading.rescore import STATE_FILE, RescoreSettings, flag_disagreements, rescore_submissions
from tests.conftest import PROJECT_ROOT
from tests.grading.builders import write_fake_student, write_fake_worker, write_hidden_shapes

pytestmark = pytest.mark.backend_agnostic  # processes and files only


@pytest.fixture
def setting(tmp_path, monkeypatch):
    """A class folder, hidden data, a fake worker and its call log."""
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_WORKER_CALLS", str(calls))
    worker = write_fake_worker(tmp_path)
    settings = RescoreSettings(detection_data=str(write_hidden_shapes(tmp_path / "hidden")),
                               worker_command=(sys.executable, str(worker)), time_limit_s=4,
                               memory_limit_bytes=200 << 20, jobs=3)
    return tmp_path / "class", settings, calls


def called(calls):
    return sorted(calls.read_text().split()) if calls.exists() else []


def test_hanging_and_memory_hungry_workers_are_stopped_and_reported_on_their_rows(setting, tmp_path):
    root, settings, calls = setting
    for student in ("alice", "hang", "hog"):
        write_fake_student(root / student, model=student.encode())
    submissions = {submission.student: submission for submission in collect_submissions([root])}
    rescore_submissions(list(submissions.values()), settings, work_dir=tmp_path / "work")
    assert submissions["alice"].rescored == {"map50": 0.5, "map50_95": 0.25, "test_accuracy": 0.75}
    assert submissions["alice"].all_flags == [] and submissions["alice"].rescore_device == "fake device"
    hang, hog = submissions["hang"], submissions["hog"]
    assert hang.rescored == {} and hang.all_flags == ["rescore_failed"]
    assert hang.problems[0].startswith("rescoring: worker stopped after ") and hang.problems[0].endswith(
        "s (time limit 4 s)")
    assert hog.rescored == {} and hog.all_flags == ["rescore_failed"]
    assert hog.problems[0].startswith("rescoring: worker stopped at ") and hog.problems[0].endswith(
        "of memory (limit 200.0 MB)")
    assert called(calls) == ["alice", "hang", "hog"]


def test_a_worker_stopped_by_a_limit_keeps_the_figures_it_finished(setting, tmp_path):
    root, settings, calls = setting
    write_fake_student(root / "partial")
    (submission,) = collect_submissions([root / "partial"])
    rescore_submissions([submission], settings, work_dir=tmp_path / "work")
    assert submission.rescored == {"map50": 0.5} and submission.all_flags == ["rescore_failed"]
    assert submission.problems[0].startswith("rescoring: worker stopped after ")


def test_the_grading_outputs_inside_the_class_folder_are_not_a_student(setting, tmp_path):
    root, settings, calls = setting
    write_fake_student(root / "alice")
    write_fake_student(root / "bob", model=b"bob")
    for _ in range(2):  # the second run sees class/grades_work/ beside the students
        submissions = grade_submissions([root], output=root / "grades.csv", rescore=settings)
        assert [submission.student for submission in submissions] == ["alice", "bob"]
    assert called(calls) == ["alice", "bob"]


def test_a_rerun_skips_finished_students_and_redoes_changed_ones(setting, tmp_path):
    root, settings, calls = setting
    for student in ("alice", "bob"):
        write_fake_student(root / student, model=student.encode())
    rescore_submissions(collect_submissions([root]), settings, work_dir=tmp_path / "work")
    assert called(calls) == ["alice", "bob"]
    calls.unlink()
    again = collect_submissions([root])
    rescore_submissions(again, settings, work_dir=tmp_path / "work")
    assert called(calls) == [] and again[0].rescored["map50"] == 0.5  # from the state file
    (root / "bob" / "runs" / "detector.keras").write_bytes(b"bob's new detector")  # another model: rescored again
    rescore_submissions(collect_submissions([root]), settings, work_dir=tmp_path / "work")
    assert called(calls) == ["bob"]


def test_rescoring_resumes_after_the_machine_goes_down(setting, tmp_path):
    root, settings, calls = setting
    for student in ("alice", "bob", "carol", "dave"):
        write_fake_student(root / student, model=student.encode())
    code = ("import sys; from defi1.collect import grade_submissions; from defi1.grading.rescore import "
            "RescoreSettings; grade_submissions([sys.argv[1]], output=sys.argv[2], rescore=RescoreSettings("
            "detection_data=sys.argv[3], worker_command=(sys.executable, sys.argv[4])))")
    environment = dict(os.environ, FAKE_WORKER_KILL_PARENT="1")
    crashed = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path / "grades.csv"),
                              settings.detection_data, settings.worker_command[1]], env=environment, cwd=PROJECT_ROOT,
                             capture_output=True, timeout=300)
    assert crashed.returncode == -9  # killed while carol was rescored
    state = (tmp_path / "grades_work" / STATE_FILE).read_text().splitlines()
    assert [line.split('"')[3] for line in state] == ["alice", "bob"]  # each finished student, one line each
    calls.unlink()
    submissions = grade_submissions([root], output=tmp_path / "grades.csv",
                                    rescore=RescoreSettings(detection_data=settings.detection_data,
                                                            worker_command=settings.worker_command))
    assert called(calls) == ["carol", "dave"]  # alice and bob were not run again
    assert all(submission.rescored.get("map50") == 0.5 for submission in submissions)


def test_nothing_to_rescore_is_reported(setting, tmp_path):
    root, settings, calls = setting
    folder = write_fake_student(root / "nomodel")
    for model in (folder / "runs").iterdir():
        model.unlink()
    (submission,) = collect_submissions([folder])
    rescore_submissions([submission], settings, work_dir=tmp_path / "work")
    assert "rescoring: no model file to rescore in the submission" in submission.problems
    assert submission.all_flags == ["model_missing", "rescore_failed"] and called(calls) == []


def test_disagreements_beyond_the_tolerance_are_flagged(tmp_path):
    write_fake_student(tmp_path / "class" / "ann", map50=0.5, accuracy=0.75)
    (submission,) = collect_submissions([tmp_path / "class"])
    submission.rescored = {"map50": 0.39, "map50_95": 0.25, "test_accuracy": 0.66, "fps_model": 3.0}
    flag_disagreements([submission], tolerance=0.1)
    # map50 0.5 vs 0.39 (0.11 apart) is flagged; accuracy 0.75 vs 0.66 (0.09) and map50_95 are within 0.1
    assert submission.problems == ["map50: reported 0.5, rescored 0.39 (tolerance 0.1)"]
    assert submission.all_flags == ["rescore_disagrees"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="speed is only comparable with one student at a time"):
        RescoreSettings(bench=True, jobs=2)
    with pytest.raises(ValueError, match="jobs and bench_frames must be at least 1"):
        RescoreSettings(detection_data="x.yaml", jobs=0)
    assert not RescoreSettings().enabled and RescoreSettings(bench=True).enabled


def test_missing_instructor_data_fails_before_reading_the_class(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.yaml: no such dataset YAML file"):
        grade_submissions([tmp_path], output=tmp_path / "grades.csv",
                          rescore=RescoreSettings(detection_data=str(tmp_path / "nothing.yaml")))
