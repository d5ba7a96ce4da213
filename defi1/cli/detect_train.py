"""``defi1 detect train`` and ``defi1 detect evaluate``: parse arguments, call :mod:`defi1.detection.training` and
:mod:`defi1.detection.evaluation`, print where the results are."""

from __future__ import annotations

import argparse

from defi1.choices import BEST_METRICS, BOX_LOSSES, BOX_WEIGHTINGS, ENGINE_CHOICES, LEARNING_RATE_SCHEDULES


def register(subparsers):
    train = subparsers.add_parser(
        "train", help="Train a YOLOv3 detector on a YOLO-format dataset (two stages: frozen backbone, then all)",
        description="Train YOLOv3 or tiny-YOLOv3 on a dataset. Without --weights the measured from-scratch recipe "
                    "is the default (k-means anchors, warm-up and cosine learning rate 2e-3, EMA, extra positive "
                    "anchors, light augmentation); with --weights stage 1 trains with the backbone frozen for "
                    "--freeze-epochs epochs, stage 2 trains every layer at a lower learning rate. Every epoch ends "
                    "with the validation map50 and map50-95. Writes best.keras (weights only), last.keras "
                    "(resumable), state.json, training_log.csv and loss_curves.png into --out, or into OUT2, OUT3 "
                    "... when OUT holds an earlier run. 'auto' values: the recipe from scratch, YOLOv3's own "
                    "with --weights.")
    train.add_argument("--data", required=True,
                       help="dataset YAML (train and val splits, names), or a Pascal VOC or COCO dataset with splits; "
                            "checked once before the first epoch (unreadable images left out, listed)")
    train.add_argument("--model", default="yolov3-tiny",
                       help="yolov3, yolov3-tiny, a darknet .cfg file or a .keras model (default: yolov3-tiny)")
    train.add_argument("--weights", default=None,
                       help="initial weights: darknet .weights (COCO weights load all layers but the heads; "
                            "darknet53.conv.74 loads the backbone), a .keras model, or none (default)")
    train.add_argument("--input-size", type=int, default=416, help="network input side, multiple of 32 (416)")
    train.add_argument("--epochs", type=int, default=50, help="total epochs, both stages (50)")
    train.add_argument("--freeze-epochs", type=int, default=None,
                       help="epochs with the backbone frozen (default: 3 with --weights, 0 without)")
    train.add_argument("--batch-size", type=int, default=8, help="images per batch (8)")
    train.add_argument("--learning-rate", type=_auto_float, default="auto",
                       help="stage 1 learning rate (auto: 2e-3 from scratch, 1e-3 with --weights)")
    train.add_argument("--fine-tune-learning-rate", type=float, default=1e-3,
                       help="stage 2 learning rate, when there is a stage 1 (1e-3)")
    train.add_argument("--out", default="runs/detect/train",
                       help="run folder (runs/detect/train; one holding an earlier run becomes train2, train3 ...)")
    train.add_argument("--exist-ok", action="store_true",
                       help="write into --out even if it holds an earlier run (that run's files are replaced)")
    train.add_argument("--resume", action="store_true",
                       help="continue from OUT/last.keras at the next epoch (same --data, --model, --input-size)")
    train.add_argument("--best-metric", choices=tuple(BEST_METRICS), default="map50-95",
                       help="what best.keras is chosen on (validation map50-95)")
    train.add_argument("--no-val-map", action="store_true",
                       help="skip the validation mAP after each epoch (best.keras then chosen on val_loss)")
    train.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPUs with tensor cores)")
    train.add_argument("--multi-scale", nargs="?", const="320,608", default=None, metavar="MIN,MAX",
                       help="each batch at a random side from MIN to MAX in steps of 32 (320,608 when no range)")
    train.add_argument("--distribute", action="store_true",
                       help="data-parallel training on all visible devices (TF MirroredStrategy / JAX DataParallel)")
    train.add_argument("--no-augment", action="store_true", help="train without data augmentation")
    for flag, help_text in AUGMENTATION_FLAGS.items():
        train.add_argument(flag, type=float, default=None, help=help_text)
    train.add_argument("--repeat", type=int, default=1, help="passes over the training images per epoch (1)")
    train.add_argument("--anchors", choices=("auto", "default", "kmeans"), default="auto",
                       help="COCO anchors (default) or k-means anchors of the training boxes (built-in models; "
                            "auto: k-means from scratch, COCO's with --weights)")
    train.add_argument("--schedule", choices=("auto",) + LEARNING_RATE_SCHEDULES, default="auto",
                       help="learning rate: cut 10x when validation stalls (plateau), or warm-up and cosine decay to "
                            "the end of the stage or of --time-limit (cosine; auto: cosine from scratch or with "
                            "--time-limit, plateau otherwise)")
    train.add_argument("--warmup-epochs", type=_auto_float, default="auto",
                       help="cosine schedule's linear warm-up in epochs (auto: 1 from scratch, 0 with --weights)")
    train.add_argument("--final-lr-fraction", type=float, default=0.01,
                       help="cosine schedule's last rate, a fraction of the stage's (0.01)")
    train.add_argument("--ema", type=_auto_off_float, default="auto", metavar="MOMENTUM",
                       help="validate and save a moving average of the weights, e.g. 0.99; off (auto: 0.99 from "
                            "scratch, off with --weights)")
    train.add_argument("--batchnorm-momentum", type=_auto_off_float, default="auto",
                       help="momentum of the batch norms' moving statistics; off: the model's own (auto: 0.95 from "
                            "scratch, off with --weights)")
    train.add_argument("--assign-threshold", type=_auto_float, default="auto",
                       help="anchors whose shape IoU with a box exceeds this also learn it (darknet iou_thresh; "
                            "1.0: YOLOv3's best anchor only; auto: 0.213 from scratch, 1.0 with --weights)")
    train.add_argument("--box-weighting", choices=BOX_WEIGHTINGS, default="darknet",
                       help="weight of the loss's box terms: darknet's 2 - w*h (small boxes count up to twice as "
                            "much as one filling the image) or uniform (darknet)")
    train.add_argument("--box-loss", choices=BOX_LOSSES, default="darknet",
                       help="the loss's box term: darknet's centre cross-entropy and log-size squared error, or "
                            "ciou: 1 - complete IoU of the predicted box (darknet)")
    train.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                       help="stop after this many minutes of training (the last epoch completes and is saved)")
    train.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                       help="XLA compilation of the training step (auto: on accelerators only)")
    train.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs, 0: off (10)")
    train.add_argument("--reduce-lr-patience", type=int, default=3,
                       help="plateau schedule: epochs without improvement before the rate is cut, 0: off (3)")
    train.add_argument("--reduce-lr-factor", type=float, default=0.1, help="plateau schedule: the cut (0.1)")
    train.add_argument("--max-boxes", type=int, default=100, help="ground-truth boxes per image kept (100)")
    train.add_argument("--steps-per-epoch", type=int, default=None, help="batches per epoch (all of the split)")
    train.add_argument("--workers", type=int, default=1, help="parallel batch loaders (1)")
    train.add_argument("--multiprocessing", action="store_true", help="load batches in processes, not threads")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    train.add_argument("--progress", type=int, choices=(0, 1, 2), default=None,
                       help="Keras progress: 0 silent, 1 progress bar, 2 one line an epoch (default: bar)")
    train.set_defaults(handler=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="mAP of a model (--model) or of prediction files (--pred) on a dataset split",
        description="Evaluate detections against a dataset split: writes metrics.json (map50, map50_voc07, "
                    "map50_95, per_class), pr_curves.png and gallery.png, and prints the table.")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a .keras detector to run on the split")
    source.add_argument("--pred", help="a folder of prediction files (class cx cy w h confidence, normalised)")
    evaluate.add_argument("--data", required=True,
                          help="dataset YAML, or any dataset 'defi1 data check' reads (Pascal VOC, COCO ...)")
    evaluate.add_argument("--split", default=None, choices=("train", "val", "test"),
                          help="split to evaluate (default: test with --model, val with --pred)")
    evaluate.add_argument("--out", default=None,
                          help="report folder (default: runs/detect/evaluate with --model, the --pred folder)")
    evaluate.add_argument("--input-size", type=int, default=None, help="network input side (the model's own)")
    evaluate.add_argument("--conf-threshold", type=float, default=0.005, help="score threshold for mAP (0.005)")
    evaluate.add_argument("--iou-threshold", type=float, default=0.45, help="NMS IoU threshold (0.45)")
    evaluate.add_argument("--batch-size", type=int, default=8, help="images per forward pass (8)")
    evaluate.add_argument("--multi-label", action="store_true",
                          help="with --model: a box scores every class above the threshold (darknet's detector map), "
                               "instead of its best class only (the default, as predict shows)")
    evaluate.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                          help="with --model: inference engine (auto: keras on a GPU, else the fastest installed)")
    evaluate.set_defaults(handler=run_evaluate)


