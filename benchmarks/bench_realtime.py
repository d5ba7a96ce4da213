"""Real-time benchmark (Part 3): defi1's default CPU path against a plain OpenCV DNN loop, same weights, same run.

The network is tiny-YOLOv3 at 416 with darknet's released COCO weights converted by defi1 (``--weights``, default
the cached ``yolov3-tiny.weights`` of ``../shared/darknet/fetch-released-tiny-weights.sh``; seeded random weights
when absent), on a generated 640×480 video. In alternating rounds:

* **defi1**: :func:`defi1.realtime.engines.load_detector` with ``engine="auto"`` (what ``detect stream`` uses by
  default) and :func:`defi1.realtime.stream.run_stream` over the video: capture, letterbox, forward, decode, NMS and
  drawing, overlapped in threads, every frame;
* **OpenCV loop**: one thread, as in OpenCV's object-detection sample: read a frame, ``blobFromImage``, forward
  (``cv2.dnn.readNetFromONNX`` on the ONNX file defi1 writes for the same model; ``readNetFromDarknet`` with
  ``--opencv-darknet CFG`` where OpenCV 4 still has it), decode the heads, ``NMSBoxesBatched``, draw.

Each round gives both end-to-end FPS (and each engine's forward-only FPS: defi1's half just before and half just
after its stream, so that e2e / model-only compares figures of the same moment on a machine whose speed drifts; with
two model stages, :func:`defi1.realtime.bench.time_model_around` times both the stages' two engine instances at once
and the engine one frame at a time, and e2e is compared with the faster); the ratio defi1 / OpenCV per round and its
median, and defi1's end-to-end / model-only median and quartiles, are printed with the machine, the load and the
versions. ``--model-workers 1`` measures the single model stage (the latency-first path of cameras).
``--candidates`` also times the forward pass of every engine candidate (Keras graph, Keras + XLA, OpenCV DNN, ONNX
Runtime with 1 and all threads), wall time and process CPU time per frame, interleaved.

    python benchmarks/bench_realtime.py                       # 5 rounds of 100 frames
    python benchmarks/bench_realtime.py --rounds 3 --frames 60 --candidates
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_WEIGHTS = Path.home() / ".cache" / "defi1" / "weights" / "yolov3-tiny.weights"


def opencv_loop(net, output_names, heads, video_path, *, input_size, frames, conf_threshold=0.25,
                iou_threshold=0.45):
    """A plain OpenCV DNN loop over ``frames + 1`` frames: read, blob, forward, decode, NMSBoxesBatched, draw.
    Returns ``(end-to-end FPS over the frames after the first, forward-only FPS)``."""
    import cv2

    from defi1.yolo.decode import decode_heads_numpy

    capture = cv2.VideoCapture(str(video_path))
    processed, started, forward_seconds = 0, None, 0.0
    while processed <= frames:
        ok, frame = capture.read()
        if not ok:
            break
        height, width = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (input_size, input_size), swapRB=True, crop=False)
        begin = time.perf_counter()
        net.setInput(blob.transpose(0, 2, 3, 1) if output_names[0].startswith("head_") else blob)
        outputs = net.forward(output_names)
        if processed:
            forward_seconds += time.perf_counter() - begin
        if output_names[0].startswith("head_"):  # defi1's ONNX file: raw heads, decoded here
            boxes, objectness, probabilities = (values[0] for values in decode_heads_numpy(
                outputs, heads, input_size=(input_size, input_size)))
            scale = np.array([width, height, width, height]) / input_size
            boxes = boxes * scale
        else:  # darknet's [yolo] layers in OpenCV: rows (cx, cy, w, h, objectness, class scores), relative
            rows = np.concatenate([output.reshape(-1, output.shape[-1]) for output in outputs])
            centre, size = rows[:, :2] * (width, height), rows[:, 2:4] * (width, height)
            boxes, objectness, probabilities = np.hstack([centre - size / 2, centre + size / 2]), rows[:, 4], \
                rows[:, 5:] / np.maximum(rows[:, 4:5], 1e-9)
        class_ids = probabilities.argmax(axis=1)
        scores = objectness * probabilities[np.arange(len(class_ids)), class_ids]
        keep = scores > conf_threshold
        rectangles = np.hstack([boxes[keep, :2], boxes[keep, 2:] - boxes[keep, :2]])
        kept = cv2.dnn.NMSBoxesBatched(rectangles, scores[keep].astype(np.float32), class_ids[keep].astype(np.int32),
                                       conf_threshold, iou_threshold) if keep.any() else []
        for index in np.asarray(kept, dtype=int).reshape(-1):
            x, y, w, h = rectangles[index].astype(int)
            cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 255, 0), 2)
        done = time.perf_counter()
        if processed == 0:
            started = done  # the first frame pays for initialisation, as in defi1's figures
        processed += 1
    capture.release()
    fps = (processed - 1) / (done - started) if processed > 1 else 0.0
    return fps, (processed - 1) / forward_seconds if forward_seconds else 0.0


def candidates_table(model, onnx_path, input_size, *, rounds=5, calls=8):
    """Forward-pass time of each engine candidate, interleaved: ``{name: (wall ms median, CPU ms median)}``."""
    import cv2

    from defi1.realtime.engines import OnnxRuntimeForward, OpenCVForward, installed_engines
    from defi1.yolo.inference import compile_forward

    batch = np.random.default_rng(0).random((1, input_size, input_size, 3), dtype=np.float32)
    candidates = {"keras (graph, oneDNN)": compile_forward(model),
                  "keras + XLA": compile_forward(model, jit_compile=True),
                  f"opencv {cv2.__version__} DNN": OpenCVForward(onnx_path)}
    if "onnxruntime" in installed_engines():
        candidates["onnxruntime, 1 thread"] = OnnxRuntimeForward(onnx_path, threads=1)
        candidates[f"onnxruntime, {os.cpu_count()} threads"] = OnnxRuntimeForward(onnx_path)
    for forward in candidates.values():
        for _ in range(2):
            forward(batch)
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, forward in candidates.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(calls):
                forward(batch)
            wall[name].append((time.perf_counter() - wall_start) / calls * 1000.0)
            cpu[name].append((time.process_time() - cpu_start) / calls * 1000.0)
    return {name: (float(np.median(wall[name])), float(np.median(cpu[name]))) for name in candidates}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="darknet yolov3-tiny.weights (released)")
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--frames", type=int, default=100, help="frames per round and pipeline")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--engine", default="auto", help="defi1's engine (default auto, as the commands)")
    parser.add_argument("--model-workers", type=int, default=None, help="defi1's model stages (default: as "
                        "detect stream on a video file)")
    parser.add_argument("--opencv-darknet", metavar="CFG", help="OpenCV loop on readNetFromDarknet(CFG, --weights) "
                        "(OpenCV 4) instead of defi1's ONNX file")
    parser.add_argument("--candidates", action="store_true", help="also time every engine candidate's forward pass")
    parser.add_argument("--json", help="write the figures as JSON here")
    arguments = parser.parse_args(argv)

    import cv2

    from defi1.environment import cpu_flags, describe, load_average
    from defi1.files import atomic_save_model, atomic_write_json
    from defi1.realtime.bench import time_model_around
    from defi1.realtime.engines import describe_engine, exported_onnx_path, load_detector, make_forward
    from defi1.realtime.stream import run_stream
    from defi1.realtime.video import write_synthetic_video
    from defi1.yolo.darknet import load_darknet
    from defi1.yolo.heads import head_specs
    from defi1.yolo.model import build_yolov3_tiny, initialize_head_priors
    from defi1.yolo.released import resolve_darknet_cfg

    environment = describe()
    print(f"machine: {environment['machine']}; device: {environment['device']}; CPU flags: {' '.join(cpu_flags())}")
    print("versions: " + ", ".join(f"{name} {version}" for name, version in environment["versions"].items())
          + f"; cv2 {cv2.__version__}")
    print(f"load average before: {load_average()}")
    work = Path(tempfile.mkdtemp(prefix="defi1-bench-realtime-"))
    size = arguments.input_size
    if Path(arguments.weights).is_file():
        cfg, names = resolve_darknet_cfg(None, arguments.weights, None)
        model = load_darknet(cfg, arguments.weights, class_names=names, input_size=size)
        described = f"darknet's released {Path(arguments.weights).name}, converted by defi1"
    else:
        model = build_yolov3_tiny(num_classes=80, input_size=size)
        initialize_head_priors(model, objectness_prior=0.01, class_prior=0.5)
        described = "seeded random weights (no released weights found)"
    model_path = atomic_save_model(model, work / "yolov3-tiny.keras")
    video = write_synthetic_video(work / "video_640x480.mp4", frames=arguments.frames + 1)
    print(f"tiny-YOLOv3 at {size}, {described}; {arguments.frames} frames of a generated 640x480 video per round\n")

    detector = load_detector(model_path, engine=arguments.engine, input_size=size)
    print(f"defi1: {describe_engine(detector)}")
    onnx_path = exported_onnx_path(model_path, (size, size))
    make_forward(model_path, "opencv", input_size=size)  # writes the ONNX file if auto did not
    if arguments.opencv_darknet:
        net = cv2.dnn.readNetFromDarknet(arguments.opencv_darknet, arguments.weights)
        output_names = list(net.getUnconnectedOutLayersNames())
        print(f"OpenCV loop: readNetFromDarknet({arguments.opencv_darknet})")
    else:
        net = cv2.dnn.readNetFromONNX(str(onnx_path))
        output_names = sorted(net.getUnconnectedOutLayersNames(), key=lambda name: int(name.split("_")[-1]))
        print(f"OpenCV loop: readNetFromONNX({onnx_path.name}), {cv2.getNumThreads()} threads")
    heads = head_specs(model)
    batch = detector.preprocess([np.zeros((480, 640, 3), np.uint8)])[0]

    rows = []
    for round_index in range(arguments.rounds):
        # defi1's model-only rate is measured half just before and half just after its stream: the machine's speed
        # drifts within seconds, and e2e / model-only must compare figures of the same moment.
        def stream(workers):
            cpu_started = time.process_time()
            stats = run_stream(str(video), detector, max_frames=arguments.frames + 1, mode="every", overlay=False,
                               model_workers=workers)
            return stats, (time.process_time() - cpu_started) / (arguments.frames + 1) * 1000.0
        model_only, (stats, cpu_ms) = time_model_around(detector.forward, batch, stream, mode="every",
                                                        model_workers=arguments.model_workers,
                                                        frames=arguments.frames, warmup=2)
        defi1_model, before, after = model_only["best_fps"], model_only["fps_before"], model_only["fps_after"]
        one_at_a_time = model_only["one_at_a_time"]
        opencv_fps, opencv_model = opencv_loop(net, output_names, heads, video, input_size=size,
                                               frames=arguments.frames)
        row = {"defi1_fps": stats.fps_end_to_end, "defi1_model_fps": defi1_model,
               "defi1_model_workers": model_only["model_workers"], "defi1_model_fps_stages": model_only["fps"],
               "defi1_model_fps_one_at_a_time": one_at_a_time["fps"] if one_at_a_time else model_only["fps"],
               "defi1_model_fps_before_after": [before, after],
               "defi1_latency_ms_median": float(np.median(stats.latency_ms[1:])),
               "defi1_cpu_ms_per_frame": cpu_ms,
               "opencv_fps": opencv_fps, "opencv_model_fps": opencv_model,
               "ratio": stats.fps_end_to_end / opencv_fps if opencv_fps else 0.0, "load": load_average()}
        rows.append(row)
        stages = (f"{model_only['model_workers']} stages {model_only['fps']:5.1f} ({before:5.1f} before, {after:5.1f} "
                  f"after), 1 at a time {one_at_a_time['fps']:5.1f}" if one_at_a_time else
                  f"{before:5.1f} before, {after:5.1f} after")
        print(f"round {round_index + 1}: defi1 {row['defi1_fps']:5.1f} FPS end to end (model {stages}; "
              f"e2e/model {row['defi1_fps'] / defi1_model:.2f}; latency {row['defi1_latency_ms_median']:4.1f} ms; "
              f"CPU {cpu_ms:4.1f} ms per frame); "
              f"OpenCV loop {opencv_fps:5.1f} FPS (forward {opencv_model:5.1f}); ratio {row['ratio']:.2f}; "
              f"load {row['load']}", flush=True)
    ratios = [row["ratio"] for row in rows]
    end_to_end_over_model = [row["defi1_fps"] / row["defi1_model_fps"] for row in rows]
    print(f"\nmedian ratio defi1 / OpenCV loop: {np.median(ratios):.2f} (rounds: "
          f"{', '.join(f'{ratio:.2f}' for ratio in ratios)}); defi1 end to end median "
          f"{np.median([row['defi1_fps'] for row in rows]):.1f} FPS, OpenCV loop "
          f"{np.median([row['opencv_fps'] for row in rows]):.1f} FPS; defi1 end to end / model-only median "
          f"{np.median(end_to_end_over_model):.2f} (mean {np.mean(end_to_end_over_model):.2f}, quartiles "
          f"{np.percentile(end_to_end_over_model, 25):.2f}-{np.percentile(end_to_end_over_model, 75):.2f})")
    candidates = None
    if arguments.candidates:
        candidates = candidates_table(detector.model, onnx_path, size)
        print("\nforward pass, batch 1 (interleaved; median per frame):")
        for name, (wall_ms, cpu_ms) in sorted(candidates.items(), key=lambda item: item[1][0]):
            print(f"  {name:28s} {wall_ms:7.1f} ms wall  {cpu_ms:7.1f} ms CPU")
    print(f"\nload average after: {load_average()}")
    if arguments.json:
        atomic_write_json(arguments.json, {"environment": environment, "cv2": cv2.__version__,
                                           "engine": describe_engine(detector), "rounds": rows,
                                           "median_ratio": float(np.median(ratios)),
                                           "median_end_to_end_over_model": float(np.median(end_to_end_over_model)),
                                           "candidates": candidates})
    return 0


if __name__ == "__main__":
    sys.exit(main())
