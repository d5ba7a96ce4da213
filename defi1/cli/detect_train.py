"""``defi1 detect train`` and ``defi1 detect evaluate``: parse arguments, call :mod:`defi1.detection.training` and
:mod:`defi1.detection.evaluation`, print where the results are."""

from __future__ import annotations

import argparse


def register(subparsers):
    train = subparsers.add_parser(
        "train", help="Train a YOLOv3 detector on a YOLO-format dataset (two stages: frozen backbone, then all)",
        description="Train YOLOv3 or tiny-YOLOv3 on a dataset YAML. Stage 1 trains with the backbone frozen for "
                    "--freeze-epochs epochs, stage 2 trains every layer at a lower learning rate. Writes best.keras, "
                    "last.keras, training_log.csv and loss_curves.png into --out.")
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
                       help="epochs with the backbone frozen (default: 10 with --weights, 0 without)")
    train.add_argument("--batch-size", type=int, default=8, help="images per batch (8)")
    train.add_argument("--learning-rate", type=float, default=1e-3, help="stage 1 learning rate (1e-3)")
    train.add_argument("--fine-tune-learning-rate", type=float, default=1e-4,
                       help="stage 2 learning rate, when there is a stage 1 (1e-4)")
    train.add_argument("--out", default="runs/detect/train", help="run folder (runs/detect/train)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.keras at the next epoch")
    train.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPUs with tensor cores)")
    train.add_argument("--multi-scale", nargs="?", const="320,608", default=None, metavar="MIN,MAX",
                       help="each batch at a random side from MIN to MAX in steps of 32 (320,608 when no range)")
    train.add_argument("--distribute", action="store_true",
                       help="data-parallel training on all visible devices (TF MirroredStrategy / JAX DataParallel)")
    train.add_argument("--no-augment", action="store_true", help="train without data augmentation")
    train.add_argument("--anchors", choices=("default", "kmeans"), default="default",
                       help="default COCO anchors or k-means anchors of the training boxes (built-in models)")
    train.add_argument("--schedule", choices=("plateau", "cosine"), default="plateau",
                       help="learning rate: cut 10x when validation stalls (plateau, default), or warm-up and cosine "
                            "decay to the end of the stage or of --time-limit (cosine)")
    train.add_argument("--warmup-epochs", type=float, default=0.0, help="cosine schedule's linear warm-up (0)")
    train.add_argument("--ema", type=float, default=None, metavar="MOMENTUM",
                       help="validate and save a moving average of the weights, e.g. 0.99 (default: off)")
    train.add_argument("--assign-threshold", type=float, default=1.0,
                       help="anchors whose shape IoU with a box exceeds this also learn it (darknet iou_thresh; "
                            "1.0, YOLOv3's rule: the best anchor only)")
    train.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                       help="stop after this many minutes of training (the last epoch completes and is saved)")
    train.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                       help="XLA compilation of the training step (auto: on accelerators only)")
    train.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs, 0: off (10)")
    train.add_argument("--workers", type=int, default=1, help="parallel batch loaders (1)")
    train.add_argument("--multiprocessing", action="store_true", help="load batches in processes, not threads")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
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
    evaluate.add_argument("--engine", choices=("auto", "keras", "opencv", "onnxruntime"), default="auto",
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


def run_train(arguments: argparse.Namespace):
    from defi1.detection.training import TrainingSettings, train_detector

    settings = TrainingSettings(
        data=arguments.data, model=arguments.model, weights=arguments.weights, input_size=arguments.input_size,
        epochs=arguments.epochs, freeze_epochs=arguments.freeze_epochs, batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate, fine_tune_learning_rate=arguments.fine_tune_learning_rate,
        out_dir=arguments.out, resume=arguments.resume, mixed_precision=arguments.mixed_precision,
        multi_scale=arguments.multi_scale is not None,
        multi_scale_sizes=multi_scale_sizes(arguments.multi_scale or "320,608"), distribute=arguments.distribute,
        augment=not arguments.no_augment,
        anchors=None if arguments.anchors == "default" else arguments.anchors,
        early_stopping_patience=arguments.patience, workers=arguments.workers,
        use_multiprocessing=arguments.multiprocessing, seed=arguments.seed,
        learning_rate_schedule=arguments.schedule, warmup_epochs=arguments.warmup_epochs,
        ema_momentum=arguments.ema, assign_threshold=arguments.assign_threshold,
        max_time_s=None if arguments.time_limit is None else arguments.time_limit * 60,
        jit_compile={"auto": "auto", "on": True, "off": False}[arguments.jit_compile])
    result = train_detector(settings)
    print(f"Epochs completed: {result.epochs_completed}")
    print(f"Best model: {result.best_model_path}")
    print(f"Last checkpoint: {result.last_model_path}")
    print(f"Log: {result.log_path}")
    if result.curves_path:
        print(f"Loss curves: {result.curves_path}")
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
