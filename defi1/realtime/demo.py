"""Part 3 of ``defi1 demo``: stream a generated video through a detector and report its speed.

Writes into ``out_dir``: ``input.mp4`` (the generated 640×480 video), ``annotated.mp4`` (boxes, FPS and latency
drawn), ``figures.json`` (model-only and end-to-end FPS and latency percentiles, environment) and ``latency.png``
(per-frame latency and model time).
"""

from __future__ import annotations

import numpy as np

from defi1.environment import describe
from defi1.figures import pyplot, save_figure
from defi1.files import atomic_write_json, ensure_output_dir
from defi1.realtime.bench import time_model_around
from defi1.realtime.sinks import VideoFileSink
from defi1.realtime.engines import load_detector
from defi1.realtime.stream import run_stream
from defi1.realtime.video import write_synthetic_video

DEMO_CLASSES = ("circle", "square", "triangle")


def demo_detector(model_path=None, *, input_size: int = 416, seed: int = 0):
    """The demo's detector: the given ``.keras`` model, or a freshly built tiny-YOLOv3 (3 classes, seeded random
    weights and an objectness prior of 1 %: its speed is that of the real network, its boxes are meaningless)."""
    if model_path is not None:
        return load_detector(model_path, input_size=input_size)
    import keras

    from defi1.yolo.model import build_yolov3_tiny, initialize_head_priors

    keras.utils.set_random_seed(seed)
    model = build_yolov3_tiny(num_classes=len(DEMO_CLASSES), input_size=input_size, class_names=list(DEMO_CLASSES))
    # A few boxes per frame, like a trained detector, rather than thousands for NMS (classes at 0.5: scores are set
    # by the objectness alone).
    initialize_head_priors(model, objectness_prior=0.01, class_prior=0.5)
    return load_detector(model, input_size=input_size)


def plot_latency(stats, path):
    """Per-frame end-to-end latency and model time (ms) as a PNG at ``path``."""
    figure, axis = pyplot().subplots(figsize=(7, 3))
    axis.plot(stats.latency_ms, label="end to end (capture to written)")
    axis.plot(stats.model_ms, label="model")
    axis.set_xlabel("frame")
    axis.set_ylabel("ms")
    axis.set_yscale("log")
    axis.set_title(f"{stats.fps_end_to_end:.1f} FPS end to end, {stats.fps_model:.1f} FPS model")
    axis.legend()
    figure.tight_layout()
    return save_figure(figure, path, dpi=100, tight=False)


def run_realtime_demo(out_dir, *, model_path=None, smoke: bool = False, input_size: int = 416) -> dict:
    """Stream a generated video through the demo detector (``model_path`` or a fresh tiny-YOLOv3) and measure it.

    ``smoke=True``: 20 frames instead of 150. Returns ``{"metrics": {"fps_end_to_end", "fps_model",
    "latency_ms_median", ...}, "model_name", "dataset", "provenance" (keyword arguments of
    :func:`defi1.results.record_results`), "annotated_video", "figures"}``.
    """
    out_dir = ensure_output_dir(out_dir)
    frames = 20 if smoke else 150
    video = write_synthetic_video(out_dir / "input.mp4", frames=frames)
    detector = demo_detector(model_path, input_size=input_size)
    forward = detector.forward
    batch = detector.preprocess([np.zeros((480, 640, 3), np.uint8)])[0]
    sink = VideoFileSink(out_dir / "annotated.mp4", fps=30)
    model_only, stats = time_model_around(forward, batch,
                                          lambda workers: run_stream(str(video), detector, sinks=[sink], mode="every",
                                                                     model_workers=workers),
                                          mode="every", frames=10 if smoke else 50, warmup=3)
    summary = stats.summary()
    metrics = {
        "fps_end_to_end": summary["fps_end_to_end"],
        "fps_model": model_only["best_fps"],
        "latency_ms_median": summary["latency_ms_median"],
        "latency_ms_p90": summary["latency_ms_p90"],
        "latency_ms_p99": summary["latency_ms_p99"],
        "model_ms_median": model_only["latency_ms_median"],
        "frames": summary["frames_processed"],
    }
    model_name = str(model_path) if model_path is not None else f"yolov3-tiny (random weights, {input_size})"
    atomic_write_json(out_dir / "figures.json", {"metrics": metrics, "model_only": model_only, "stream": summary,
                                                 "model": model_name, "environment": describe()})
    plot_latency(stats, out_dir / "latency.png")
    provenance = {"model_path": None if model_path is None else str(model_path), "input_size": input_size,
                  "thresholds": {"conf_threshold": detector.conf_threshold, "iou_threshold": detector.iou_threshold}}
    return {"metrics": metrics, "model_name": model_name, "dataset": "generated video 640x480",
            "provenance": provenance,
            "annotated_video": str(out_dir / "annotated.mp4"), "figures": str(out_dir / "figures.json")}
