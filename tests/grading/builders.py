"""Builders of instructor data, tiny models and student submissions (honest, edited, wrong model, malformed,
malicious) for the grading tests. Everything is generated offline in seconds."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path


INPUT_SIZE = 64
#: Kinds of generated submissions, in the order a class cycles through them.
KINDS = ("honest", "honest_zip", "edited_json", "wrong_model", "no_provenance", "impossible_metric", "nested",
         "byte_order_mark", "malformed_zip", "truncated_json", "path_traversal", "symlink", "zip_bomb", "lambda_model")


@dataclass
class ClassMaterial:
    """The instructor's data and the models students submit, with what each model really scores."""

    data_yaml: Path
    digits_dir: Path
    detectors: list        # .keras paths
    classifiers: list      # .keras paths
    scores: list           # per model pair: {"map50", "map50_95", "test_accuracy"} on the instructor's data
    lambda_detector: Path
    spare_detector: Path   # submitted in place of the detector that produced the results (wrong model)


def narrow_tiny_cfg_text(num_classes, input_size=INPUT_SIZE, divisor=8) -> str:
    """tiny-YOLOv3's cfg, every layer ``divisor`` times narrower: a detector of a few hundred KB."""
    from defi1.yolo.architectures import yolov3_tiny_cfg

    text = yolov3_tiny_cfg(num_classes=num_classes, input_size=input_size)
    widths = (16, 32, 64, 128, 256, 512, 1024)
    return re.sub(r"filters=(\d+)", lambda match: f"filters={int(match.group(1)) // divisor}"
                  if int(match.group(1)) in widths else match.group(0), text)


def build_detector(path, seed):
    import keras

    from defi1.detection.shapes import SHAPE_NAMES
    from defi1.files import atomic_save_model
    from defi1.yolo.model import build_from_cfg, initialize_head_priors

    keras.utils.set_random_seed(seed)
    model = build_from_cfg(narrow_tiny_cfg_text(len(SHAPE_NAMES)), class_names=list(SHAPE_NAMES))
    initialize_head_priors(model, objectness_prior=0.2)  # a few boxes per image, so mAP is not all zeros
    return atomic_save_model(model, path)


def build_classifier(path, seed):
    import keras

    from defi1.classification.datasets import DIGIT_NAMES
    from defi1.classification.models import build_course_mlp
    from defi1.files import atomic_save_model

    keras.utils.set_random_seed(seed)
    model = build_course_mlp(input_shape=(8, 8, 1), num_classes=10, class_names=DIGIT_NAMES)
    return atomic_save_model(model, path)


def build_lambda_detector(path, marker):
    """A model with a Lambda layer whose code would create ``marker`` if it ever ran."""
    import keras

    def touch_marker(tensor, marker=str(marker)):
        open(marker, "w").close()
        return tensor

    model = keras.Sequential([keras.Input((INPUT_SIZE, INPUT_SIZE, 3)),
                              keras.layers.Lambda(touch_marker, name="student_code")])
    model.save(path)
    Path(marker).unlink(missing_ok=True)  # building the model ran it once, here in the test
    return Path(path)


