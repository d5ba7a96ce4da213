"""Tests of defi1.report: the report skeleton from results files and figures, never replacing a student's writing."""

import json

import pytest

from defi1.report import (GRADING_GRID, PLACEHOLDER, build_report, is_report_name, part_figures, report_status,
                          write_report)
from tests.test_collect import results_payload

pytestmark = pytest.mark.backend_agnostic  # files and text only


def make_project(root, *, smoke=False):
    """A student's folder as the notebooks leave it: results/ with Parts 1 and 2, figures under runs/."""
    (root / "results").mkdir(parents=True)
    classification = results_payload("classification", {"test_accuracy": 0.9125, "val_accuracy": 0.95},
                                      smoke=smoke)
    classification["extra"] = {"models": {"course_mlp": {"train": 1.0, "val": 0.95, "test": 0.9125},
                                          "small_cnn": {"train": 0.99, "val": 0.97, "test": 0.96}}}
    (root / "results" / "classification.json").write_text(json.dumps(classification))
    (root / "results" / "localisation.json").write_text(json.dumps(
        results_payload("localisation", {"map50": 0.8123, "map50_95": 0.5})))
    (root / "runs" / "01_classification" / "evaluation").mkdir(parents=True)
    (root / "runs" / "01_classification" / "evaluation" / "confusion_matrix.png").write_bytes(b"\x89PNG")
    (root / "runs" / "02_localisation").mkdir(parents=True)
    (root / "runs" / "02_localisation" / "pr_curves.png").write_bytes(b"\x89PNG")
    (root / "runs" / "02_localisation" / "notes.txt").write_text("not a figure")
    return root


def test_report_has_the_course_grading_grid_results_figures_and_analysis_places(tmp_path):
    root = make_project(tmp_path / "student")
    text = build_report(root / "results", base_dir=root)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Partie 1 : classification (40 %)", "## Partie 2 : localisation (20 %)",
                        "## Partie 3 : traitement temps réel (facultatif) (20 %)", "## Qualité rapport (20 %)",
                        "## Qualité code + données (20 %)"]
    assert sum(weight for _, weight, _ in GRADING_GRID) == 120
    assert "| test_accuracy | 0.9125 |" in text and "| map50 | 0.8123 |" in text
    assert "| course_mlp | 1 | 0.9125 | 1 | 0.95 |" not in text  # columns sorted: test, train, val
    assert "| course_mlp | 0.9125 | 1 | 0.95 |" in text
    assert "![confusion_matrix](runs/01_classification/evaluation/confusion_matrix.png)" in text
    assert "![pr_curves](runs/02_localisation/pr_curves.png)" in text and "notes" not in text
    assert "_Nothing recorded yet (no results/realtime.json): run notebooks/03_realtime.ipynb" in text
    assert text.count("### Analysis") == 5 and text.count(PLACEHOLDER) == 5
    assert "| input size | 64 |" in text and "| split | test |" in text


def test_smoke_results_are_pointed_out(tmp_path):
    root = make_project(tmp_path / "student", smoke=True)
    assert build_report(root / "results").count("**Smoke-mode results**") == 1  # Part 1 only


def test_untouched_skeleton_is_regenerated_but_written_report_is_kept(tmp_path):
    root = make_project(tmp_path / "student")
    out = root / "report.md"
    write_report(root / "results", out)
    assert report_status(out.read_text()) == "skeleton"
    (root / "results" / "localisation.json").unlink()
    write_report(root / "results", out)  # untouched: updated without --force
    assert "| map50 |" not in out.read_text()
    out.write_text(out.read_text().replace(PLACEHOLDER, "Our model overfits after epoch 12.", 1))
    assert report_status(out.read_text()) == "written"
    with pytest.raises(FileExistsError, match="already exists and holds your own writing; not replaced"):
        write_report(root / "results", out)
    assert "Our model overfits" in out.read_text()
    beside = write_report(root / "results", out, if_edited="beside")
    assert beside == root / "report.new.md" and "Our model overfits" in out.read_text()
    write_report(root / "results", out, force=True)
    assert "Our model overfits" not in out.read_text()


def test_invalid_results_and_missing_folder(tmp_path):
    root = make_project(tmp_path / "student")
    (root / "results" / "classification.json").write_text("{not json")
    assert "not valid JSON (line 1" in build_report(root / "results")
    with pytest.raises(FileNotFoundError, match="no such results folder"):
        build_report(tmp_path / "nowhere")


def test_report_names_and_figures(tmp_path):
    assert is_report_name("Rapport.PDF") and is_report_name("report.md") and not is_report_name("reports.md")
    assert not is_report_name("report.json")
    root = make_project(tmp_path / "student")
    assert [path.name for path in part_figures("localisation", root / "runs")] == ["pr_curves.png"]
    assert part_figures("realtime", root / "runs") == []
