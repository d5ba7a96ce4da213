"""What every course notebook shares: a first cell that installs a pinned defi1 release on Colab, a parameters cell
where ``SMOKE = True`` alone makes the run small, a work folder that can live on Google Drive, a device report, and
no library logic of their own. (Each notebook is executed end to end by its part's slow test.)"""

import json
import re
import shlex
from pathlib import Path

import pytest

import defi1

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_three_notebooks():
    assert [path.name for path in NOTEBOOKS] == ["01_classification.ipynb", "02_localisation.ipynb",
                                                 "03_realtime.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_first_cell_installs_this_release_on_colab_only(path):
    first = _code_cells(path)[0]
    source = "".join(first["source"])
    assert "colab" in _tags(first)
    pinned = re.search(r'^DEFI1_SOURCE = "git\+https://github\.com/defi1-course/defi1@v([0-9.]+)"$', source, re.M)
    assert pinned and pinned.group(1) == defi1.__version__
    assert 'if "google.colab" in sys.modules:' in source and "Restart the runtime" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_cell_has_smoke_and_drive_folder_and_setup_uses_them(path):
    cells = _code_cells(path)
    parameters = [cell for cell in cells if "parameters" in _tags(cell)]
    assert len(parameters) == 1
    text = "".join(parameters[0]["source"])
    assert re.search(r"^SMOKE = False\b", text, re.M) and re.search(r"^DRIVE_FOLDER = None\b", text, re.M)
    code = "".join("".join(cell["source"]) for cell in cells)
    assert "if SMOKE:" in code and "work_folder(DRIVE_FOLDER)" in code and "print(runtime_summary(" in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_define_no_library_logic(path):
    code = "\n".join("".join(cell["source"]) for cell in _code_cells(path))
    assert not re.search(r"^\s*(def|class) ", code, re.M)


def _markdown(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [(index, "".join(cell["source"])) for index, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_section_ends_with_an_exercise_or_a_question(path):
    """Each ``## `` section holds a ``### Exercise...`` or ``### Question...`` heading before the next section."""
    sections, current = [], None
    for _, text in _markdown(path):
        for line in text.splitlines():
            if line.startswith("## "):
                current = [line, False]
                sections.append(current)
            elif current is not None and re.match(r"^###\s+(Exercise|Question)", line):
                current[1] = True
    assert len(sections) >= 5
    assert [title for title, has_exercise in sections if not has_exercise] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_end_by_writing_the_report(path):
    cells = [cell for cell in _code_cells(path) if "".join(cell["source"]).strip()]
    assert "write_report(RESULTS_DIR, WORK / \"report.md\"" in "".join(cells[-1]["source"])
    assert 'if_edited="beside"' in "".join(cells[-1]["source"])  # a report the student wrote is never replaced


def test_students_data_parameters_default_to_the_built_in_data():
    parameters = {path.stem: "".join(next(cell for cell in _code_cells(path) if "parameters" in _tags(cell))["source"])
                  for path in NOTEBOOKS}
    assert re.search(r"^DATASET_DIR = None\b", parameters["01_classification"], re.M)
    assert re.search(r"^DATASET = None\b", parameters["02_localisation"], re.M)


def test_no_claim_the_measurements_contradict_and_course_numbers_quoted_exactly():
    text = {path.stem: path.read_text(encoding="utf-8") for path in NOTEBOOKS}
    everything = "\n".join(text.values())
    # R-CNN 20 s/img against YOLO 22 ms/img is about 900 times: under three orders of magnitude.
    assert "four orders of magnitude" not in everything and "two orders of magnitude" not in everything
    # benchmarks/RESULTS.md: tiny-YOLOv3 at 416 did not reach 25 FPS on the 2-core CPU machine.
    assert "tiny-YOLOv3 reaches real time" not in everything and "benchmarks/RESULTS.md" in text["03_realtime"]
    for row in ("| R-CNN | 66.0 | .05 FPS | 20 s/img |", "| Faster R-CNN | 73.2 | 7 FPS | 140 ms/img |",
                "| YOLO | 63.4 | 45 FPS | 22 ms/img |"):
        assert row in text["02_localisation"]
    assert "45,000 / 15,000" in text["01_classification"] and "test_size=0.25, random_state=42" in text[
        "01_classification"]
    assert "7 x 7 x" in text["02_localisation"] or "7 × 7 × (5 * B + C)" in text["02_localisation"]


def test_notebooks_readme_maps_the_course_topics_to_sections():
    readme = (NOTEBOOKS[0].parent / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    for topic in ("Avec le Dropout", "Epochs", "Fit_generator", "Transfer Learning", "IoU", "Fenêtre glissante",
                  "Region Proposals", "R-CNN", "YOLO / SSD", "NMS", "Comment annoter", "Floydhub", "grille"):
        assert any(topic in row for row in rows), topic
    assert len(rows) >= 25


def _notebook_commands():
    """Every ``defi1 GROUP COMMAND ARGS...`` written in the notebooks' markdown (inline code or code blocks)."""
    commands = []
    for path in NOTEBOOKS:
        for _, text in _markdown(path):
            for snippet in re.findall(r"`([^`\n]*)`", text) + re.findall(r"```\n(.*?)```", text, flags=re.S):
                for line in snippet.splitlines():
                    words = shlex.split(line.split("#")[0].strip())
                    if len(words) > 3 and words[0] == "defi1":
                        commands.append((path.stem, words[1:]))
    return commands


@pytest.mark.parametrize("stem, words", _notebook_commands(), ids=lambda value: " ".join(value[:3])
                         if isinstance(value, list) else value)
def test_commands_the_notebooks_teach_are_accepted_by_the_cli(stem, words):
    from defi1.cli import build_parser

    assert callable(build_parser().parse_args(words).handler)


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda path: path.stem)
def test_parts_2_and_3_give_measured_cpu_timings_with_date_and_load_and_no_gpu_guess(path):
    timings = [text for _, text in _markdown(path) if text.startswith("**How long each step takes (CPU timings).**")]
    assert len(timings) == 1
    text = timings[0]
    assert re.search(r"Measured on \d{4}-\d{2}-\d{2}", text) and "load average" in text
    assert "GPU timings were **not\nmeasured**" in text or "GPU timings were **not measured**" in text
    assert re.search(r"\| \d+ min \d+ s|\| \d+ s \|", text)
