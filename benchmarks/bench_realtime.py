"""Real-time benchmark (Part 3): tiny-YOLOv3 (or YOLOv3) at 416 on a generated 640×480 video.

Measures, in one run and on the same weights:

* defi1 with the Keras engine (compiled forward: tf.function under TensorFlow, jax.jit under JAX),
* defi1 with the ONNX Runtime engine,
* OpenCV 4.x DNN reading the same network as darknet ``.cfg`` + ``.weights`` (written by
  :func:`defi1.yolo.darknet.save_darknet`) — the reference,

each model-only (forward pass on one pre-processed frame) and end to end (decode the video, letterbox, model, decode
boxes + NMS, draw, every frame). The weights are seeded random with an objectness prior of 1 %
(:func:`defi1.yolo.model.initialize_head_priors`, classes at 0.5), so the post-processing sees a few boxes per frame as with a
trained model. Targets on 2 CPU cores: tiny-YOLOv3 ≥ 25 FPS end to end, end to end ≥ 0.9 × model only.

    python benchmarks/bench_realtime.py                       # tiny-YOLOv3, 416, 100 frames
    KERAS_BACKEND=jax python benchmarks/bench_realtime.py --network yolov3 --engines keras   # GPU machine
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def opencv_dnn_benchmark(cfg_path, weights_path, video_path, *, input_size, frames, warmup, conf_threshold=0.25,
                         iou_threshold=0.45):
    """Model-only and end-to-end figures of OpenCV's DNN module on the same darknet network (reference)."""
    import cv2

    from defi1.realtime.bench import time_forward
    from defi1.realtime.stream import latency_percentiles

    net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    output_names = net.getUnconnectedOutLayersNames()
    capture = cv2.VideoCapture(str(video_path))
    ok, frame = capture.read()
    blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (input_size, input_size), swapRB=True, crop=False)

    def forward(batch):
        net.setInput(batch)
        return net.forward(output_names)
    model_only = time_forward(forward, blob, frames=frames, warmup=warmup)
    # End to end, one thread: read, blob, forward, boxes + NMS, draw (as in OpenCV's object_detection sample).
    latencies = []
    processed = 0
    started = None
    while processed <= frames:
        if processed:
            ok, frame = capture.read()
            if not ok:
                break
        begin = time.perf_counter()
        height, width = frame.shape[:2]
        net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255.0, (input_size, input_size), swapRB=True, crop=False))
        rows = np.concatenate([output.reshape(-1, output.shape[-1]) for output in net.forward(output_names)])
        scores = rows[:, 5:].max(axis=1) * rows[:, 4]
        rows, scores = rows[scores > conf_threshold], scores[scores > conf_threshold]
        boxes = [[int((x - w / 2) * width), int((y - h / 2) * height), int(w * width), int(h * height)]
                 for x, y, w, h in rows[:, :4]]
        for index in np.array(cv2.dnn.NMSBoxes(boxes, scores.tolist(), conf_threshold, iou_threshold)).reshape(-1):
            x, y, w, h = boxes[index]
            cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 255, 0), 2)
        done = time.perf_counter()
        latencies.append((done - begin) * 1000.0)
        if processed == 0:
            started = done  # the first frame pays for initialisation, as in defi1's figures
        processed += 1
    capture.release()
    end_to_end = {"fps_end_to_end": (processed - 1) / (done - started) if processed > 1 else 0.0,
                  "frames_processed": processed, "frames_dropped": 0, "mode": "every"}
    end_to_end.update(latency_percentiles(latencies[1:], prefix="latency_ms"))
    return {"engine": "opencv-dnn", "model_only": model_only, "end_to_end": end_to_end,
            "end_to_end_over_model": end_to_end["fps_end_to_end"] / model_only["fps"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", choices=("yolov3-tiny", "yolov3"), default="yolov3-tiny")
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--engines", default="keras,onnxruntime,opencv-dnn",
                        help="comma-separated: keras, onnxruntime, opencv-dnn")
    parser.add_argument("--json", help="write every figure as JSON here")
    arguments = parser.parse_args(argv)

    import keras

    from defi1.environment import describe
    from defi1.errors import Defi1Error
    from defi1.files import atomic_save_model, atomic_write_json
    from defi1.realtime.bench import benchmark
    from defi1.realtime.video import write_synthetic_video
    from defi1.yolo.darknet import save_darknet
    from defi1.yolo.model import build_yolov3, build_yolov3_tiny, initialize_head_priors

    environment = describe()
    print(f"machine: {environment['machine']}; device: {environment['device']}; backend: {environment['backend']}")
    print("versions: " + ", ".join(f"{name} {version}" for name, version in environment["versions"].items()))
    if hasattr(os, "getloadavg"):
        print("load average before the run: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    engines = [name.strip() for name in arguments.engines.split(",") if name.strip()]
    work = Path(tempfile.mkdtemp(prefix="defi1-bench-realtime-"))
    keras.utils.set_random_seed(0)
    build = build_yolov3_tiny if arguments.network == "yolov3-tiny" else build_yolov3
    model = build(num_classes=arguments.classes, input_size=arguments.input_size)
    initialize_head_priors(model, objectness_prior=0.01, class_prior=0.5)
    model_path = atomic_save_model(model, work / f"{arguments.network}.keras")
    weights_path, cfg_path = save_darknet(model, work / f"{arguments.network}.weights")
    video = write_synthetic_video(work / "video_640x480.mp4", frames=arguments.frames + 1)
    print(f"{arguments.network} at {arguments.input_size}, {arguments.classes} classes, {arguments.frames} frames "
          f"of a generated 640x480 video\n")

    results = {}
    for engine in engines:
        if engine == "opencv-dnn":
            results[engine] = opencv_dnn_benchmark(cfg_path, weights_path, video, input_size=arguments.input_size,
                                                   frames=arguments.frames, warmup=arguments.warmup)
        else:
            try:
                results[engine] = benchmark(model_path, source=video, engine=engine, input_size=arguments.input_size,
                                            frames=arguments.frames, warmup=arguments.warmup)
            except Defi1Error as error:  # e.g. ONNX export under JAX without jax2onnx
                print(f"  {engine:12s} skipped: {error}")
                continue
        figures = results[engine]
        print(f"  {engine:12s} model {figures['model_only']['fps']:6.1f} FPS "
              f"({figures['model_only']['latency_ms_median']:.1f} ms median), end to end "
              f"{figures['end_to_end']['fps_end_to_end']:6.1f} FPS "
              f"(latency median {figures['end_to_end']['latency_ms_median']:.1f} ms, "
              f"p99 {figures['end_to_end']['latency_ms_p99']:.1f})", flush=True)

    reference = results.get("opencv-dnn") or next(iter(results.values()))
    reference_name = "opencv-dnn" if "opencv-dnn" in results else engines[0]
    header = (f"{'engine':12s} {'model FPS':>9s} {'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} {'e2e FPS':>8s} "
              f"{'e2e p50':>8s} {'e2e p99':>8s} {'e2e/model':>9s} {'e2e vs ' + reference_name:>18s}")
    print("\n" + header + "\n" + "-" * len(header))
    for engine, figures in results.items():
        model_only, end_to_end = figures["model_only"], figures["end_to_end"]
        print(f"{engine:12s} {model_only['fps']:9.1f} {model_only['latency_ms_median']:7.1f} "
              f"{model_only['latency_ms_p90']:7.1f} {model_only['latency_ms_p99']:7.1f} "
              f"{end_to_end['fps_end_to_end']:8.1f} {end_to_end['latency_ms_median']:8.1f} "
              f"{end_to_end['latency_ms_p99']:8.1f} {figures['end_to_end_over_model']:9.2f} "
              f"{end_to_end['fps_end_to_end'] / reference['end_to_end']['fps_end_to_end']:18.2f}")
    if hasattr(os, "getloadavg"):
        print("\nload average after the run: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    if arguments.json:
        atomic_write_json(arguments.json, {"network": arguments.network, "input_size": arguments.input_size,
                                           "frames": arguments.frames, "environment": environment,
                                           "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
