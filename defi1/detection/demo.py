"""Part 2 of ``defi1 demo``: generate a small shapes dataset, train tiny-YOLOv3 on it, evaluate it on the test split.

Everything is offline and sized for a CPU: the full demo ends with a detector that visibly works (test map50 >= 0.7,
see its gallery) in about 5 minutes on 2 cores (benchmarks/RESULTS.md), the smoke version (CI) in well under one.
What makes it fast is what the from-scratch benchmark measured (:data:`~defi1.detection.training_settings.
FROM_SCRATCH_RECIPE`, the default from scratch), on a small input (96 px: the step is cheap) with batches of 16, and
shapes large enough for that input (a quarter to a half of the side, up to two an image). The trained ``.keras``
model is what Part 3's demo streams with.
"""

from __future__ import annotations

from dataclasses import dataclass

from defi1.files import ensure_output_dir


@dataclass(frozen=True)
class LocalisationDemoSettings:
    """Sizes of the demo (the defaults are the full demo; :data:`SMOKE_SETTINGS` is CI's).

    ``max_time_s`` bounds the training (the cosine schedule ends on its low rates at the limit, the last epoch
    completes); ``epochs`` is the upper bound when the machine is fast enough to finish them first."""

    num_train: int = 480
    num_val: int = 40
    num_test: int = 60
    image_size: int = 96
    input_size: int = 96
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 3e-3
    max_objects: int = 2
    min_size: float = 0.25
    max_size: float = 0.55
    max_time_s: float | None = 200.0
    seed: int = 0


SMOKE_SETTINGS = LocalisationDemoSettings(num_train=8, num_val=4, num_test=4, image_size=96, input_size=96, epochs=2,
                                          batch_size=4, max_time_s=None)


def run_localisation_demo(out_dir, *, smoke=False, settings: LocalisationDemoSettings | None = None,
                          verbose=2, log=print) -> dict:
    """Shapes dataset -> tiny-YOLOv3 trained from scratch -> mAP on the test split, PR curves and gallery.

    Args:
        out_dir: run folder: ``shapes/`` (the dataset), ``training/`` (checkpoints, log, curves; replaced by each
            run of the demo), ``evaluation/`` (``metrics.json``, ``pr_curves.png``, ``gallery.png``).
        smoke: the tiny CI settings (a few images, two epochs): checks the pipeline, not the accuracy.
        settings: explicit sizes (overrides ``smoke``).
    Returns:
        ``{"metrics": {map50, map50_95, map50_voc07, precision, recall, precision_at_best_f1, recall_at_best_f1,
        best_f1_confidence}, "model_path", "model_name", "dataset", "provenance" (keyword arguments of
        :func:`defi1.results.record_results`), "gallery", "pr_curves", "loss_curves", "data_yaml", "epochs"}``.
    """
    from defi1.detection.evaluation import evaluate_model
    from defi1.detection.shapes import ShapesSettings, generate_shapes_dataset
    from defi1.detection.training import TrainingSettings, train_detector

    settings = settings or (SMOKE_SETTINGS if smoke else LocalisationDemoSettings())
    # Smoke runs are two epochs: no warm-up to spend them in, nothing to average.
    recipe = {"warmup_epochs": 0.0, "ema_momentum": None} if smoke else {}
    out_dir = ensure_output_dir(out_dir)
    log(f"Generating {settings.num_train} + {settings.num_val} + {settings.num_test} shapes images")
    data_yaml = generate_shapes_dataset(
        out_dir / "shapes", num_images=settings.num_train, num_val=settings.num_val, num_test=settings.num_test,
        seed=settings.seed, image_size=settings.image_size, overwrite=True,
        settings=ShapesSettings(image_size=settings.image_size, max_objects=settings.max_objects,
                                min_size=settings.min_size, max_size=settings.max_size))
    training = train_detector(TrainingSettings(  # from scratch: the recipe, k-means anchors included
        data=data_yaml, model="yolov3-tiny", input_size=settings.input_size, epochs=settings.epochs,
        freeze_epochs=0, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        out_dir=out_dir / "training", exist_ok=True, seed=settings.seed, early_stopping_patience=0,
        max_time_s=settings.max_time_s, verbose=verbose, **recipe), log=log)
    evaluation_dir = out_dir / "evaluation"
    metrics = evaluate_model(training.best_model_path, data_yaml, "test", out_dir=evaluation_dir,
                             print_table=verbose != 0)
    summary = {key: float(metrics[key]) for key in ("map50", "map50_95", "map50_voc07", "precision", "recall")}
    summary.update(precision_at_best_f1=float(metrics["best_f1"]["precision"]),
                   recall_at_best_f1=float(metrics["best_f1"]["recall"]),
                   best_f1_confidence=float(metrics["best_f1"]["confidence"]))
    provenance = {"model_path": str(training.best_model_path), "split": "test",
                  "dataset_fingerprint": metrics["dataset_fingerprint"], "input_size": metrics["input_size"],
                  "thresholds": metrics["thresholds"]}
    return {"metrics": summary, "model_path": str(training.best_model_path), "model_name": "yolov3-tiny",
            "provenance": provenance,
            "dataset": f"shapes ({settings.num_train} train / {settings.num_test} test images, "
                       f"{settings.image_size} px)",
            "data_yaml": str(data_yaml), "gallery": str(evaluation_dir / "gallery.png"),
            "pr_curves": str(evaluation_dir / "pr_curves.png"),
            "loss_curves": str(training.curves_path) if training.curves_path else None,
            "epochs": training.epochs_completed}