def multi_scale_sizes(text: str) -> tuple[int, ...]:
    """The value of --multi-scale, ``"MIN,MAX"``, as the sides ``MIN, MIN + 32, ..., MAX``."""
    from defi1.errors import ConfigError

    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--multi-scale {text}: expected MIN,MAX (two multiples of 32, e.g. 320,608)") from None
    if low <= 0 or low % 32 or high % 32 or high < low:
        raise ConfigError(f"--multi-scale {text}: expected MIN,MAX multiples of 32 with 0 < MIN <= MAX")
    return tuple(range(low, high + 1, 32))


#: ``--flag``: help, for each field of the augmentation (:class:`defi1.detection.augment.AugmentationSettings`).
AUGMENTATION_FLAGS = {
    "--scale-jitter": "zoom by a factor in 1 +- this (auto: 0.1 from scratch, 0.25 with --weights)",
    "--aspect-jitter": "aspect ratio changed by up to this fraction (auto: 0.1 from scratch, 0.3)",
    "--translate": "largest shift, a fraction of the side (auto: 0.05 from scratch, 0.1)",
    "--flip": "probability of a horizontal flip (0.5)",
    "--hue": "largest hue shift, a fraction of the circle (0.1)",
    "--saturation": "saturation scaled by up to this factor (1.5)",
    "--exposure": "brightness scaled by up to this factor (1.5)",
    "--min-box-size": "boxes smaller than this many pixels after augmentation are dropped (2)",
    "--min-visible-fraction": "boxes less visible than this after augmentation are dropped (0.25)",
}
#: ``TrainingSettings`` field: the ``argparse`` destination it is read from (same name when absent).
SETTINGS_FROM_ARGUMENTS = {"out_dir": "out", "learning_rate_schedule": "schedule", "ema_momentum": "ema",
                           "early_stopping_patience": "patience", "use_multiprocessing": "multiprocessing",
                           "final_learning_rate_fraction": "final_lr_fraction", "max_time_s": "time_limit",
                           "augment": "no_augment", "validation_map": "no_val_map",
                           "multi_scale_sizes": "multi_scale", "augmentation": "scale_jitter",
                           "verbose": "progress"}


