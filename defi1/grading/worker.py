"""The child process that rescores one student: ``python -m defi1.grading.worker JOB.json RESULT.json``.

It is started by :mod:`defi1.grading.rescore`, one process per student, under the limits of
:mod:`defi1.grading.isolation`: it lowers its own memory limit before importing Keras, loads the student's models
only through :mod:`defi1.grading.model_files` (checked, ``safe_mode=True``), evaluates them with defi1's own
evaluation (:func:`defi1.detection.evaluation.evaluate_model`,
:func:`defi1.classification.pipeline.evaluate_saved_model`, :func:`defi1.realtime.bench.benchmark`) and writes
its findings to ``RESULT.json``, after each task. A failing task (unsafe model, wrong classes, corrupt weights) is
reported there and the other tasks still run; a worker killed by a limit keeps the figures of the tasks it finished.

The job file (written by :func:`defi1.grading.rescore.write_job`)::

    {"student": "alice", "memory_limit_bytes": 8589934592, "limits": {...SubmissionLimits...},
     "work_dir": "<folder for temporary files>",
     "models": {"detector": {"path": "...", "cfg": null, "input_size": 256} | null,
                "classifier": {"path": "..."} | null, "realtime": {"path": "...", "input_size": 416} | null},
     "candidates": ["<other .keras files, tried when a role has no model>"],
     "detection": {"data_yaml": "...", "split": "test"} | null,
     "classification": {"data_dir": "..."} | null,
     "bench": {"frames": 50} | null,
     "names": {"<model path>": "<its name in the submission>"}}

The result file::

    {"student": "alice", "figures": {"map50": ..., "map50_95": ..., "test_accuracy": ..., "fps_end_to_end": ...,
     "fps_model": ...}, "problems": [["unsafe_model" | "rescore_failed", "message"], ...],
     "models": {"detector": "<path used>", ...}, "device": "...", "seconds": ...}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2:
        print("usage: python -m defi1.grading.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    job_path, result_path = map(Path, arguments)
    job = json.loads(job_path.read_text(encoding="utf-8"))
    from defi1.grading.isolation import apply_memory_limit

    apply_memory_limit(job.get("memory_limit_bytes"))
    started = time.perf_counter()
    result = {"student": job.get("student"), "figures": {}, "problems": [], "models": {}, "device": None}

    def save():
        from defi1.files import atomic_write_json

        result["seconds"] = round(time.perf_counter() - started, 1)
        atomic_write_json(result_path, result)

    try:
        rescore_job(job, result, after_each_task=save)
    except MemoryError:
        result["problems"].append(["rescore_failed", "ran out of memory (limit "
                                   f"{job.get('memory_limit_bytes', 0) / (1 << 30):.1f} GB)"])
    save()
    return 0


def rescore_job(job: dict, result: dict, *, after_each_task=None) -> None:
    """Run the tasks of ``job`` (see the module docstring), filling ``result`` in place; ``after_each_task()`` is
    called after each one (the worker saves its result then, so a later task that is killed loses nothing)."""
    from defi1.environment import accelerator_name
    from defi1.grading.archive import SubmissionLimits

    limits = SubmissionLimits(**job.get("limits", {}))
    result["device"] = accelerator_name()
    models = _ModelPicker(job, limits, result)
    tasks = (("detection", _rescore_detection), ("classification", _rescore_classification),
             ("bench", _rescore_speed))
    for name, function in tasks:
        if job.get(name):
            _task(result, name, lambda function=function: function(job, models, result))
            if after_each_task is not None:
                after_each_task()


def _task(result, name, function):
    from defi1.grading.model_files import UnsafeModelError

    try:
        function()
    except UnsafeModelError as error:
        result["problems"].append(["unsafe_model", f"{name}: {error}"])
    except MemoryError:
        raise
    except Exception as error:  # a student's model or data can fail in any library; report it on the row
        message = str(error).splitlines()[0][:300] if str(error) else ""
        result["problems"].append(["rescore_failed", f"{name}: {error.__class__.__name__}: {message}"])


class _ModelPicker:
    """Loads the job's models once each, and guesses a role's model among the candidates when none was named."""

    def __init__(self, job, limits, result):
        self.job, self.limits, self.result = job, limits, result
        self.loaded = {}
        self.refused = set()

    def load(self, entry):
        from defi1.grading.model_files import check_darknet_files, load_submitted_keras

        key = (entry["path"], entry.get("cfg"))
        if key not in self.loaded:
            if entry["path"].endswith(".weights"):
                from defi1.yolo.darknet import load_darknet

                if not entry.get("cfg"):
                    raise ValueError(f"{entry['path']}: darknet weights without a .cfg in the submission")
                check_darknet_files(entry["cfg"], entry["path"], self.limits)
                self.loaded[key] = load_darknet(entry["cfg"], entry["path"])
            else:
                self.loaded[key] = load_submitted_keras(entry["path"], self.limits)
        return self.loaded[key]

    def get(self, role):
        """``(entry, model)`` for ``role`` (``detector``, ``classifier``, ``realtime``); raises when none."""
        from defi1.grading.model_files import UnsafeModelError, is_detector

        entry = (self.job.get("models") or {}).get(role)
        if entry:
            self.result["models"][role] = entry["path"]
            return entry, self.load(entry)
        want_detector = role != "classifier"
        for path in self.job.get("candidates", []):
            if path in self.refused:
                continue
            try:
                model = self.load({"path": path})
            except UnsafeModelError as error:
                self.refused.add(path)
                self.result["problems"].append(["unsafe_model", str(error)])
                continue
            except ValueError as error:
                self.refused.add(path)
                self.result["problems"].append(["rescore_failed", str(error)])
                continue
            if is_detector(model) == want_detector:
                self.result["models"][role] = path
                return {"path": path}, model
        raise FileNotFoundError(f"no {'detector' if want_detector else 'classifier'} model file in the submission")


def _rescore_detection(job, models, result):
    from defi1.detection.evaluation import evaluate_model

    entry, model = models.get("detector")
    task = job["detection"]
    metrics = evaluate_model(model, task["data_yaml"], task.get("split", "test"), input_size=entry.get("input_size"),
                             print_table=False)
    result["figures"].update(map50=float(metrics["map50"]), map50_95=float(metrics["map50_95"]))


def _rescore_classification(job, models, result):
    from defi1.classification.pipeline import evaluate_saved_model

    entry, _ = models.get("classifier")  # checked and loaded safely first; evaluate_saved_model loads it again
    metrics = evaluate_saved_model(entry["path"], job["classification"]["data_dir"])
    if "test_accuracy" not in metrics:
        raise ValueError(f"{job['classification']['data_dir']}: no test images to measure accuracy on")
    result["figures"]["test_accuracy"] = float(metrics["test_accuracy"])


def _rescore_speed(job, models, result):
    from defi1.realtime.bench import benchmark

    role = "realtime" if (job.get("models") or {}).get("realtime") else "detector"
    entry, model = models.get(role)
    frames = int(job["bench"].get("frames", 50))
    input_size = entry.get("input_size") or model_input_side(model)
    figures = benchmark(model, input_size=input_size, frames=frames, warmup=3, work_dir=job.get("work_dir"))
    result["figures"].update(fps_end_to_end=float(figures["end_to_end"]["fps_end_to_end"]),
                             fps_model=float(figures["model_only"]["best_fps"]), bench_input_size=int(input_size))


def model_input_side(model) -> int:
    """The input side recorded in a YOLO model's first head."""
    from defi1.yolo.layers import yolo_heads

    size = yolo_heads(model)[0].input_size
    return int(size if isinstance(size, int) else size[0])


if __name__ == "__main__":
    sys.exit(main())
