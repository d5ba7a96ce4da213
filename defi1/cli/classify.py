"""``defi1 classify train|evaluate|predict``: Part 1 image classifiers."""

from __future__ import annotations

from pathlib import Path


def register(subparsers):
    from defi1.classification.catalog import MODEL_NAMES

    parser = subparsers.add_parser(
        "train", help="train a classifier on an image folder (MLP, CNN or transfer learning)",
        description="Train on DATA_DIR: a class-per-folder dataset (split here, stratified) or a train/ val/ test/ "
                    "folder from 'defi1 data split'. RUN_DIR receives best.keras / last.keras checkpoints, "
                    "history.csv, model.keras (chosen on validation) and evaluation/ (metrics, confusion matrix, "
                    "learning curves); when RUN_DIR holds an earlier run, the new one goes to RUN_DIR2, RUN_DIR3 "
                    "... Ctrl-C keeps the best checkpoint; --resume continues the run in RUN_DIR.")
    parser.add_argument("data_dir", help="dataset folder")
    parser.add_argument("run_dir", help="output folder of the run (RUN_DIR2, RUN_DIR3 ... when it holds one)")
    parser.add_argument("--model", default="small_cnn", choices=MODEL_NAMES, help="model (default small_cnn)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side in pixels (default 224 for backbones, 32 otherwise)")
    parser.add_argument("--grayscale", action="store_true", help="one input channel (models trained from scratch)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs (the head phase for transfer models)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--weights", default="imagenet",
                        help="backbone weights: imagenet (default, downloaded once), none (random) or a file")
    parser.add_argument("--fine-tune-epochs", type=int, default=0,
                        help="epochs of phase 2 (top backbone layers unfrozen; transfer models only)")
    parser.add_argument("--fine-tune-layers", type=int, default=20, help="backbone layers unfrozen in phase 2")
    parser.add_argument("--fine-tune-learning-rate", type=float, default=1e-5)
    parser.add_argument("--augment", action="store_true", help="random shifts and brightness on training images")
    parser.add_argument("--patience", type=int, default=10, help="early stopping patience (epochs)")
    parser.add_argument("--workers", type=int, default=1, help="batch loading threads")
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--val-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in RUN_DIR")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress bars")
    parser.set_defaults(handler=train_command)

    parser = subparsers.add_parser(
        "evaluate", help="accuracy per split, confusion matrix and per-class report of a saved model",
        description="Evaluate MODEL (.keras) on DATA_DIR (a class-per-folder dataset, evaluated whole, or a "
                    "train/ val/ test/ split: accuracies side by side).")
    parser.add_argument("model", help="a .keras classifier")
    parser.add_argument("data_dir", help="dataset folder")
    parser.add_argument("--out", default=None, help="folder for metrics.json, confusion_matrix.png and the report")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="batch loading threads")
    parser.set_defaults(handler=evaluate_command)

    parser = subparsers.add_parser(
        "predict", help="classify an image or every image of a folder",
        description="Print 'path<TAB>class<TAB>probability' for an image or the images of a folder (recursive).")
    parser.add_argument("model", help="a .keras classifier")
    parser.add_argument("path", help="an image file or a folder of images")
    parser.add_argument("--out", default=None, help="also write the predictions to this CSV file")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.set_defaults(handler=predict_command)


def train_command(arguments):
    from defi1.classification.evaluation import format_accuracy_table
    from defi1.classification.pipeline import train_from_folder

    weights = None if arguments.weights.lower() == "none" else arguments.weights
    metrics = train_from_folder(
        arguments.data_dir, model_name=arguments.model, run_dir=arguments.run_dir, image_size=arguments.image_size,
        color_mode="grayscale" if arguments.grayscale else "rgb", epochs=arguments.epochs,
        batch_size=arguments.batch_size, learning_rate=arguments.learning_rate, weights=weights,
        fine_tune_epochs=arguments.fine_tune_epochs, fine_tune_layers=arguments.fine_tune_layers,
        fine_tune_learning_rate=arguments.fine_tune_learning_rate, augment=arguments.augment,
        workers=arguments.workers, resume=arguments.resume, test_size=arguments.test_size,
        val_size=arguments.val_size, seed=arguments.seed, early_stopping_patience=arguments.patience,
        verbose=0 if arguments.quiet else 1)
    _print_outcome(metrics)
    print(format_accuracy_table({name[:-len("_accuracy")]: value for name, value in metrics.items()
                                 if name.endswith("_accuracy")}))
    print(f"model: {metrics['model_path']}")
    print(f"evaluation: {Path(metrics['run_dir']) / 'evaluation'}")


def evaluate_command(arguments):
    from defi1.classification.evaluation import format_accuracy_table
    from defi1.classification.pipeline import evaluate_saved_model

    metrics = evaluate_saved_model(arguments.model, arguments.data_dir, out_dir=arguments.out,
                                   batch_size=arguments.batch_size, workers=arguments.workers)
    _print_outcome(metrics)
    print(format_accuracy_table({name[:-len("_accuracy")]: value for name, value in metrics.items()
                                 if name.endswith("_accuracy")}))
    if "report_text" in metrics:
        print(metrics["report_text"])
    if arguments.out:
        print(f"evaluation written to {arguments.out}")


def _print_outcome(metrics):
    for path, reason in metrics.get("skipped", []):
        print(f"skipped {path}: {reason}")
    for leak in metrics.get("leaks", []):
        print(f"leak: {leak}")


def predict_command(arguments):
    from defi1.classification.evaluation import predictions_csv
    from defi1.classification.pipeline import classify_images
    from defi1.files import atomic_write_text

    predictions, skipped = classify_images(arguments.model, arguments.path, batch_size=arguments.batch_size)
    for prediction in predictions:
        print(f"{prediction.path}\t{prediction.class_name}\t{prediction.probability:.4f}")
    for skipped_path, reason in skipped:
        print(f"skipped {skipped_path}: {reason}")
    print(f"{len(predictions)} image(s) classified, {len(skipped)} skipped")
    if arguments.out:
        atomic_write_text(arguments.out, predictions_csv(predictions))
        print(f"predictions written to {arguments.out}")
