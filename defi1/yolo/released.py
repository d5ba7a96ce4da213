"""Darknet's released COCO models without their cfg files: the cfg that goes with each released ``.weights`` file is
built in, with COCO's 80 class names.

``defi1 detect predict --weights yolov3-tiny.weights`` (no ``--cfg``) recognises a released file by its size and
uses its built-in cfg; ``--cfg yolov3-tiny`` (or ``yolov3``, ``yolov3-spp``) names one explicitly. The built-in
``yolov3-tiny`` is the cfg darknet's released ``yolov3-tiny.weights`` were trained with: its second ``[yolo]`` uses
``mask = 1,2,3``. darknet's repository later changed that line of ``yolov3-tiny.cfg`` to ``mask = 0,1,2`` without
retraining; the file sizes are the same, so loading the released weights with today's cfg file runs without error
but gives the second (stride 16) head the wrong anchors: its boxes come out too small. (Training from scratch with
``--model yolov3-tiny`` keeps today's masks, :data:`defi1.yolo.anchors.YOLOV3_TINY_MASKS`.)
"""

from __future__ import annotations

from pathlib import Path

from defi1.yolo.architectures import yolov3_cfg, yolov3_spp_cfg, yolov3_tiny_cfg

#: The class names of darknet's COCO models, in class-id order (darknet's ``data/coco.names``).
COCO_CLASS_NAMES = [
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "sofa", "pottedplant", "bed", "diningtable", "toilet",
    "tvmonitor", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"]
#: The masks darknet's released ``yolov3-tiny.weights`` were trained with (stride 32, then stride 16).
RELEASED_TINY_MASKS = [[3, 4, 5], [1, 2, 3]]
#: Built-in cfg names (``--cfg NAME``) and the size in bytes of darknet's released COCO weights for each.
RELEASED_WEIGHTS_BYTES = {"yolov3-tiny": 35_434_956, "yolov3": 248_007_048, "yolov3-spp": 252_209_544}


def released_cfg(name: str) -> str:
    """The darknet cfg text of a released COCO model: ``"yolov3"``, ``"yolov3-spp"`` or ``"yolov3-tiny"`` (with
    the released weights' masks, :data:`RELEASED_TINY_MASKS`), 80 classes, 416 × 416."""
    if name == "yolov3":
        return yolov3_cfg(num_classes=80)
    if name == "yolov3-spp":
        return yolov3_spp_cfg(num_classes=80)
    if name == "yolov3-tiny":
        return yolov3_tiny_cfg(num_classes=80, masks=RELEASED_TINY_MASKS)
    raise ValueError(f"unknown built-in cfg {name!r}: expected one of {', '.join(RELEASED_WEIGHTS_BYTES)}, or a "
                     "darknet .cfg file")


def recognise_released_weights(weights_path) -> str | None:
    """The built-in name whose released COCO weights have the size of ``weights_path`` (``None`` when none has):
    the architecture a file holds is known from its size (darknet's header is 20 bytes, 16 in old files)."""
    size = Path(weights_path).stat().st_size
    return next((name for name, expected in RELEASED_WEIGHTS_BYTES.items() if size in (expected, expected - 4)),
                None)


def resolve_darknet_cfg(cfg, weights_path, names=None) -> tuple:
    """``(cfg, names)`` for a darknet weights file: ``cfg`` as given (a file or cfg text), a built-in name replaced
    by its text (:func:`released_cfg`), or, when ``None``, the built-in cfg of the released weights of that size;
    ``names`` as given, else COCO's for a built-in cfg. FileNotFoundError / ValueError naming the weights file."""
    if cfg is None:
        if not Path(weights_path).is_file():
            raise FileNotFoundError(f"{weights_path}: darknet weights file not found")
        cfg = recognise_released_weights(weights_path)
        if cfg is None:
            raise ValueError(f"{weights_path}: not the size of darknet's released "
                             f"{', '.join(RELEASED_WEIGHTS_BYTES)} COCO weights; give the cfg it was trained with "
                             "(--cfg FILE.cfg)")
    if isinstance(cfg, str) and cfg in RELEASED_WEIGHTS_BYTES:
        return released_cfg(cfg), names if names is not None else list(COCO_CLASS_NAMES)
    return cfg, names
