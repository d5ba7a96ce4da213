"""Evaluating classifiers the course's way, and using them.

Train, validation and test accuracy side by side (choose the model on validation, confirm on test); the confusion
matrix and per-class precision / recall / F1 (scikit-learn); learning curves and confusion matrix as PNG files
(matplotlib, through :mod:`defi1.figures`). Data is ``(images, labels)`` arrays or a ``keras.utils.PyDataset`` yielding
``(images, labels)`` batches; labels are integer classes ``(num_images,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defi1.errors import ImageReadError
from defi1.figures import pyplot, save_figure
from defi1.files import atomic_write_json, atomic_write_text


def predict_labels(model, data, *, batch_size=64):
    """Run ``model`` over ``data``; return ``(true labels (N,), predicted labels (N,), probabilities (N, C))``."""
    true_parts, probability_parts = [], []
    if isinstance(data, tuple):
        all_images, all_labels = data
        batches = [(all_images[start:start + batch_size], all_labels[start:start + batch_size])
                   for start in range(0, len(all_labels), batch_size)]
    else:
        batches = (data[index] for index in range(len(data)))
    for batch_images, batch_labels in batches:
        probability_parts.append(np.asarray(model.predict_on_batch(np.asarray(batch_images, dtype=np.float32))))
        true_parts.append(np.asarray(batch_labels))
    if not probability_parts:
        num_classes = int(model.outputs[0].shape[-1])
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, num_classes), np.float32)
    probabilities = np.concatenate(probability_parts)
    return np.concatenate(true_parts).astype(np.int64), probabilities.argmax(axis=1), probabilities


def accuracy_table(model, splits: dict, *, batch_size=64) -> dict:
    """Accuracy of ``model`` on each named split (``{"train": data, "val": data, "test": data}``)."""
    from defi1.classification.training import check_model_matches_data

    accuracies = {}
    for name, data in splits.items():
        check_model_matches_data(model, data, source=f"the {name} data")
        true, predicted, _ = predict_labels(model, data, batch_size=batch_size)
        accuracies[name] = float(np.mean(true == predicted)) if len(true) else float("nan")
    return accuracies


def format_accuracy_table(accuracies: dict) -> str:
    """``Train accuracy = 0.9999`` lines, as printed in the course."""
    titles = {"train": "Train", "val": "Valid", "test": "Test"}
    return "\n".join(f"{titles.get(name, name):<5} accuracy = {value:.4f}" for name, value in accuracies.items())


def classification_details(true_labels, predicted_labels, class_names) -> dict:
    """Confusion matrix ``(C, C)`` (rows: true class, columns: predicted class) and scikit-learn's per-class report.

    Returns ``{"confusion_matrix": list of lists, "report": {class: {precision, recall, f1-score, support}, ...},
    "report_text": str}``.
    """
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(len(class_names)))
    matrix = confusion_matrix(true_labels, predicted_labels, labels=labels)
    report = classification_report(true_labels, predicted_labels, labels=labels, target_names=list(class_names),
                                   output_dict=True, zero_division=0)
    text = classification_report(true_labels, predicted_labels, labels=labels, target_names=list(class_names),
                                 digits=4, zero_division=0)
    return {"confusion_matrix": matrix.tolist(), "report": report, "report_text": text}


def plot_learning_curves(histories: dict, path, *, title="Learning curves") -> Path:
    """Loss and accuracy per epoch (training solid, validation dashed) for one or several runs, saved as PNG.

    ``histories`` maps a run name to a Keras-style history ``{"loss": [...], "val_loss": [...], "accuracy": [...],
    "val_accuracy": [...]}``.
    """
    plt = pyplot()
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index}"
        for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = history.get(prefix + metric)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    label = f"{name} {'validation' if prefix else 'train'}"
                    axis.plot(epochs, values, style, color=color, label=label)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_confusion_matrix(matrix, class_names, path, *, title="Confusion matrix") -> Path:
    """Confusion matrix (rows: true class, columns: predicted class) with counts in the cells, saved as PNG."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), labels=class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), labels=class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", fontsize=8,
                      color="white" if matrix[row, column] > threshold else "black")
    axis.set_title(title)
    return save_figure(figure, path)


def evaluate_classifier(model, splits: dict, *, class_names, out_dir=None, report_split="test", batch_size=64,
                        histories=None) -> dict:
    """The course's evaluation: accuracy on every split, and on ``report_split`` the confusion matrix and per-class
    report. With ``out_dir``: ``metrics.json``, ``classification_report.txt``, ``confusion_matrix.png`` and (with
    ``histories``, see :func:`plot_learning_curves`) ``learning_curves.png`` are written there.

    Returns ``{"train_accuracy": ..., "val_accuracy": ..., "test_accuracy": ..., "confusion_matrix": ...,
    "report": ..., "report_text": ...}`` (keys for the splits given).
    """
    accuracies = accuracy_table(model, splits, batch_size=batch_size)
    metrics = {f"{name}_accuracy": value for name, value in accuracies.items()}
    if report_split in splits:
        true, predicted, _ = predict_labels(model, splits[report_split], batch_size=batch_size)
        metrics.update(classification_details(true, predicted, class_names))
    if out_dir is not None:
        from defi1.files import ensure_output_dir

        out_dir = ensure_output_dir(out_dir)
        atomic_write_json(out_dir / "metrics.json", {key: value for key, value in metrics.items()
                                                    if key != "report_text"})
        if "report_text" in metrics:
            atomic_write_text(out_dir / "classification_report.txt", metrics["report_text"])
            plot_confusion_matrix(metrics["confusion_matrix"], class_names, out_dir / "confusion_matrix.png",
                                  title=f"Confusion matrix ({report_split})")
        if histories:
            plot_learning_curves(histories, out_dir / "learning_curves.png")
    return metrics


@dataclass
class Prediction:
    """The predicted class of one image: ``probabilities`` ``(num_classes,)``."""

    path: Path
    class_index: int
    class_name: str
    probability: float
    probabilities: np.ndarray


def predict_paths(model, paths, *, batch_size=32, progress=False):
    """Classify image files with a model built by :mod:`defi1.classification.models` (size, colour mode and
    preprocessing are read from the model). Returns ``(predictions, skipped)``: files that cannot be decoded are
    skipped and listed as ``(path, reason)``."""
    from defi1.classification.generator import load_image
    from defi1.classification.models import classifier_info, preprocess_function

    info = classifier_info(model)
    preprocess = preprocess_function(info["preprocessing"])
    paths = [Path(path) for path in paths]
    predictions, skipped = [], []
    iterator = range(0, len(paths), batch_size)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="classifying", unit="batch")
    for start in iterator:
        images, kept = [], []
        for path in paths[start:start + batch_size]:
            try:
                images.append(load_image(path, image_size=info["image_size"], color_mode=info["color_mode"]))
                kept.append(path)
            except ImageReadError as error:
                skipped.append((path, error.reason))
        if not images:
            continue
        probabilities = np.asarray(model.predict_on_batch(preprocess(np.stack(images).astype(np.float32))))
        for path, row in zip(kept, probabilities):
            index = int(row.argmax())
            predictions.append(Prediction(path, index, info["class_names"][index], float(row[index]), row))
    return predictions, skipped


def predictions_csv(predictions) -> str:
    """The text of a predictions CSV file: a ``path,class,probability`` header, then one row per
    :class:`Prediction` (probability to six decimals)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "class", "probability"])
    for prediction in predictions:
        writer.writerow([prediction.path, prediction.class_name, f"{prediction.probability:.6f}"])
    return buffer.getvalue()
