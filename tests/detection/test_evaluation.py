"""Evaluation of a detector or of prediction files on a dataset split: known mAPs, the report files."""

import json

import numpy as np
import pytest

from defi1.detection.evaluation import evaluate_model, evaluate_predictions
from defi1.detection.labels import labels_from_pixels, write_dataset_yaml, write_yolo_labels
from defi1.errors import ConfigError
from defi1.images import write_image
from defi1.yolo.decode import Detection

NAMES = ["circle", "square", "triangle"]
# Per image: (width, height), boxes xyxy pixels, class ids.
GROUND_TRUTH = {
    "a": ((80, 60), [[10, 10, 30, 40], [40, 20, 70, 50]], [0, 1]),
    "b": ((64, 64), [[5, 5, 25, 25]], [2]),
    "c": ((100, 50), [[50, 10, 90, 40]], [0]),
}


@pytest.fixture
def dataset(tmp_path):
    for name, (size, boxes, class_ids) in GROUND_TRUTH.items():
        width, height = size
        write_image(tmp_path / "images" / "test" / f"{name}.png", np.zeros((height, width, 3), dtype=np.uint8))
        write_yolo_labels(tmp_path / "labels" / "test" / f"{name}.txt", np.asarray(class_ids),
                          labels_from_pixels(np.asarray(boxes, dtype=np.float64), size))
    return write_dataset_yaml(tmp_path / "data.yaml", names=NAMES, train="images/test", val="images/test",
                              test="images/test")


class PerfectDetector:
    """Returns the ground truth as detections (score 0.9), except for the images listed in ``missing``."""

    class_names = NAMES

    def __init__(self, missing=()):
        self.missing = set(missing)
        self.calls = 0

    def detect(self, images):
        detections = []
        for image in images:
            height, width = image.shape[:2]
            name = next(key for key, value in GROUND_TRUTH.items() if value[0] == (width, height))
            self.calls += 1
            if name in self.missing:
                detections.append(Detection.empty((width, height)))
                continue
            _, boxes, class_ids = GROUND_TRUTH[name]
            detections.append(Detection(boxes=np.asarray(boxes, dtype=np.float64), scores=np.full(len(boxes), 0.9),
                                        class_ids=np.asarray(class_ids), class_names=[NAMES[i] for i in class_ids]))
        return detections


def test_perfect_detections_score_one_and_write_the_report(dataset, tmp_path):
    out_dir = tmp_path / "report"
    metrics = evaluate_model(PerfectDetector(), dataset, "test", out_dir=out_dir, print_table=False)
    assert metrics["map50"] == pytest.approx(1.0)
    assert metrics["map50_95"] == pytest.approx(1.0)
    assert metrics["map50_voc07"] == pytest.approx(1.0)
    assert metrics["num_ground_truth"] == 4 and metrics["split"] == "test"
    written = json.loads((out_dir / "metrics.json").read_text())
    assert written["map50"] == pytest.approx(1.0) and set(written["per_class"]) == set(NAMES)
    assert (out_dir / "pr_curves.png").stat().st_size > 1000
    assert (out_dir / "gallery.png").stat().st_size > 1000


def test_a_missed_image_lowers_exactly_its_classes(dataset):
    # Image "c" holds one of the two circles: circle AP50 = 0.5 (recall stops at 1/2 with precision 1); square and
    # triangle stay at 1.0, so mAP50 = (0.5 + 1 + 1) / 3.
    metrics = evaluate_model(PerfectDetector(missing={"c"}), dataset, "test", print_table=False)
    assert metrics["per_class"]["circle"]["ap50"] == pytest.approx(0.5)
    assert metrics["map50"] == pytest.approx(2.5 / 3)


def test_model_and_dataset_must_agree_on_classes(dataset):
    detector = PerfectDetector()
    detector.class_names = ["one", "two"]
    with pytest.raises(ConfigError, match="3 classes but the model has 2"):
        evaluate_model(detector, dataset, "test", print_table=False)


def _write_prediction_files(pred_dir, shift=0.0):
    for name, (size, boxes, class_ids) in GROUND_TRUTH.items():
        boxes = np.asarray(boxes, dtype=np.float64) + np.array([shift, 0, shift, 0])
        normalised = labels_from_pixels(boxes, size)
        lines = [f"{class_id} {' '.join(f'{value:.6f}' for value in row)} 0.8"
                 for class_id, row in zip(class_ids, normalised)]
        (pred_dir / f"{name}.txt").write_text("\n".join(lines) + "\n")


def test_prediction_files_equal_to_the_labels_score_one(dataset, tmp_path):
    pred_dir = tmp_path / "predictions"
    pred_dir.mkdir()
    _write_prediction_files(pred_dir)
    metrics = evaluate_predictions(pred_dir, dataset, "test", print_table=False)
    assert metrics["map50"] == pytest.approx(1.0) and metrics["map50_95"] == pytest.approx(1.0)
    assert (pred_dir / "metrics.json").is_file() and (pred_dir / "gallery.png").is_file()


def test_multi_label_is_darknet_scoring_and_recorded(mini_model, tmp_path):
    # Best class per box by default (what predict shows); --multi-label scores every class above the threshold.
    for name in ("a", "b"):
        write_image(tmp_path / "images" / "test" / f"{name}.png",
                    np.random.default_rng(len(name) + ord(name)).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_yolo_labels(tmp_path / "labels" / "test" / f"{name}.txt", [0, 1], [[0.3, 0.3, 0.2, 0.2],
                                                                                 [0.7, 0.7, 0.3, 0.3]])
    data_yaml = write_dataset_yaml(tmp_path / "data.yaml", names=["cat", "dog"], train="images/test",
                                   val="images/test", test="images/test")
    single = evaluate_model(mini_model, data_yaml, "test", print_table=False, conf_threshold=0.05)
    multi = evaluate_model(mini_model, data_yaml, "test", print_table=False, conf_threshold=0.05, multi_label=True)
    assert (single["multi_label"], multi["multi_label"]) == (False, True)
    # Both classes of a box pass the threshold here: more detections (111 against 153 under TensorFlow), at most
    # max_detections (100) per image.
    assert single["num_detections"] < multi["num_detections"] <= 200
