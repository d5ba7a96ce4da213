"""Evaluating a detector on a dataset split: run it, match its detections to the ground truth, write the report.

Two entry points, one report (``out_dir``)::

    metrics.json        # map50, map50_voc07, map50_95, precision, recall, per_class, pr_curves (defi1.detection.metrics)
    pr_curves.png       # precision-recall curve of each class at IoU 0.5
    gallery.png         # ground truth beside the detections, for the first images of the split

* :func:`evaluate_model`: a Keras model (or ``.keras`` file) through :class:`defi1.yolo.detector.Detector`;
* :func:`evaluate_predictions`: a folder of prediction files (``class cx cy w h confidence`` per line, normalised),
  e.g. written by ``defi1 detect predict --save-txt`` or by another tool.

Every box here is ``(N, 4)`` ``[x_min, y_min, x_max, y_max]`` in pixels of the original image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defi1.errors import ConfigError

#: Detections kept for mAP: a low threshold (darknet's ``detector map`` uses 0.005) so the PR curve is nearly whole.
EVALUATION_CONF_THRESHOLD = 0.005
#: Detections drawn in the gallery: the usual display threshold.
GALLERY_CONF_THRESHOLD = 0.25


def _progress(iterable, total, enabled, description):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=description, unit="batch")


def _detector_for(model_or_path, *, input_size, conf_threshold, iou_threshold, max_detections, multi_label,
                  engine="keras"):
    if callable(getattr(model_or_path, "detect", None)):
        return model_or_path  # a ready detector: used with its own thresholds and scoring
    from defi1.realtime.engines import load_detector

    return load_detector(model_or_path, input_size=input_size, conf_threshold=conf_threshold,
                         iou_threshold=iou_threshold, max_detections=max_detections, multi_label=multi_label,
                         engine=engine)


def detect_split(detector, samples, *, batch_size=8, progress=False):
    """Run ``detector`` on every sample; returns ``(images_sizes [(width, height)], detections [Detection])``."""
    from defi1.images import read_image

    sizes, detections = [], []
    batches = range(0, len(samples), batch_size)
    for start in _progress(batches, len(batches), progress, "detect"):
        images = [read_image(sample.image_path) for sample in samples[start:start + batch_size]]
        sizes.extend((image.shape[1], image.shape[0]) for image in images)
        detections.extend(detector.detect(images))
    return sizes, detections


def evaluate_split(detector, samples, class_names, *, batch_size=8, max_detections=100, progress=False):
    """Run ``detector`` on ``samples`` and score its detections against their labels (the core of
    :func:`evaluate_model`, also what training measures on the validation split after every epoch).

    Returns ``(metrics, ground_truths, detections)``: :func:`defi1.detection.metrics.evaluate_detections`' dict, and
    per sample its ``(boxes (N, 4) xyxy pixels, class_ids (N,), difficult (N,))`` and :class:`Detection`."""
    from defi1.detection.labels import load_ground_truth
    from defi1.detection.metrics import evaluate_detections

    sizes, detections = detect_split(detector, samples, batch_size=batch_size, progress=progress)
    ground_truths = [load_ground_truth(sample, size, num_classes=len(class_names), with_difficult=True)
                     for sample, size in zip(samples, sizes)]
    predictions = [(detection.boxes, detection.scores, detection.class_ids) for detection in detections]
    metrics = evaluate_detections(ground_truths, predictions, num_classes=len(class_names),
                                  class_names=class_names, max_detections=max_detections)
    return metrics, ground_truths, detections


def evaluate_model(model_or_path, data_yaml, split="test", *, out_dir=None, input_size=None,
                   conf_threshold=EVALUATION_CONF_THRESHOLD, iou_threshold=0.45, max_detections=100, batch_size=8,
                   gallery_size=8, progress=False, print_table=True, multi_label=False, engine="keras") -> dict:
    """mAP of a detector on one split of a YOLO dataset, with the report of the module docstring in ``out_dir``.

    Args:
        model_or_path: a defi1 YOLO ``keras.Model``, a ``.keras`` file, or a :class:`~defi1.yolo.detector.Detector`
            (any object with ``detect(images) -> [Detection]`` and ``class_names``).
        data_yaml: the dataset: its YAML, or any form :func:`defi1.detection.formats.load_dataset` reads.
            split: ``"train"``, ``"val"`` or ``"test"``.
        out_dir: where to write ``metrics.json``, the PR curves and the gallery (nothing written when ``None``).
        input_size: network input side (default: the one the model was trained for).
        conf_threshold, iou_threshold, max_detections: the detector's post-processing for the evaluation.
        gallery_size: images shown in the gallery.
        multi_label: score every class above the threshold for a box (darknet's ``detector map``), instead of the
            best class of each box (the default, what ``detect predict`` shows); a ready detector keeps its own.
        engine: for a model or a file, :func:`defi1.realtime.engines.load_detector`'s engine (``"auto"``: the
            fastest here); printed with the table.
    Returns:
        :func:`defi1.detection.metrics.evaluate_detections`' dictionary plus ``split``, ``data``, ``model``,
        ``multi_label`` and what :func:`defi1.results.record_results` records as provenance: ``dataset_fingerprint``
        (:func:`defi1.detection.labels.fingerprint_samples`), ``input_size`` (``[width, height]``) and
        ``thresholds``.
    Raises:
        ConfigError: the model and the dataset disagree on the number of classes.
    """
    from defi1.detection.labels import fingerprint_samples

    index = _load_labelled(data_yaml)
    samples = index.require_samples(split)
    detector = _detector_for(model_or_path, input_size=input_size, conf_threshold=conf_threshold,
                             iou_threshold=iou_threshold, max_detections=max_detections, multi_label=multi_label,
                             engine=engine)
    if print_table and getattr(detector, "engine_choice", None):
        from defi1.realtime.engines import describe_engine

        print(describe_engine(detector))
    model_classes = len(detector.class_names) if getattr(detector, "class_names", None) else None
    if model_classes is not None and model_classes != len(index.names):
        raise ConfigError(f"{data_yaml}: the dataset has {len(index.names)} classes but the model has "
                          f"{model_classes} ({', '.join(map(str, detector.class_names))})")
    metrics, ground_truths, detections = evaluate_split(detector, samples, index.names, batch_size=batch_size,
                                                        max_detections=max_detections, progress=progress)
    metrics.update(split=split, data=str(data_yaml),
                   model=str(model_or_path) if isinstance(model_or_path, (str, Path)) else detector_name(detector),
                   dataset_fingerprint=fingerprint_samples(index.names, samples),
                   input_size=list(detector.input_size) if hasattr(detector, "input_size") else None,
                   thresholds={"conf_threshold": getattr(detector, "conf_threshold", conf_threshold),
                               "iou_threshold": getattr(detector, "iou_threshold", iou_threshold)},
                   multi_label=bool(getattr(detector, "multi_label", multi_label)))
    if out_dir is not None:
        write_report(out_dir, metrics, samples=samples[:gallery_size], ground_truths=ground_truths[:gallery_size],
                     detections=detections[:gallery_size], class_names=index.names, print_table=print_table)
    return metrics


def _load_labelled(data):
    """The dataset through the one loader (:func:`defi1.detection.formats.load_dataset`); ConfigError when it does
    not name its classes."""
    from defi1.detection.formats.loader import load_dataset

    index = load_dataset(data)
    if not index.names:
        raise ConfigError(f"{data}: the dataset does not name its classes (give it a dataset YAML with names)")
    return index


def detector_name(detector) -> str:
    model = getattr(detector, "model", None)
    return getattr(model, "name", type(detector).__name__)


def evaluate_predictions(pred_dir, data_yaml, split="val", *, out_dir=None, max_detections=100, gallery_size=8,
                         progress=False, print_table=True) -> dict:
    """mAP of prediction files (``pred_dir/<image stem>.txt``, ``class cx cy w h confidence`` normalised) on one
    split; the report as :func:`evaluate_model` (``out_dir`` default: ``pred_dir``)."""
    from defi1.detection.labels import load_ground_truth
    from defi1.detection.metrics import evaluate_prediction_files, find_prediction_file, read_prediction_file
    from defi1.images import image_size

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: no such folder of prediction files")
    metrics = evaluate_prediction_files(pred_dir, data_yaml, split, max_detections=max_detections, progress=progress)
    out_dir = pred_dir if out_dir is None else out_dir
    index = _load_labelled(data_yaml)
    samples = index.require_samples(split)[:gallery_size]
    ground_truths, detections = [], []
    for sample in samples:
        size = image_size(sample.image_path)
        ground_truths.append(load_ground_truth(sample, size, num_classes=len(index.names), with_difficult=True))
        path = find_prediction_file(pred_dir, sample)
        boxes, scores, class_ids = (read_prediction_file(path, size) if path is not None
                                    else (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)))
        detections.append(_PlainDetection(boxes, scores, class_ids))
    write_report(out_dir, metrics, samples=samples, ground_truths=ground_truths, detections=detections,
                 class_names=index.names, print_table=print_table)
    return metrics


class _PlainDetection:
    """Detections read from a file, with the fields of :class:`defi1.yolo.detector.Detection`."""

    def __init__(self, boxes, scores, class_ids):
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        self.class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)


def write_report(out_dir, metrics, *, samples, ground_truths, detections, class_names, print_table=True) -> dict:
    """Write ``metrics.json`` (and print the table), ``pr_curves.png`` and ``gallery.png`` into ``out_dir``.
    Returns ``{"metrics": path, "pr_curves": path, "gallery": path}``."""
    from defi1.detection import plots
    from defi1.detection.metrics import write_metrics

    paths = {"metrics": write_metrics(out_dir, metrics, print_table=print_table)}
    out_dir = Path(out_dir)
    paths["pr_curves"] = plots.save_pr_curves(metrics, out_dir / "pr_curves.png")
    predictions = [(detection.boxes, detection.scores, detection.class_ids) for detection in detections]
    paths["gallery"] = plots.save_gallery([sample.image_path for sample in samples],
                                          [truth[:2] for truth in ground_truths], predictions, out_dir / "gallery.png",
                                          class_names=list(class_names), score_threshold=GALLERY_CONF_THRESHOLD,
                                          max_images=len(samples))
    return paths
