"""The whole Part 1 workflow on image folders, as the ``defi1 classify`` commands run it.

A data folder is either a class-per-folder dataset (split here into train / validation / test) or the output of
``defi1 data split``: ``train/``, ``val/`` and (optionally) ``test/``, each with one sub-folder per class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from defi1.classification import data as data_module
from defi1.classification.generator import ImagePathDataset
from defi1.errors import DataError


@dataclass
class FolderSplits:
    """Paths and labels per split (``{"train": (paths, labels), ...}``), class names, skipped files and leaks."""

    parts: dict
    class_names: list
    skipped: list = field(default_factory=list)
    leaks: list = field(default_factory=list)


def is_split_folder(data_dir) -> bool:
    """True when ``data_dir`` holds ``train/`` and ``val/`` sub-folders (a ``defi1 data split`` output)."""
    data_dir = Path(data_dir)
    return (data_dir / "train").is_dir() and (data_dir / "val").is_dir()


def load_folder_splits(data_dir, *, test_size=0.25, val_size=0.2, seed=42, class_names=None) -> FolderSplits:
    """Read a data folder (see the module docstring) into train / val / test paths and labels.

    ``class_names`` fixes the classes and their order (a trained model's); a dataset whose class folders differ from
    them raises :class:`DataError` naming both lists.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such folder (expected a class-per-folder dataset or a "
                                f"train/ val/ test/ split of one)")
    if is_split_folder(data_dir):
        found = {}
        skipped = []
        names = class_names or data_module.scan_class_folders(data_dir / "train", check_images=False).class_names
        for part in data_module.SPLIT_NAMES:
            if not (data_dir / part).is_dir():
                continue
            _check_class_folders(data_dir / part, names)
            dataset = data_module.scan_class_folders(data_dir / part, class_names=names)
            found[part] = (dataset.paths, dataset.labels)
            skipped += dataset.skipped
        split = data_module.Split(train=found["train"], val=found["val"],
                                  test=found.get("test", ([], found["train"][1][:0])))
        parts = {name: part for name, part in split.parts().items() if name in found}
        return FolderSplits(parts=parts, class_names=list(names), skipped=skipped,
                            leaks=data_module.find_leaks(split))
    if class_names is not None:
        _check_class_folders(data_dir, class_names)
    dataset = data_module.scan_class_folders(data_dir, class_names=class_names)
    split = data_module.split_dataset(dataset.paths, dataset.labels, test_size=test_size, val_size=val_size,
                                      seed=seed, class_names=dataset.class_names)
    parts = {name: part for name, part in split.parts().items() if len(part[1])}
    return FolderSplits(parts=parts, class_names=dataset.class_names, skipped=dataset.skipped,
                        leaks=data_module.find_leaks(split))


def _check_class_folders(folder, class_names):
    present = sorted(entry.name for entry in Path(folder).iterdir()
                     if entry.is_dir() and not entry.name.startswith("."))
    if sorted(class_names) != present:
        raise DataError(f"{folder}: class folders {present} do not match the model's {len(class_names)} classes "
                        f"{list(class_names)}")


def make_datasets(splits: FolderSplits, *, image_size, batch_size=32, preprocessing="none", color_mode="rgb",
                  augment=False, workers=1, seed=42) -> dict:
    """One :class:`ImagePathDataset` per split; the training one shuffles every epoch (and augments if asked)."""
    return {name: ImagePathDataset(paths, labels, batch_size=batch_size, image_size=image_size,
                                   preprocessing=preprocessing, color_mode=color_mode, shuffle=name == "train",
                                   augment=augment and name == "train", seed=seed, workers=workers)
            for name, (paths, labels) in splits.parts.items()}


def train_from_folder(data_dir, *, model_name, run_dir, image_size=None, color_mode="rgb", epochs=20,
                      batch_size=32, learning_rate=1e-3, weights="imagenet", fine_tune_epochs=0, fine_tune_layers=20,
                      fine_tune_learning_rate=1e-5, augment=False, workers=1, resume=False, test_size=0.25,
                      val_size=0.2, seed=42, early_stopping_patience=10, verbose=1) -> dict:
    """Train ``model_name`` (see :data:`defi1.classification.catalog.MODEL_NAMES`) on a data folder.

    Transfer models (backbones) train in two phases when ``fine_tune_epochs > 0``
    (:func:`defi1.classification.training.train_transfer_classifier`); ``epochs`` is then the head phase. The model
    chosen on validation is copied to ``run_dir/model.keras`` and evaluated: ``run_dir/evaluation/`` receives
    metrics, the confusion matrix and learning curves. A new run never replaces an earlier one: when ``run_dir``
    holds one, the run goes to ``run_dir2``, ``run_dir3`` ... (:func:`defi1.runs.new_run_dir`); ``resume=True``
    continues the run in ``run_dir`` itself. Returns the metrics plus ``run_dir`` (where the run went),
    ``model_path``, ``skipped``, ``leaks``.
    """
    import keras

    from defi1.classification import evaluation, models, training
    from defi1.files import atomic_copy, load_keras_model, output_dir_for
    from defi1.runs import new_run_dir

    if not resume:
        run_dir = new_run_dir(run_dir)
    with output_dir_for(run_dir) as run_dir:  # a run that fails before writing leaves no empty folder
        keras.utils.set_random_seed(seed)
        splits = load_folder_splits(data_dir, test_size=test_size, val_size=val_size, seed=seed)
        transfer = model_name in models.BACKBONES
        if image_size is None:
            image_size = 224 if transfer else 32
        if transfer:
            color_mode = "rgb"
        channels = 1 if color_mode == "grayscale" else 3
        model = models.build_classifier(model_name, input_shape=(image_size, image_size, channels),
                                        num_classes=len(splits.class_names), class_names=splits.class_names,
                                        weights=weights)
        preprocessing = models.classifier_info(model)["preprocessing"]
        datasets = make_datasets(splits, image_size=(image_size, image_size), batch_size=batch_size,
                                 preprocessing=preprocessing, color_mode=color_mode, augment=augment, workers=workers,
                                 seed=seed)
        options = dict(early_stopping_patience=early_stopping_patience, verbose=verbose,
                       num_classes=len(splits.class_names))
        if transfer:
            phases = training.train_transfer_classifier(
                model, datasets["train"], datasets["val"], run_dir=run_dir, head_epochs=epochs,
                fine_tune_epochs=fine_tune_epochs, fine_tune_layers=fine_tune_layers, head_learning_rate=learning_rate,
                fine_tune_learning_rate=fine_tune_learning_rate, resume=resume, **options)
            best_path = phases["best_path"]
            histories = {phase: result.history for phase, result in phases.items()
                         if phase in ("head", "fine_tune") and result is not None}
        else:
            result = training.train_classifier(model, datasets["train"], datasets["val"], run_dir=run_dir / "train",
                                               epochs=epochs, learning_rate=learning_rate, resume=resume, **options)
            best_path = result.best_path
            histories = {model_name: result.history}
        model_path = atomic_copy(best_path, run_dir / "model.keras")
        best = load_keras_model(model_path)
        report_split = "test" if "test" in datasets else "val"
        metrics = evaluation.evaluate_classifier(best, datasets, class_names=splits.class_names,
                                                 out_dir=run_dir / "evaluation", report_split=report_split,
                                                 histories=histories)
        metrics.update(run_dir=str(run_dir), model_path=str(model_path),
                       skipped=[(str(path), reason) for path, reason in splits.skipped],
                       leaks=[str(leak) for leak in splits.leaks])
        return metrics


def evaluate_saved_model(model_path, data_dir, *, out_dir=None, batch_size=32, test_size=0.25, val_size=0.2,
                         seed=42, workers=1) -> dict:
    """Evaluate a saved classifier on a data folder: accuracy per split side by side, and the confusion matrix and
    per-class report on the test split (or the only split for a plain class folder evaluated whole).

    A plain class-per-folder dataset is evaluated whole as ``"test"`` (``test_size`` etc. are not used then).
    Raises :class:`DataError` when the data's classes are not the model's.
    """
    from defi1.classification import evaluation, models
    from defi1.files import load_keras_model

    model_path = Path(model_path)
    model = load_keras_model(model_path)
    info = models.classifier_info(model)
    data_dir = Path(data_dir)
    if is_split_folder(data_dir):
        splits = load_folder_splits(data_dir, class_names=info["class_names"])
    else:
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{data_dir}: no such folder (expected a class-per-folder dataset)")
        present = sorted(entry.name for entry in data_dir.iterdir() if entry.is_dir())
        if len(present) != info["num_classes"]:
            raise DataError(f"model {model_path} predicts {info['num_classes']} classes but {data_dir} has "
                            f"{len(present)} class folders {present}")
        _check_class_folders(data_dir, info["class_names"])
        dataset = data_module.scan_class_folders(data_dir, class_names=info["class_names"])
        splits = FolderSplits(parts={"test": (dataset.paths, dataset.labels)}, class_names=info["class_names"],
                              skipped=dataset.skipped)
    datasets = make_datasets(splits, image_size=info["image_size"], batch_size=batch_size,
                             preprocessing=info["preprocessing"], color_mode=info["color_mode"], workers=workers)
    report_split = "test" if "test" in datasets else "val"
    metrics = evaluation.evaluate_classifier(model, datasets, class_names=info["class_names"], out_dir=out_dir,
                                             report_split=report_split)
    metrics.update(skipped=[(str(path), reason) for path, reason in splits.skipped],
                   leaks=[str(leak) for leak in splits.leaks])
    return metrics


def classify_images(model_path, path, *, batch_size=32) -> tuple[list, list]:
    """``defi1 classify predict`` as a function: classify an image file, or every image under a folder (recursively,
    in name order), with a saved classifier.

    Returns ``(predictions, skipped)``: :class:`~defi1.classification.evaluation.Prediction` objects, and
    ``(path, reason)`` for the images that cannot be decoded and the files that are not images (unknown extension;
    hidden files are ignored). Raises ``FileNotFoundError`` for a missing model, file or folder and for a folder
    without any image, and :class:`~defi1.errors.ImageReadError` naming a single image that cannot be read.
    """
    from defi1.classification.evaluation import predict_paths
    from defi1.classification.generator import load_image
    from defi1.files import load_keras_model
    from defi1.images import is_image_path

    model_path, path = Path(model_path), Path(path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file (expected a .keras file)")
    if path.is_dir():
        files = sorted(entry for entry in path.rglob("*") if entry.is_file())
        paths = [entry for entry in files if is_image_path(entry)]
        not_images = [entry for entry in files if not is_image_path(entry) and not entry.name.startswith(".")]
        if not paths:
            raise FileNotFoundError(f"{path}: no image file in this folder")
    elif path.is_file():
        paths, not_images = [path], []
    else:
        raise FileNotFoundError(f"{path}: no such image file or folder")
    model = load_keras_model(model_path)
    if len(paths) == 1:
        load_image(paths[0])  # a single image that cannot be read is an error naming it
    predictions, skipped = predict_paths(model, paths, batch_size=batch_size, progress=len(paths) > 64)
    return predictions, skipped + [(entry, "not an image file (unknown extension)") for entry in not_images]
