"""``defi1 detect predict`` and ``defi1 detect anchors``: parse arguments, call :mod:`defi1.yolo`, print."""

from __future__ import annotations

import argparse

from defi1.choices import ENGINE_CHOICES


def register(subparsers):
    predict = subparsers.add_parser(
        "predict", help="Detect objects in an image, a folder of images or a video",
        description="Run a YOLO model on an image, a folder of images or a video. Writes annotated images (an "
                    "annotated .mp4 for a video) and, with --save-txt, one labels/<name>.txt per image of "
                    "'class cx cy w h confidence' lines normalised to the original image (the format "
                    "'defi1 detect evaluate --pred' reads).")
    model = predict.add_argument_group("model (a .keras file, or darknet weights)")
    model.add_argument("--model", help="trained .keras model")
    model.add_argument("--weights", help="darknet .weights: darknet's released COCO yolov3-tiny.weights, "
                                         "yolov3.weights or yolov3-spp.weights need nothing else")
    model.add_argument("--cfg", help="the darknet .cfg the --weights were trained with (its masks are used), or a "
                                     "built-in name: yolov3-tiny (the released tiny weights' cfg: second mask "
                                     "1,2,3), yolov3, yolov3-spp (default: recognised from the size of --weights)")
    model.add_argument("--names", help="class names file, one a line (with --weights; default COCO's for the "
                                       "built-in cfgs)")
    predict.add_argument("--source", required=True, help="image file, folder of images, or video file")
    predict.add_argument("--conf", type=float, default=0.25, help="score threshold (objectness x class probability), "
                                                                  "default 0.25")
    predict.add_argument("--iou", type=float, default=0.45, help="per-class NMS IoU threshold, default 0.45")
    predict.add_argument("--input-size", type=int, help="network input side, a multiple of 32 (default: the "
                                                        "model's)")
    predict.add_argument("--multi-label", action="store_true",
                         help="a box gets every class whose score passes --conf (darknet's scoring), instead of its "
                              "best class only (the default)")
    predict.add_argument("--max-det", type=int, default=100, help="maximum detections per image, default 100")
    predict.add_argument("--batch-size", type=int, default=8, help="images per forward pass, default 8")
    predict.add_argument("--out", default="runs/predict", help="output folder, default runs/predict")
    predict.add_argument("--save-txt", action="store_true", help="also write labels/<name>.txt prediction files")
    predict.add_argument("--no-images", action="store_true", help="do not write annotated images/video")
    predict.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                         help="inference engine: auto (default: keras on a GPU, else the fastest engine installed, "
                              "measured once per model), keras, opencv (OpenCV's DNN on defi1's ONNX export) or "
                              "onnxruntime (the onnx extra)")
    predict.set_defaults(handler=run_predict)

    anchors = subparsers.add_parser(
        "anchors", help="Compute anchors for a dataset by k-means (distance 1 - IoU)",
        description="k-means anchors of a YOLO-format dataset's boxes, scaled as the letterbox scales them to the "
                    "network input. Prints them in darknet's 'anchors =' syntax with their mean IoU (and that of "
                    "the COCO defaults for comparison). Seeded: the same data and seed give the same anchors.")
    anchors.add_argument("--data", required=True,
                         help="dataset YAML, or any dataset 'defi1 data check' reads (Pascal VOC, COCO ...)")
    anchors.add_argument("-k", "--num-anchors", type=int, default=9, help="number of anchors (9 YOLOv3, 6 tiny)")
    anchors.add_argument("--input-size", type=int, default=416, help="network input side, default 416")
    anchors.add_argument("--seed", type=int, default=0, help="random seed, default 0")
    anchors.add_argument("--split", default="train", choices=("train", "val", "test", "all"),
                         help="boxes of which split, default train")
    anchors.set_defaults(handler=run_anchors)


def run_predict(arguments: argparse.Namespace):
    from defi1.predict import predict_source
    from defi1.realtime.engines import describe_engine, load_detector

    detector = load_detector(arguments.model, cfg=arguments.cfg, weights=arguments.weights, names=arguments.names,
                             engine=arguments.engine, input_size=arguments.input_size, conf_threshold=arguments.conf,
                             iou_threshold=arguments.iou, max_detections=arguments.max_det,
                             batch_size=arguments.batch_size, multi_label=arguments.multi_label)
    print(describe_engine(detector))
    report = predict_source(detector, arguments.source, arguments.out, save_txt=arguments.save_txt,
                            save_images=not arguments.no_images, progress=True)
    width, height = detector.input_size
    print(f"{report['images']} image(s) at {width}x{height}, {report['detections']} detection(s) "
          f"(conf {detector.conf_threshold}, iou {detector.iou_threshold})")
    if report["outputs"]:
        print(f"annotated output: {arguments.out}")
    if report["labels_dir"] is not None:
        print(f"prediction files: {report['labels_dir']}")
    for path, reason in report["skipped"]:
        print(f"skipped {path}: {reason}")
    if report["skipped"]:
        print(f"{len(report['skipped'])} file(s) skipped")
    if report["unreadable_frames"]:
        print(f"{report['unreadable_frames']} unreadable video frame(s) skipped")
    return 0


def run_anchors(arguments: argparse.Namespace):
    from defi1.detection.anchors import dataset_anchors

    report = dataset_anchors(arguments.data, arguments.num_anchors, input_size=arguments.input_size,
                             seed=arguments.seed, split=arguments.split)
    print("\n".join(report.lines()))
    return 0
