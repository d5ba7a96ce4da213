"""The report a student hands in (a fifth of the grade): ``defi1 report --results DIR --out report.md``.

:func:`build_report` gathers what the notebooks recorded (``results/<part>.json``, see :mod:`defi1.results`), the
figures they saved under ``runs/`` and the settings of each run into a Markdown skeleton with the headings of the
course's grading grid (:data:`GRADING_GRID`), and leaves under each part a place for the student's own analysis.

:func:`write_report` never loses a student's writing: the skeleton's first line records the SHA-256 of the text
written (:data:`MARKER`); a report whose text still has that hash is an untouched skeleton and is regenerated freely
(the notebooks call it at their end, one after the other), while an edited report is only replaced with
``force=True`` (``--force``). ``defi1 collect`` reads the report's presence with :func:`report_status`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from defi1.files import atomic_write_text
from defi1.results import ResultsSchemaError, load_results

#: The course's grading grid (*Défi 1 : grille d'évaluation*): heading, weight in percent, results part or None.
GRADING_GRID = (
    ("Partie 1 : classification", 40, "classification"),
    ("Partie 2 : localisation", 20, "localisation"),
    ("Partie 3 : traitement temps réel (facultatif)", 20, "realtime"),
    ("Qualité rapport", 20, None),
    ("Qualité code + données", 20, None),
)
#: Folders under ``runs/`` whose figures belong to each part (the notebooks' ``RUN_DIR`` / ``OUT_DIR``).
RUN_FOLDERS = {"classification": ("01_classification",), "localisation": ("02_localisation",),
               "realtime": ("realtime",)}
NOTEBOOKS = {"classification": "01_classification.ipynb", "localisation": "02_localisation.ipynb",
             "realtime": "03_realtime.ipynb"}
#: Questions under each part's analysis heading (prompts, never answers).
PROMPTS = {
    "classification": ("Which model did you choose, on which split, and why?",
                       "Where is the difference between training and validation accuracy, and is it enough "
                       "(*Où se trouve la différence ? Est-ce suffisant ?*)?",
                       "What did dropout, the batch generator and transfer learning change, measured?"),
    "localisation": ("Where does your dataset come from, how was it annotated, and how diverse is the test set?",
                     "Which classes and object sizes fail (precision-recall curves, gallery)?",
                     "What did pretrained weights, anchors and the training settings change, measured?"),
    "realtime": ("Which frame rate and latency did you reach, on which device, and what limits them?",
                 "Is it real time for your use (25 FPS, bounded latency)? What would you change?"),
    "Qualité rapport": ("Summarise the whole work in a few lines: the question, the method, the results.",),
    "Qualité code + données": ("Where are your data, code and models (paths, links)? How can someone rerun "
                               "your results (commands, notebooks, seeds)?",),
}
PLACEHOLDER = "_(Write your analysis here.)_"
MARKER = "<!-- defi1 report skeleton sha256={sha256}: edit freely; `defi1 report` never replaces an edited report " \
         "without --force -->"
_MARKER_PATTERN = re.compile(r"^<!-- defi1 report skeleton sha256=([0-9a-f]{64}):.*-->\n")
#: File names ``defi1 collect`` takes for a report (any folder of the submission, case-insensitive).
REPORT_STEMS = ("report", "rapport")
REPORT_SUFFIXES = (".md", ".pdf", ".docx", ".odt", ".html", ".ipynb")
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def part_figures(part: str, runs_dir) -> list[Path]:
    """The figures (PNG, JPEG, SVG) saved under ``runs_dir/<folder>`` for ``part`` (:data:`RUN_FOLDERS`), sorted."""
    runs_dir = Path(runs_dir)
    found = []
    for folder in RUN_FOLDERS[part]:
        if (runs_dir / folder).is_dir():
            found += [path for path in (runs_dir / folder).rglob("*")
                      if path.suffix.lower() in FIGURE_SUFFIXES and path.is_file()]
    return sorted(found)


def _settings_lines(payload: dict) -> list[str]:
    provenance = payload.get("provenance") or {}
    rows = [("dataset", payload["dataset"]), ("model", payload["model"]), ("device", payload["device"]),
            ("Keras / backend", f"{payload['keras_version']} / {payload['backend']}"),
            ("recorded", payload["timestamp"]), ("defi1", payload.get("defi1_version", "?"))]
    rows += [(name.replace("_", " "), json.dumps(value) if isinstance(value, dict) else value)
             for name, value in provenance.items() if value is not None and name != "model_sha256"]
    return ["| setting | value |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]


def _extra_lines(part: str, extra: dict) -> list[str]:
    if not extra:
        return []
    lines = ["", "Other figures recorded by the notebook:", ""]
    models = extra.get("models") if part == "classification" else None
    if isinstance(models, dict) and models and all(isinstance(value, dict) for value in models.values()):
        columns = sorted({key for value in models.values() for key in value})
        lines += ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(_number(values.get(column, "")) for column in columns) + " |"
                  for name, values in models.items()]
        extra = {key: value for key, value in extra.items() if key != "models"}
    if extra:
        lines += ["```json", json.dumps(extra, indent=1, sort_keys=True, default=str)[:4000], "```"]
    return lines


def _part_lines(part: str, payload: dict | None, problem: str | None, figures: list, base: Path) -> list[str]:
    if payload is None:
        reason = problem or f"no results/{part}.json"
        return [f"_Nothing recorded yet ({reason}): run notebooks/{NOTEBOOKS[part]} to its end, then "
                "`defi1 report` again._"]
    lines = []
    if payload.get("smoke"):
        lines += ["> **Smoke-mode results** (the small CI settings): rerun the notebook with `SMOKE = False` "
                  "before handing in.", ""]
    lines += ["**Results** (as recorded by the notebook):", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_number(value)} |" for name, value in payload["metrics"].items()]
    lines += ["", "**Run settings:**", ""] + _settings_lines(payload)
    lines += _extra_lines(part, payload.get("extra") or {})
    if figures:
        lines += ["", "**Figures:**", ""]
        lines += [f"![{path.stem}]({_link(path, base)})" for path in figures]
    return lines


def build_report(results_dir, *, runs_dir=None, base_dir=".") -> str:
    """The report skeleton's Markdown text (without :data:`MARKER`).

    Args:
        results_dir: the folder of ``<part>.json`` files (``results/``); a missing or invalid file leaves its part
            with a note saying so.
        runs_dir: where the notebooks saved their figures (default: ``runs`` beside ``results_dir``).
        base_dir: the folder the report will live in (figure links are relative to it).
    Raises ``FileNotFoundError`` when ``results_dir`` does not exist.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such results folder (the notebooks write results/<part>.json)")
    runs_dir = Path(runs_dir) if runs_dir is not None else results_dir.parent / "runs"
    lines = ["# Hands on AI, défi 1: report", "",
             "Grading grid of the course (*Défi 1 : grille d'évaluation*): "
             + ", ".join(f"{heading} {weight} %" for heading, weight, _ in GRADING_GRID) + " (total 120 %).",
             "The figures below come from the notebooks' results files; the analysis is yours.", ""]
    for heading, weight, part in GRADING_GRID:
        lines += [f"## {heading} ({weight} %)", ""]
        if part is not None:
            payload, problem = None, None
            path = results_dir / f"{part}.json"
            if path.is_file():
                try:
                    payload = load_results(path)
                except (ResultsSchemaError, ValueError, OSError) as error:
                    problem = str(error)
            lines += _part_lines(part, payload, problem, part_figures(part, runs_dir), Path(base_dir)) + [""]
        lines += ["### Analysis", ""] + [f"- {prompt}" for prompt in PROMPTS[part or heading]]
        lines += ["", PLACEHOLDER, ""]
    return "\n".join(lines)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def report_status(text: str) -> str:
    """``"skeleton"`` for a report exactly as :func:`write_report` wrote it (its recorded hash still matches),
    else ``"written"`` (the student changed it, or it was not made by ``defi1 report``)."""
    match = _MARKER_PATTERN.match(text)
    if match and _sha256(text[match.end():]) == match.group(1):
        return "skeleton"
    return "written"