def _auto_float(text):
    return text if text == "auto" else float(text)


def _auto_off_float(text):
    return None if text in ("off", "none", "0") else _auto_float(text)


def training_settings(arguments: argparse.Namespace):
    """The :class:`~defi1.detection.training_settings.TrainingSettings` that ``detect train``'s flags ask for (every
    field has a flag; ``SETTINGS_FROM_ARGUMENTS`` names those whose flag differs from the field)."""
    import dataclasses

    from defi1.detection.training_settings import TrainingSettings

    values = {field.name: getattr(arguments, SETTINGS_FROM_ARGUMENTS.get(field.name, field.name), None)
              for field in dataclasses.fields(TrainingSettings)}
    augmentation = {field: getattr(arguments, flag[2:].replace("-", "_")) for field, flag in (
        ("aspect_jitter", "--aspect-jitter"), ("translate", "--translate"), ("flip_probability", "--flip"),
        ("hue", "--hue"), ("saturation", "--saturation"), ("exposure", "--exposure"),
        ("min_box_size", "--min-box-size"), ("min_visible_fraction", "--min-visible-fraction"))}
    if arguments.scale_jitter is not None:
        augmentation["scale_range"] = (1 - arguments.scale_jitter, 1 + arguments.scale_jitter)
    augmentation = {key: value for key, value in augmentation.items() if value is not None}
    values.update(
        augment=not arguments.no_augment, validation_map=not arguments.no_val_map,
        augmentation=augmentation or "auto", multi_scale=arguments.multi_scale is not None,
        multi_scale_sizes=multi_scale_sizes(arguments.multi_scale or "320,608"),
        anchors={"default": None}.get(arguments.anchors, arguments.anchors),
        max_time_s=None if arguments.time_limit is None else arguments.time_limit * 60,
        verbose="auto" if arguments.progress is None else arguments.progress,
        jit_compile={"auto": "auto", "on": True, "off": False}[arguments.jit_compile])
    return TrainingSettings(**values)


def run_train(arguments: argparse.Namespace):
    from defi1.detection.training import train_detector

    result = train_detector(training_settings(arguments))
    print(f"Run folder: {result.out_dir}")
    print(f"Epochs completed: {result.epochs_completed}; {result.summary()}")
    print(f"Best model: {result.best_model_path}")
    print(f"Last checkpoint: {result.last_model_path}")
    print(f"Log: {result.log_path}")
    if result.curves_path:
        print(f"Curves: {result.curves_path}")
    return 0


def run_evaluate(arguments: argparse.Namespace):
    from defi1.detection.evaluation import evaluate_model, evaluate_predictions

    if arguments.model:
        out_dir = arguments.out or "runs/detect/evaluate"
        evaluate_model(arguments.model, arguments.data, arguments.split or "test", out_dir=out_dir,
                       input_size=arguments.input_size, conf_threshold=arguments.conf_threshold,
                       iou_threshold=arguments.iou_threshold, batch_size=arguments.batch_size, progress=True,
                       multi_label=arguments.multi_label, engine=arguments.engine)
    else:
        out_dir = arguments.out or arguments.pred
        evaluate_predictions(arguments.pred, arguments.data, arguments.split or "val", out_dir=out_dir,
                             progress=True)
    print(f"Report: {out_dir}/metrics.json, pr_curves.png, gallery.png")
    return 0
