"""Part 1 of ``defi1 demo``: the course's classification workflow on the built-in digits, offline.

Writes scikit-learn's digits as an image tree, scans and splits it (stratified train / validation / test, leakage
check), reads the images through the path pipeline, trains the course's "Model 2", its ReLU + Dropout variant and a
small CNN, chooses the model on validation accuracy and confirms it on the test set.
"""

from __future__ import annotations

import time
from pathlib import Path

from defi1.classification import data, datasets, evaluation, models, training
from defi1.files import atomic_write_json, atomic_write_text, ensure_output_dir

# name: (builder, image side, epochs (full), epochs (smoke), learning rate)
DEMO_MODELS = {
    "course_mlp": (models.build_course_mlp, 8, 50, 2, 3e-3),
    "dropout_mlp": (models.build_dropout_mlp, 8, 50, 2, 2e-3),
    "small_cnn": (models.build_small_cnn, 12, 30, 2, 2e-3),
}


def run_classification_demo(out_dir, *, smoke=False, seed=42, verbose=0) -> dict:
    """Run Part 1 on the built-in digits and write into ``out_dir``:

    ``digits/`` (the image tree), ``runs/<model>/`` (checkpoints and history of each model), ``metrics.json``,
    ``learning_curves.png``, ``confusion_matrix.png`` (test set, chosen model), ``classification_report.txt`` and
    ``report.md`` (a section for the run report).

    ``smoke=True`` uses 20 images per class and 2 epochs (seconds; the accuracies mean nothing). Returns
    ``{"models": {name: {"train_accuracy", "val_accuracy", "test_accuracy", "epochs", "seconds"}},
    "chosen_model" (also "model_name"), "train_accuracy", "val_accuracy", "test_accuracy" (of the chosen model),
    "<model>_<split>_accuracy" for every model, "model_path", "provenance" (keyword arguments of
    :func:`defi1.results.record_results`), "split_sizes", "leaks", "skipped", "smoke", "seconds"}``.
    """
    import keras

    started = time.perf_counter()
    out_dir = ensure_output_dir(out_dir)
    keras.utils.set_random_seed(seed)
    digits_dir = datasets.write_digits_tree(out_dir / "digits", max_per_class=20 if smoke else None)
    dataset = data.scan_class_folders(digits_dir)
    split = data.split_dataset(dataset.paths, dataset.labels, test_size=0.25, val_size=0.2, seed=seed,
                               class_names=dataset.class_names)
    leaks = data.find_leaks(split)
    arrays_by_side = {}
    results, histories, trained = {}, {}, {}
    for name, (builder, side, full_epochs, smoke_epochs, learning_rate) in DEMO_MODELS.items():
        if side not in arrays_by_side:
            arrays_by_side[side] = {part: (data.load_image_arrays(paths, image_size=(side, side),
                                                                  color_mode="grayscale"), labels)
                                    for part, (paths, labels) in split.parts().items()}
        arrays = arrays_by_side[side]
        model = builder(input_shape=(side, side, 1), num_classes=dataset.num_classes,
                        class_names=dataset.class_names)
        run_dir = out_dir / "runs" / name
        model_started = time.perf_counter()
        result = training.train_classifier(model, arrays["train"], arrays["val"], run_dir=run_dir,
                                           epochs=smoke_epochs if smoke else full_epochs,
                                           learning_rate=learning_rate, batch_size=32, early_stopping_patience=12,
                                           reduce_lr_patience=5, resume=True, verbose=verbose)
        best = result.best_model()
        accuracies = evaluation.accuracy_table(best, arrays)
        results[name] = {f"{part}_accuracy": value for part, value in accuracies.items()}
        results[name].update(epochs=result.epochs_completed, best_epoch=result.best_epoch,
                             seconds=round(time.perf_counter() - model_started, 1))
        histories[name] = result.history
        trained[name] = (best, arrays, result.best_path)
    chosen = max(results, key=lambda name: (results[name]["val_accuracy"], name == "small_cnn"))
    best_model, arrays, best_path = trained[chosen]
    details = evaluation.evaluate_classifier(best_model, arrays, class_names=dataset.class_names, out_dir=out_dir,
                                             histories=histories)
    summary = {
        "dataset": "digits",
        "smoke": bool(smoke),
        "models": results,
        "chosen_model": chosen,
        "model_name": chosen,
        "train_accuracy": results[chosen]["train_accuracy"],
        "val_accuracy": results[chosen]["val_accuracy"],
        "test_accuracy": results[chosen]["test_accuracy"],
        "model_path": str(best_path),
        "provenance": {"model_path": str(best_path), "split": "test", "input_size": DEMO_MODELS[chosen][1],
                       "dataset_fingerprint": data.split_fingerprint(*split.test, class_names=dataset.class_names,
                                                                     root=digits_dir)},
        "split_sizes": split.sizes(),
        "leaks": len(leaks),
        "skipped": len(dataset.skipped),
        "confusion_matrix": details["confusion_matrix"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    for name, row in results.items():  # flat numbers for the demo's summary table
        for part in ("train", "val", "test"):
            summary[f"{name}_{part}_accuracy"] = row[f"{part}_accuracy"]
    atomic_write_json(out_dir / "metrics.json", summary)
    atomic_write_text(out_dir / "report.md", _report(summary, details["report_text"]))
    return summary


def _report(summary, report_text) -> str:
    lines = [
        "## Part 1: classification (built-in digits)",
        "",
        f"Data: scikit-learn digits written as an image tree, split stratified with seed 42: "
        f"{summary['split_sizes']['train']} train, {summary['split_sizes']['val']} validation, "
        f"{summary['split_sizes']['test']} test images; {summary['leaks']} image(s) found in two splits."
        + (" Smoke run: 20 images per class, 2 epochs, accuracies not meaningful." if summary["smoke"] else ""),
        "",
        "| model | epochs | train accuracy | validation accuracy | test accuracy | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["models"].items():
        lines.append(f"| {name} | {row['epochs']} | {row['train_accuracy']:.4f} | {row['val_accuracy']:.4f} | "
                     f"{row['test_accuracy']:.4f} | {row['seconds']} |")
    lines += [
        "",
        f"Chosen on validation accuracy: **{summary['chosen_model']}**; confirmed on the test set: test accuracy "
        f"**{summary['test_accuracy']:.4f}**.",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "Per-class report (test set):",
        "",
        "```",
        report_text.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def demo_output_paths(out_dir) -> dict:
    """The files :func:`run_classification_demo` writes, by role."""
    out_dir = Path(out_dir)
    return {"metrics": out_dir / "metrics.json", "learning_curves": out_dir / "learning_curves.png",
            "confusion_matrix": out_dir / "confusion_matrix.png", "report": out_dir / "report.md",
            "classification_report": out_dir / "classification_report.txt"}
