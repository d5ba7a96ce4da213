"""Figures of the localisation part: precision-recall curves, a gallery of ground truth vs predictions, and the
course's three IoU examples, and the loss curves of a training run. Every figure can be saved as PNG; the matplotlib
backend is never forced (:mod:`defi1.figures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defi1 import figures
from defi1.boxes import box_iou
from defi1.figures import save_figure

# The course's examples of a poor, a good and an excellent localisation: (reference box, predicted box), xyxy pixels.
# Their IoU (defi1.boxes.box_iou) is 0.4034, 0.7330 and 0.9264 to four decimals.
IOU_EXAMPLES = (
    ("poor", (40, 40, 200, 160), (88, 60, 250, 182)),
    ("good", (40, 40, 170, 137), (56, 40, 190, 141)),
    ("excellent", (40, 40, 194, 155), (44, 44, 195, 156)),
)

GROUND_TRUTH_COLOUR = "#2ca02c"
PREDICTION_COLOUR = "#d62728"


def _save(figure, path):
    """Write ``figure`` to ``path`` when one is given, leaving it open (the caller returns it for display)."""
    if path is not None:
        save_figure(figure, path, close=False)


def iou_examples() -> list:
    """``[(label, box_a, box_b, iou)]`` for the three course examples (boxes xyxy pixels)."""
    return [(label, first, second, float(box_iou([first], [second])[0, 0])) for label, first, second in IOU_EXAMPLES]


def draw_iou_examples(path=None, *, image=None):
    """Draw the course's three overlaps, poor (IoU ≈ 0.40), good (≈ 0.73) and excellent (≈ 0.93), side by side.

    Args:
        path: where to save the PNG (optional). image: an optional RGB picture drawn under the boxes (its top-left
            240×200 pixels are shown; default a plain grey panel).
    Returns:
        ``(figure, examples)`` with ``examples`` as :func:`iou_examples` gives them.
    """
    pyplot = figures.pyplot()
    from matplotlib.patches import Rectangle

    examples = iou_examples()
    figure, axes = pyplot.subplots(1, len(examples), figsize=(4 * len(examples), 3.6))
    for axis, (label, first, second, iou) in zip(axes, examples):
        if image is not None:
            axis.imshow(np.asarray(image)[:200, :260])
        else:
            axis.imshow(np.full((200, 260, 3), 235, np.uint8))
        for box, colour, name in ((first, GROUND_TRUTH_COLOUR, "ground truth"), (second, PREDICTION_COLOUR,
                                                                                   "prediction")):
            axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, linewidth=2.5,
                                     edgecolor=colour, label=name))
        axis.set_title(f"{label}: IoU = {iou:.4f}")
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    return figure, examples


def plot_pr_curves(metrics: dict, path=None, *, title=None):
    """Per-class precision-recall curves at IoU 0.5 (COCO's 101-point interpolation) from
    :func:`defi1.detection.metrics.evaluate_detections`' ``pr_curves``, with each class's AP50 in the legend.
    Returns the figure; saves a PNG when ``path`` is given."""
    pyplot = figures.pyplot()
    curves = metrics.get("pr_curves", {})
    recall = np.linspace(0.0, 1.0, 101)
    figure, axis = pyplot.subplots(figsize=(6, 5))
    for name, precision in curves.items():
        entry = metrics.get("per_class", {}).get(name, {})
        ap = entry.get("ap50")
        axis.plot(recall, precision, linewidth=1.5, label=f"{name} (AP50 {ap:.3f})" if ap is not None else name)
    if len(curves) > 1:
        mean_precision = np.mean(np.asarray(list(curves.values())), axis=0)
        axis.plot(recall, mean_precision, color="black", linewidth=2.5,
                  label=f"all classes (mAP50 {metrics.get('map50', float('nan')):.3f})")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title(title or "Precision-recall at IoU 0.5")
    axis.grid(alpha=0.3)
    if curves:
        axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    return figure


def draw_detection_gallery(images, ground_truths, predictions, path=None, *, class_names=None, columns=3,
                           score_threshold=0.25, titles=None):
    """A grid of images with ground-truth boxes (green) and predicted boxes (red, with class and score).

    Args:
        images: RGB ``uint8`` arrays. ground_truths: per image ``(boxes (N, 4) xyxy pixels, class_ids (N,))``.
        predictions: per image ``(boxes (K, 4) xyxy pixels, scores (K,), class_ids (K,))`` (or None).
        class_names: names for the labels. score_threshold: predictions below it are not drawn.
    Returns the figure; saves a PNG when ``path`` is given.
    """
    pyplot = figures.pyplot()
    from matplotlib.patches import Rectangle

    count = len(images)
    if count == 0:
        raise ValueError("draw_detection_gallery needs at least one image")
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    figure, axes = pyplot.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)

    def name(class_id):
        return class_names[class_id] if class_names is not None and class_id < len(class_names) else str(class_id)

    for index, axis in enumerate(axes.reshape(-1)):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= count:
            axis.axis("off")
            continue
        axis.imshow(images[index])
        boxes, class_ids = ground_truths[index][:2]
        for box, class_id in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(class_ids).reshape(-1)):
            axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, linewidth=2,
                                     edgecolor=GROUND_TRUTH_COLOUR))
        if predictions is not None and predictions[index] is not None:
            boxes, scores, class_ids = predictions[index]
            for box, score, class_id in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1),
                                            np.asarray(class_ids).reshape(-1)):
                if score < score_threshold:
                    continue
                axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                                         linewidth=1.5, linestyle="--", edgecolor=PREDICTION_COLOUR))
                axis.text(box[0], box[1], f"{name(int(class_id))} {score:.2f}", color="white", fontsize=7,
                          verticalalignment="bottom", bbox={"facecolor": PREDICTION_COLOUR, "alpha": 0.8, "pad": 1,
                                                           "linewidth": 0})
        if titles is not None:
            axis.set_title(titles[index], fontsize=9)
    figure.suptitle("ground truth (green) vs predictions (red, dashed)", fontsize=10)
    figure.tight_layout()
    _save(figure, path)
    return figure


def gallery_from_prediction_files(pred_dir, data_yaml, path=None, *, split="val", num_images=6, seed=0,
                                  score_threshold=0.25):
    """:func:`draw_detection_gallery` for ``num_images`` images of a split (a seeded choice) and the prediction
    files of ``pred_dir`` (as read by :func:`defi1.detection.metrics.evaluate_prediction_files`)."""
    from defi1.detection.formats.loader import load_dataset
    from defi1.detection.labels import load_ground_truth
    from defi1.detection.metrics import find_prediction_file, read_prediction_file
    from defi1.images import read_image

    config = load_dataset(data_yaml)
    samples = config.require_samples(split)
    chosen = np.sort(np.random.default_rng(seed).choice(len(samples), size=min(num_images, len(samples)),
                                                        replace=False))
    images, truths, predictions, titles = [], [], [], []
    for index in chosen:
        sample = samples[index]
        image = read_image(sample.image_path)
        size = (image.shape[1], image.shape[0])
        images.append(image)
        truths.append(load_ground_truth(sample, size, num_classes=config.num_classes))
        prediction_file = find_prediction_file(pred_dir, sample)
        predictions.append(read_prediction_file(prediction_file, size) if prediction_file is not None else None)
        titles.append(sample.image_path.name)
    return draw_detection_gallery(images, truths, predictions, path, class_names=config.names,
                                  score_threshold=score_threshold, titles=titles)


def save_pr_curves(metrics: dict, path, *, title=None) -> Path:
    """:func:`plot_pr_curves` written to ``path`` (PNG) and closed, for scripts; returns the path."""
    figure = plot_pr_curves(metrics, path, title=title)
    figures.pyplot().close(figure)
    return Path(path)


def save_gallery(image_paths, ground_truths, predictions, path, *, class_names=None, columns=3,
                 score_threshold=0.25, max_images=9) -> Path:
    """:func:`draw_detection_gallery` for image files (the first ``max_images``), written to ``path`` (PNG) and
    closed; returns the path. Boxes as :func:`draw_detection_gallery` takes them, in each image's pixels."""
    from defi1.images import read_image

    count = min(len(image_paths), max_images)
    images = [read_image(image_path) for image_path in list(image_paths)[:count]]
    figure = draw_detection_gallery(images, list(ground_truths)[:count],
                                    None if predictions is None else list(predictions)[:count], path,
                                    class_names=class_names, columns=columns, score_threshold=score_threshold,
                                    titles=[Path(image_path).name for image_path in list(image_paths)[:count]])
    figures.pyplot().close(figure)
    return Path(path)


def save_loss_curves(history: dict, path, *, unfreeze_epoch=0) -> Path:
    """Plot a training run's curves to a PNG: the training and validation loss per epoch (log scale, a line where
    the backbone is unfrozen) and, beside them when the run measured it, the validation map50 and map50-95.

    ``history``: ``{"epoch": [0, 1, ...], "loss": [...], "val_loss": [...], "val_map50": [...],
    "val_map50_95": [...]}`` as read from a training log (:func:`defi1.runs.read_csv_history`)."""
    epochs = np.asarray(history["epoch"]) + 1
    with_map = any(np.isfinite(history.get(key, [np.nan])).any() for key in ("val_map50", "val_map50_95"))
    figure, axes = figures.pyplot().subplots(1, 2 if with_map else 1, figsize=(12 if with_map else 7, 4),
                                             squeeze=False)
    axis = axes[0, 0]
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        if key in history:
            axis.plot(epochs, history[key], marker="o", markersize=3, label=label)
    axis.set_ylabel("YOLO loss")
    axis.set_yscale("log")
    if with_map:
        map_axis = axes[0, 1]
        for key, label in (("val_map50", "validation map50"), ("val_map50_95", "validation map50-95")):
            if key in history:
                map_axis.plot(epochs, history[key], marker="o", markersize=3, label=label)
        map_axis.set_ylabel("mAP")
        map_axis.set_ylim(0, 1)
    for axis in axes.reshape(-1):
        if 0 < unfreeze_epoch < epochs.max():
            axis.axvline(unfreeze_epoch + 0.5, color="grey", linestyle="--", label="backbone unfrozen")
        axis.set_xlabel("epoch")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path, dpi=100, tight=False)
