"""``defi1 demo``: the main job. Runs each part of the challenge offline on built-in data and writes a run folder.

Layout of the run folder (default ``runs/demo``)::

    runs/demo/
      report.md                      # short report: what ran, the figures, where the plots are
      summary.json                   # every part's metrics and wall time
      part1_classification/          # metrics.json, learning curves, confusion matrix
      part2_localisation/            # shapes dataset, tiny-YOLOv3 checkpoint, metrics.json, PR curves, gallery
      part3_realtime/                # generated video, annotated video, FPS figures
      results/<part>.json            # grading results (see defi1.results)
"""

from __future__ import annotations

import importlib
import time

from defi1.files import atomic_write_json, atomic_write_text, ensure_output_dir
from defi1.results import record_results

PARTS = {
    1: ("classification", "part1_classification", "defi1.classification.demo", "run_classification_demo"),
    2: ("localisation", "part2_localisation", "defi1.detection.demo", "run_localisation_demo"),
    3: ("realtime", "part3_realtime", "defi1.realtime.demo", "run_realtime_demo"),
}
RESULT_METRICS = {
    "classification": ("train_accuracy", "val_accuracy", "test_accuracy"),
    "localisation": ("map50", "map50_95", "map50_voc07"),
    "realtime": ("fps_end_to_end", "fps_model", "latency_ms_median"),
}


def run_demo(out_dir="runs/demo", *, parts=(1, 2, 3), smoke=False, log=print) -> dict:
    """Run the requested parts in order and write the run folder described in the module docstring.

    Part 3 streams with the detector trained by Part 2 when Part 2 ran in the same call. Returns the summary
    dictionary (also written to ``summary.json``).
    """
    out_dir = ensure_output_dir(out_dir)
    summary = {"smoke": bool(smoke), "parts": {}}
    model_path = None
    for part in sorted(set(parts)):
        if part not in PARTS:
            raise ValueError(f"unknown part {part}: expected 1 (classification), 2 (localisation) or 3 (realtime)")
        name, folder, module_name, function_name = PARTS[part]
        function = getattr(importlib.import_module(module_name), function_name)
        log(f"== Part {part}: {name} ==")
        started = time.perf_counter()
        keyword_arguments = {"smoke": smoke}
        if part == 3:
            keyword_arguments["model_path"] = model_path
        outcome = function(out_dir / folder, **keyword_arguments)
        elapsed = time.perf_counter() - started
        if part == 2:
            model_path = outcome.get("model_path")
        metrics = _numeric_metrics(outcome)
        model_name = _model_name(outcome, default=name)
        summary["parts"][name] = {"metrics": metrics, "wall_time_s": round(elapsed, 1), "folder": folder,
                                  "model": model_name, "dataset": str(outcome.get("dataset", "built-in"))}
        wanted = {key: metrics[key] for key in RESULT_METRICS[name] if key in metrics}
        record_results(name, wanted or metrics, dataset=str(outcome.get("dataset", "built-in")), model=model_name,
                       smoke=smoke, results_dir=out_dir / "results", **outcome.get("provenance", {}))
        log(f"Part {part} done in {elapsed:.0f} s: " + ", ".join(f"{key}={value:.4g}" for key, value in wanted.items()))
    atomic_write_json(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "report.md", _report(summary))
    log(f"Report: {out_dir / 'report.md'}")
    return summary


def _model_name(outcome: dict, default: str) -> str:
    for key in ("model_name", "chosen_model", "model"):
        if isinstance(outcome.get(key), str) and outcome[key]:
            return outcome[key]
    return default


def _numeric_metrics(outcome: dict) -> dict:
    """The numbers of a part's outcome: its ``metrics`` (or top-level) numbers, and ``models``' per-model numbers as
    ``<model>.<metric>``."""
    metrics = outcome.get("metrics", outcome)
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = float(value)
    for model_name, model_metrics in (outcome.get("models") or {}).items():
        if isinstance(model_metrics, dict):
            for key, value in model_metrics.items():
                if key.endswith("accuracy") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    flat[f"{model_name}.{key}"] = float(value)
    return flat


def _report(summary: dict) -> str:
    from defi1.environment import describe

    environment = describe()
    lines = ["# defi1 demo report", "",
             f"Backend: {environment['backend']}; device: {environment['device']}; machine: {environment['machine']}.",
             f"Smoke settings: {'yes (tiny, numbers not meaningful)' if summary['smoke'] else 'no'}.", ""]
    for name, part in summary["parts"].items():
        lines += [f"## {name.capitalize()}", "", f"Folder `{part['folder']}/`, wall time {part['wall_time_s']} s."
                  + (f" Model: {part['model']}." if part["model"] else "") + (
                      f" Data: {part['dataset']}." if part["dataset"] else ""), "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4f} |" for key, value in part["metrics"].items()]
        lines.append("")
    return "\n".join(lines)
