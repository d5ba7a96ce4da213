"""Tests of defi1.classification.evaluation: accuracies side by side, confusion matrix, plots, prediction."""

import keras
import numpy as np
import pytest

from defi1.classification import evaluation
from defi1.classification.models import ClassifierOutput
from defi1.images import read_image, write_image


def argmax_model(num_classes=3):
    """A model whose predicted class is the brightest of the first ``num_classes`` pixels of a 1×C×1 image."""
    inputs = keras.Input((1, num_classes, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Activation("softmax")(x)
    outputs = ClassifierOutput(["a", "b", "c"][:num_classes], (1, num_classes), color_mode="grayscale")(x)
    return keras.Model(inputs, outputs)


def one_hot_images(labels, num_classes=3):
    images = np.zeros((len(labels), 1, num_classes, 1), dtype=np.float32)
    images[np.arange(len(labels)), 0, labels, 0] = 10.0
    return images


@pytest.mark.backend_agnostic
def test_predict_labels_keeps_order_across_batches():
    labels = np.arange(130) % 3  # 130 = 2 full batches of 64 and a partial one
    true, predicted, probabilities = evaluation.predict_labels(argmax_model(), (one_hot_images(labels), labels))
    assert np.array_equal(true, labels) and np.array_equal(predicted, labels)
    assert probabilities.shape == (130, 3) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.backend_agnostic
def test_accuracy_table_and_its_course_style_print():
    labels = np.array([0, 1, 2, 0])
    wrong = np.array([0, 1, 2, 1])  # the last image shows class 1 but is labelled 0
    splits = {"train": (one_hot_images(labels), labels), "val": (one_hot_images(wrong), labels),
              "test": (one_hot_images(labels[:2]), labels[:2])}
    accuracies = evaluation.accuracy_table(argmax_model(), splits)
    assert accuracies == {"train": 1.0, "val": 0.75, "test": 1.0}
    assert evaluation.format_accuracy_table(accuracies).splitlines() == [
        "Train accuracy = 1.0000", "Valid accuracy = 0.7500", "Test  accuracy = 1.0000"]


def test_classification_details_hand_computed():
    details = evaluation.classification_details([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert details["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert details["report"]["b"]["precision"] == 0.5 and details["report"]["b"]["recall"] == 1.0
    assert details["report"]["a"]["recall"] == 0.5
    assert details["report"]["accuracy"] == 0.75


def test_evaluate_classifier_writes_metrics_and_png_files(tmp_path):
    labels = np.array([0, 1, 2, 2])
    splits = {"val": (one_hot_images(labels), labels), "test": (one_hot_images(labels), labels)}
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.9], "val_accuracy": [0.4, 0.8]}
    metrics = evaluation.evaluate_classifier(argmax_model(), splits, class_names=["a", "b", "c"], out_dir=tmp_path,
                                             histories={"mlp": history})
    assert metrics["test_accuracy"] == 1.0
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    for name in ("confusion_matrix.png", "learning_curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert read_image(tmp_path / name).shape[0] > 100
    assert "precision" in (tmp_path / "classification_report.txt").read_text()


def test_predict_paths_uses_the_model_info_and_skips_unreadable_files(tmp_path):
    for index, name in enumerate(("first", "second")):
        image = np.zeros((1, 3), dtype=np.uint8)
        image[0, index + 1] = 255
        write_image(tmp_path / f"{name}.png", image)
    (tmp_path / "broken.png").write_bytes(b"nope")
    paths = [tmp_path / "first.png", tmp_path / "broken.png", tmp_path / "second.png"]
    predictions, skipped = evaluation.predict_paths(argmax_model(), paths)
    assert [(p.path.name, p.class_name) for p in predictions] == [("first.png", "b"), ("second.png", "c")]
    assert predictions[0].probability == pytest.approx(np.exp(255) / (np.exp(255) + 2), rel=1e-6)
    assert [path.name for path, _ in skipped] == ["broken.png"]