def build_material(folder, *, pairs=1) -> ClassMaterial:
    """Instructor data (a shapes test split, digits class folders) and ``pairs`` detector + classifier pairs, each
    scored here in-process with defi1's own evaluation (what an honest student reports)."""
    from defi1.classification.datasets import write_digits_tree
    from defi1.classification.pipeline import evaluate_saved_model
    from defi1.detection.evaluation import evaluate_model
    from defi1.detection.shapes import generate_shapes_dataset

    folder = Path(folder)
    data_yaml = generate_shapes_dataset(folder / "hidden_shapes", num_images=1, num_val=1, num_test=6,
                                        image_size=INPUT_SIZE, seed=11)
    digits_dir = write_digits_tree(folder / "hidden_digits", max_per_class=2)
    detectors, classifiers, scores = [], [], []
    for index in range(pairs):
        detector = build_detector(folder / "models" / f"detector_{index}.keras", seed=index)
        classifier = build_classifier(folder / "models" / f"classifier_{index}.keras", seed=index)
        metrics = evaluate_model(detector, data_yaml, "test", input_size=INPUT_SIZE, print_table=False)
        accuracy = evaluate_saved_model(classifier, digits_dir)["test_accuracy"]
        detectors.append(detector)
        classifiers.append(classifier)
        scores.append({"map50": float(metrics["map50"]), "map50_95": float(metrics["map50_95"]),
                       "test_accuracy": float(accuracy)})
    lambda_detector = build_lambda_detector(folder / "models" / "lambda.keras", folder / "LAMBDA_RAN")
    spare = build_detector(folder / "models" / "spare_detector.keras", seed=pairs + 100)
    return ClassMaterial(data_yaml, digits_dir, detectors, classifiers, scores, lambda_detector, spare)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def results_payload(part, metrics, *, model_file=None, model_sha256=None, version=2):
    """A results file as :func:`defi1.results.record_results` writes it."""
    payload = {"schema_version": version, "part": part, "metrics": metrics, "dataset": "shapes", "model": "tiny",
               "keras_version": "3.15.1", "backend": "tensorflow", "device": "CPU", "smoke": False,
               "timestamp": "2026-11-27T10:00:00+00:00"}
    if version >= 2:
        payload.update(defi1_version="0.1.0", provenance={
            "split": "test", "dataset_fingerprint": "0" * 64, "input_size": INPUT_SIZE, "thresholds": None,
            "model_file": model_file, "model_sha256": model_sha256})
    return payload


def project_files(material: ClassMaterial, kind: str, index: int) -> dict:
    """``{relative path: bytes}`` of one student's project for ``kind`` (the model files and results)."""
    pair = index % len(material.detectors)
    detector, classifier = material.detectors[pair], material.classifiers[pair]
    reported = dict(material.scores[pair])
    files = {"runs/detector.keras": detector.read_bytes(), "runs/classifier.keras": classifier.read_bytes()}
    detector_hash, classifier_hash = sha256(detector), sha256(classifier)
    version = 1 if kind == "no_provenance" else 2
    if kind == "edited_json":
        reported.update(map50=0.97, map50_95=0.81, test_accuracy=0.99)
    if kind == "impossible_metric":
        reported.update(test_accuracy=91.0, map50=-0.5, map50_95=7.0)
    if kind == "wrong_model":  # the results were measured with another detector than the one submitted
        files["runs/detector.keras"] = material.spare_detector.read_bytes()
    if kind == "lambda_model":
        files["runs/detector.keras"] = material.lambda_detector.read_bytes()
        detector_hash = sha256(material.lambda_detector)
    classification = results_payload("classification", {"test_accuracy": reported["test_accuracy"]},
                                     model_file="runs/classifier.keras", model_sha256=classifier_hash,
                                     version=version)
    localisation = results_payload("localisation", {"map50": reported["map50"], "map50_95": reported["map50_95"]},
                                   model_file="runs/detector.keras", model_sha256=detector_hash, version=version)
    prefix = b"\xef\xbb\xbf" if kind == "byte_order_mark" else b""
    files["results/classification.json"] = prefix + json.dumps(classification).encode()
    files["results/localisation.json"] = prefix + json.dumps(localisation).encode()
    if kind == "truncated_json":
        files["results/localisation.json"] = files["results/localisation.json"][:40]
    files["01_classification.ipynb"] = _notebook([1, 2])
    return files


def _notebook(counts) -> bytes:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for index, count in enumerate(counts):
        cell = nbformat.v4.new_code_cell(f"x = {index}")
        cell.execution_count = count
        notebook.cells.append(cell)
    return nbformat.writes(notebook).encode()


def write_submission(root, student, kind, material: ClassMaterial, index: int) -> Path:
    """Write one submission of ``kind`` (see :data:`KINDS`) under ``root``; returns its path."""
    root = Path(root)
    if kind == "malformed_zip":
        path = root / f"{student}.zip"
        path.write_bytes(b"PK\x03\x04 this is not really a zip file")
        return path
    if kind == "zip_bomb":
        return write_zip_bomb(root / f"{student}.zip")
    files = project_files(material, kind, index)
    if kind in ("honest", "edited_json", "wrong_model", "no_provenance", "impossible_metric", "byte_order_mark",
                "truncated_json"):
        folder = root / student
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder
    if kind == "nested":  # GitHub's download: the project one level down, student id from the outer folder
        folder = root / student / "defi1-main"
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return root / student
    path = root / f"{student}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{student}-project/{name}", data)
        if kind == "path_traversal":
            archive.writestr("../../escaped.txt", "written outside the work folder")
            archive.writestr("/tmp/defi1_absolute_escape.txt", "absolute")
        if kind == "symlink":
            link = zipfile.ZipInfo(f"{student}-project/results/realtime.json")
            link.create_system = 3
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(link, "/etc/passwd")
    return path