def write_report(results_dir, out, *, runs_dir=None, force: bool = False, if_edited: str = "raise") -> Path:
    """Write the report skeleton of :func:`build_report` to ``out`` (atomically) and return the path written.

    An existing ``out`` is replaced only when it is an untouched skeleton (:func:`report_status`) or with
    ``force``. Otherwise, with ``if_edited="raise"`` (the command line), ``FileExistsError``; with
    ``if_edited="beside"`` (the notebooks), the new skeleton goes to ``<stem>.new.md`` beside it. The student's
    analysis is never lost.
    """
    if if_edited not in ("raise", "beside"):
        raise ValueError(f"if_edited={if_edited!r}: expected 'raise' or 'beside'")
    out = Path(out)
    if out.exists() and not force:
        if out.is_dir() or report_status(out.read_text(encoding="utf-8", errors="replace")) != "skeleton":
            if if_edited == "raise":
                raise FileExistsError(f"{out}: already exists and holds your own writing; not replaced (use "
                                      "--force to replace it, or --out another file)")
            print(f"{out} holds your own writing: kept; the updated skeleton is in {out.stem}.new.md")
            return write_report(results_dir, out.with_name(f"{out.stem}.new.md"), runs_dir=runs_dir, force=True)
    body = build_report(results_dir, runs_dir=runs_dir, base_dir=out.parent)
    return atomic_write_text(out, MARKER.format(sha256=_sha256(body)) + "\n" + body)


def is_report_name(name: str) -> bool:
    """Whether a file name is one ``defi1 collect`` takes for the report (``report.md``, ``Rapport.pdf``...)."""
    path = Path(name)
    return path.stem.lower() in REPORT_STEMS and path.suffix.lower() in REPORT_SUFFIXES
