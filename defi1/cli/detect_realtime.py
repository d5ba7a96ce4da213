"""``defi1 detect stream`` (real-time detection on a camera, video, stream or folder) and ``defi1 detect export``
(ONNX or SavedModel). Parsing and printing only: the work is in :mod:`defi1.realtime`."""

from __future__ import annotations

import json

from defi1.choices import ENGINE_CHOICES


def register(subparsers):
    stream = subparsers.add_parser(
        "stream", help="real-time detection on a camera, video file, RTSP/HTTP stream or folder of images",
        description="Detect objects frame by frame: a capture thread hands the newest frame to a pipeline "
                    "(preprocess -> compiled model -> decode/draw). Cameras and streams drop stale frames; files are "
                    "processed frame by frame unless --mode drop. Quit with q/Escape in the window or Ctrl-C "
                    "(the recording, the summary line and the --json figures are kept; exit code 130 after "
                    "Ctrl-C).")
    stream.add_argument("--model", required=True, help="trained detector (.keras)")
    stream.add_argument("--source", required=True,
                        help="camera index (0, 1 ...), video file, stream URL (rtsp://, http://) or image folder")
    stream.add_argument("--show", action="store_true", help="show the annotated frames in a window (needs an "
                        "OpenCV build with GUI, not opencv-python-headless)")
    stream.add_argument("--save", metavar="OUT.mp4", help="record the annotated frames (.mp4 or .avi)")
    stream.add_argument("--conf", type=float, default=0.25, help="score threshold (default 0.25)")
    stream.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    stream.add_argument("--input-size", type=int, default=None, help="network input side, a multiple of 32 "
                        "(default: the model's)")
    stream.add_argument("--max-frames", type=int, default=None, help="stop after this many processed frames")
    stream.add_argument("--mode", choices=("drop", "every"), default=None,
                        help="drop: real time, stale frames dropped (default for cameras and streams); "
                             "every: every frame (default for files and folders)")
    stream.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="auto (default): keras on a GPU, else the fastest engine installed, measured on this "
                             "machine once per model; keras: the compiled Keras pass; opencv: OpenCV's DNN module "
                             "on defi1's ONNX export; onnxruntime: ONNX Runtime (the onnx extra)")
    stream.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU; keras engine)")
    stream.add_argument("--no-pipeline", action="store_true", help="run preprocess, model and drawing in one "
                        "thread (for debugging)")
    stream.add_argument("--model-workers", type=int, default=None, metavar="N",
                        help="frames in the model at once, each on its own copy of the engine, results kept in "
                             "frame order (default: 2 in every-frame mode on a CPU with 2 cores or more and the "
                             "keras or onnxruntime engine, more frames per second; 1 otherwise, the lowest latency)")
    stream.add_argument("--reconnect", type=int, default=3, help="reconnect attempts when a camera or stream "
                        "stops delivering frames (default 3)")
    stream.add_argument("--json", metavar="OUT.json", help="write the figures (FPS, latency, dropped) as JSON")
    stream.set_defaults(handler=run_stream_command)

    export = subparsers.add_parser("export", help="export a detector to ONNX or a TensorFlow SavedModel",
                                   description="Export, then check that the exported model's outputs agree with "
                                               "the Keras model's. ONNX: models with a darknet cfg (every built-in "
                                               "and converted model) are written by defi1's own writer (batch norm "
                                               "folded, fixed input size, no extra package; the file the opencv and "
                                               "onnxruntime engines run), checked with OpenCV's DNN; other models, "
                                               "or --dynamic, by Keras 3 model.export (tf2onnx: the onnx extra), "
                                               "checked with ONNX Runtime.")
    export.add_argument("--model", required=True, help="trained detector (.keras)")
    export.add_argument("--format", choices=("onnx", "saved_model"), default="onnx")
    export.add_argument("--out", default=None, help="output .onnx file or SavedModel folder (default: beside the "
                        "model, model.onnx or model_saved_model/)")
    export.add_argument("--input-size", type=int, default=None, help="ONNX from defi1's writer: the input side, a "
                        "multiple of 32 (default: the model's)")
    export.add_argument("--dynamic", action="store_true", help="ONNX through Keras' export (tf2onnx, the onnx "
                        "extra): any batch, height and width")
    export.add_argument("--check-size", type=int, default=None, help="input side used to compare the export with "
                        "the Keras model (default: the export's input size, else the model's)")
    export.add_argument("--no-check", action="store_true", help="skip the comparison")
    export.set_defaults(handler=run_export_command)


def run_stream_command(arguments):
    from tqdm import tqdm

    from defi1.realtime.engines import describe_engine, load_detector
    from defi1.realtime.sinks import VideoFileSink, WindowSink
    from defi1.realtime.sources import default_mode, open_source
    from defi1.realtime.stream import model_stage_forwards, run_stream

    sinks = []
    if arguments.show:
        sinks.append(WindowSink(f"defi1 - {arguments.source}"))  # fails at once without a GUI
    source = open_source(arguments.source, reconnect_attempts=arguments.reconnect)  # fails at once without a camera
    try:
        if arguments.save:  # checks the folder before the model is loaded
            sinks.append(VideoFileSink(arguments.save, fps=source.fps or 30.0))
        detector = load_detector(arguments.model, input_size=arguments.input_size, conf_threshold=arguments.conf,
                                 iou_threshold=arguments.iou, engine=arguments.engine,
                                 mixed_precision=arguments.mixed_precision)
        model_stage_forwards(detector.forward, arguments.mode or default_mode(source),  # checked before the progress
                             model_workers=arguments.model_workers, pipeline=not arguments.no_pipeline)  # bar shows
    except BaseException:
        source.close()
        for sink in sinks:
            sink.close()
        raise
    print(describe_engine(detector))
    code = 0
    try:
        with tqdm(total=arguments.max_frames, desc="frames", unit="frame") as progress:
            stats = run_stream(source, detector, sinks=sinks, max_frames=arguments.max_frames,
                               mode=arguments.mode, pipeline=not arguments.no_pipeline, progress=progress,
                               model_workers=arguments.model_workers)
    except KeyboardInterrupt as interrupt:  # Ctrl-C: still report the figures (the recording is already closed)
        stats, code = getattr(interrupt, "stream_stats", None), 130
        if stats is None:
            raise
    finally:
        source.close()
    _report_stream(arguments, stats)
    return code


def _report_stream(arguments, stats):
    """Print the summary line, the skipped images and the recording; write the ``--json`` figures."""
    print(stats.describe())
    for path in stats.skipped:
        print(f"skipped {path}: not a readable image")
    if arguments.save:
        print(f"recording: {arguments.save}")
    if arguments.json:
        from defi1.files import atomic_write_json

        atomic_write_json(arguments.json, stats.summary())
        print(f"figures: {arguments.json}")


def run_export_command(arguments):
    from defi1.realtime.engines import export_detector

    result = export_detector(arguments.model, arguments.out, format=arguments.format, input_size=arguments.input_size,
                             dynamic=arguments.dynamic, check=not arguments.no_check,
                             check_size=arguments.check_size)
    writer = "defi1's ONNX writer" if result["writer"] == "defi1" else "Keras export"
    print(f"exported {arguments.model} -> {result['path']} ({arguments.format}, {writer})")
    difference = result["max_abs_difference"]
    if difference is not None:
        print(json.dumps({"max_abs_difference": difference, "check_input_size": result["check_input_size"]}))
        if difference > 1e-3:
            print(f"defi1: warning: the export differs from the Keras model by up to {difference:.3g}")
            return 1
    return 0