def write_zip_bomb(path, *, declared_bytes=3_000_000_000, entries=2) -> Path:
    """A small zip whose entries declare ``declared_bytes`` each (central directory sizes rewritten): with the
    default limits (4 GB a submission) it must be refused before anything is read."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(entries):
            archive.writestr(f"bomb/part{index}.bin", b"\0" * 100_000)
    data = bytearray(Path(path).read_bytes())
    position = data.find(b"PK\x01\x02")
    while position != -1:
        data[position + 24:position + 28] = declared_bytes.to_bytes(4, "little")  # uncompressed size
        position = data.find(b"PK\x01\x02", position + 4)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def build_class(root, material: ClassMaterial, count: int, kinds=KINDS) -> dict:
    """``count`` submissions cycling through ``kinds`` (default :data:`KINDS`); returns ``{student id: kind}``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    students = {}
    for index in range(count):
        kind = kinds[index % len(kinds)]
        student = f"s{index:03d}_{kind}"
        write_submission(root, student, kind, material, index)
        students[student] = kind
    return students


def files_outside(folder) -> set:
    """Every file path under ``folder`` (to show nothing was written elsewhere)."""
    return {os.path.join(base, name) for base, _, names in os.walk(folder) for name in names}


def assert_close(value, expected, tolerance=1e-4):
    assert value is not None and abs(float(value) - float(expected)) <= tolerance, (value, expected)



FAKE_WORKER = '''"""A stand-in for defi1.grading.worker: behaves by student name, records each call."""
import json, os, signal, sys, time
job = json.load(open(sys.argv[1]))
student = job["student"]
with open(os.environ["FAKE_WORKER_CALLS"], "a") as calls:
    calls.write(student + "\\n")
result = {"student": student, "figures": {"map50": 0.5, "map50_95": 0.25, "test_accuracy": 0.75},
          "problems": [], "models": {}, "device": "fake device"}
if student == "partial":  # detection measured and saved, then the speed measurement hangs
    json.dump(dict(result, figures={"map50": 0.5}), open(sys.argv[2], "w"))
    time.sleep(120)
if student == "hang":
    time.sleep(120)
if student == "hog":
    block = b"\\x01" * (600 << 20)
    time.sleep(120)
if student == "carol" and os.environ.get("FAKE_WORKER_KILL_PARENT"):
    os.kill(os.getppid(), signal.SIGKILL)  # the instructor's machine goes down while carol is rescored
    time.sleep(30)
json.dump(result, open(sys.argv[2], "w"))
'''


def write_fake_worker(folder) -> Path:
    path = Path(folder) / "fake_worker.py"
    path.write_text(FAKE_WORKER)
    return path


def write_fake_student(folder, *, map50=0.5, accuracy=0.75, model=b"a detector") -> Path:
    """A student folder whose results name ``runs/detector.keras`` (stand-in bytes, never loaded by a fake worker)."""
    folder = Path(folder)
    (folder / "runs").mkdir(parents=True)
    (folder / "results").mkdir()
    (folder / "runs" / "detector.keras").write_bytes(model)
    (folder / "runs" / "classifier.keras").write_bytes(b"a classifier")
    digest = hashlib.sha256(model).hexdigest()
    (folder / "results" / "localisation.json").write_text(json.dumps(results_payload(
        "localisation", {"map50": map50, "map50_95": map50 / 2}, model_file="runs/detector.keras",
        model_sha256=digest)))
    (folder / "results" / "classification.json").write_text(json.dumps(results_payload(
        "classification", {"test_accuracy": accuracy}, model_file="runs/classifier.keras",
        model_sha256=hashlib.sha256(b"a classifier").hexdigest())))
    return folder


def write_hidden_shapes(folder) -> Path:
    """The instructor's held-out detection data (a few generated images; no Keras needed)."""
    from defi1.detection.shapes import generate_shapes_dataset

    return generate_shapes_dataset(folder, num_images=1, num_val=1, num_test=3, image_size=INPUT_SIZE, seed=5)
