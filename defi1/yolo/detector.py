"""The inference API: a :class:`Detector` turns RGB images into :class:`Detection` results.

    detector = Detector.from_keras("runs/shapes/best.keras")          # or Detector.from_darknet(cfg, weights, names)
    detections = detector.detect(["a.jpg", PIL.Image.open("b.png"), rgb_array])  # or one image alone
    detections = detector.detect(cv2_frame, bgr=True)                 # OpenCV's BGR frames
    write_image("a_boxes.jpg", draw_detections(read_image("a.jpg"), detections[0]))

Each image is letterboxed (:func:`defi1.boxes.letterbox_image`) to the detector's input size, the batch goes through
one compiled call that runs the network AND decodes its heads (:meth:`defi1.yolo.inference.CompiledForward.detect`:
only the best candidates reach the host), and :func:`defi1.yolo.decode.postprocess` applies the score threshold,
per-class NMS and the inverse letterbox: boxes come back in pixels of each original image. With an engine that
returns raw heads (``forward=``, e.g. ONNX Runtime) the heads are decoded on the host
(:func:`defi1.yolo.decode.decode_heads_numpy`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from defi1.boxes import cxcywh_from_xyxy, letterbox_image
from defi1.errors import DataError
from defi1.files import atomic_write_text, load_keras_model
from defi1.images import as_rgb_image, as_rgb_uint8, pixels_to_unit
from defi1.yolo.decode import Detection, decode_heads_numpy, postprocess
from defi1.yolo.drawing import class_color, draw_detections
from defi1.yolo.heads import head_specs, input_width_height

__all__ = ["Detection", "Detector", "class_color", "draw_detections", "format_detections_txt", "infer_decoded",
           "save_detections_txt"]


class Detector:
    """A YOLO model ready for inference on RGB images.

    Args:
        model: a defi1 YOLO ``keras.Model`` (outputs through :class:`~defi1.yolo.layers.YoloHead` layers).
        input_size: network input side (int) or ``(width, height)``, multiples of the network stride (32); default
            the ``input_size`` recorded in the model's heads.
        conf_threshold: minimum score (objectness × class probability) of a detection.
        iou_threshold: per-class NMS IoU threshold.
        max_detections: at most this many detections per image.
        class_names: class names (default: those recorded in the model's heads, else the ids as text).
        multi_label: one detection per class above the threshold for a box (darknet's way; best for mAP), instead
            of the best class only.
        batch_size: images per forward pass in :meth:`detect`.
        fold_batchnorm: fold batch norm into the convolutions for inference (models built by defi1.yolo.model).
        jit_compile: TensorFlow: compile the forward pass and decoding with XLA (``None``: the backend's default,
            :data:`defi1.yolo.inference.DEFAULT_JIT_COMPILE`).
        forward: the forward pass to run instead of the model's compiled one: a callable taking a float32 NHWC batch
            in ``[0, 1]`` and returning the raw head arrays in output order (e.g. an ONNX Runtime engine from
            :func:`defi1.realtime.engines.make_forward`).

    Attributes:
        forward: the forward pass in use (:func:`defi1.yolo.inference.compile_forward` for models built from a
            darknet cfg, a direct model call otherwise, or the ``forward`` given): raw heads.
        heads: the :class:`~defi1.yolo.heads.HeadSpec` of each output.
    """

    def __init__(self, model, *, input_size=None, conf_threshold=0.25, iou_threshold=0.45, max_detections=100,
                 class_names=None, multi_label=False, batch_size=8, fold_batchnorm=True, forward=None,
                 jit_compile=None):
        self.model = model
        self.heads = head_specs(model)
        self.stride = max(max(head.stride for head in self.heads), 32)
        layers = _yolo_head_layers(model)
        if input_size is None:
            input_size = layers[0].input_size
        self.input_width, self.input_height = input_width_height(input_size)
        if (self.input_width % self.stride or self.input_height % self.stride or self.input_width <= 0
                or self.input_height <= 0):
            nearest = max(1, round(self.input_width / self.stride)) * self.stride
            raise ValueError(f"input size {self.input_width}x{self.input_height} is not a multiple of {self.stride} "
                             f"(the network's stride); use e.g. {nearest}")
        if not 0.0 <= float(conf_threshold) <= 1.0 or not 0.0 <= float(iou_threshold) <= 1.0:
            raise ValueError(f"conf_threshold and iou_threshold must be in [0, 1], got {conf_threshold} and "
                             f"{iou_threshold}")
        self.conf_threshold = float(conf_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.multi_label = bool(multi_label)
        self.batch_size = max(1, int(batch_size))
        num_classes = self.heads[0].num_classes
        if class_names is None:
            class_names = self.heads[0].class_names
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for a model of {num_classes} classes")
        self.class_names = list(class_names) if class_names is not None else None
        self.num_classes = num_classes
        self.forward = forward if forward is not None else _make_forward(model, layers, fold_batchnorm=fold_batchnorm,
                                                                         jit_compile=jit_compile)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)`` of the network input."""
        return self.input_width, self.input_height

    @classmethod
    def from_keras(cls, path, **options):
        """Load a ``.keras`` YOLO model (:func:`defi1.files.load_keras_model`: ``safe_mode=True``, errors naming
        the file)."""
        return cls(load_keras_model(path), **options)

    @classmethod
    def from_darknet(cls, cfg, weights, names=None, *, input_size=None, **options):
        """Build a model from a darknet ``.cfg`` and load its ``.weights`` (:func:`defi1.yolo.darknet.load_darknet`;
        the heads' masks come from this cfg, so use the cfg that goes with the weights). ``cfg`` may also be a
        built-in name (``"yolov3-tiny"``, ``"yolov3"``, ``"yolov3-spp"``: darknet's released COCO models, see
        :mod:`defi1.yolo.released`) or ``None`` (the released model of the weights' size). ``names``: a ``.names``
        file or a list of class names (COCO's for a built-in cfg)."""
        from defi1.yolo.darknet import load_darknet
        from defi1.yolo.released import resolve_darknet_cfg

        cfg, names = resolve_darknet_cfg(cfg, weights, names)
        model = load_darknet(cfg, weights, class_names=names, input_size=input_size)
        return cls(model, input_size=input_size, **options)

    def preprocess(self, images):
        """Letterbox RGB images into a network batch.

        Returns ``(batch, letterboxes, image_sizes)``: ``(N, input_h, input_w, 3)`` float32 in ``[0, 1]``, the
        :class:`~defi1.boxes.Letterbox` of each image and its ``(width, height)``.
        """
        images = list(images)
        batch = np.empty((len(images), self.input_height, self.input_width, 3), dtype=np.float32)
        letterboxes, sizes = [], []
        for index, image in enumerate(images):
            image = as_rgb_uint8(image)
            canvas, letterbox = letterbox_image(image, self.input_width, self.input_height)
            pixels_to_unit(canvas, out=batch[index])
            letterboxes.append(letterbox)
            sizes.append((image.shape[1], image.shape[0]))
        return batch, letterboxes, sizes

    def infer(self, batch, *, min_objectness=None):
        """The network and the decoding on a preprocessed batch: ``(boxes (N, K, 4)`` xyxy network pixels,
        ``objectness (N, K)``, ``class_probabilities (N, K, C))`` as numpy arrays, ready for
        :func:`~defi1.yolo.decode.postprocess`. One compiled call (:meth:`CompiledForward.detect
        <defi1.yolo.inference.CompiledForward.detect>`, ``K`` the best candidates) when the forward pass offers
        it; otherwise the raw heads are decoded on the host with :func:`~defi1.yolo.decode.decode_heads_numpy`
        (only the rows above ``min_objectness`` when it is given: pass the confidence threshold you will use)."""
        return infer_decoded(self.forward, batch, self.heads, input_size=self.input_size,
                             min_objectness=min_objectness)

    def postprocess(self, decoded, letterboxes, sizes, *, conf_threshold=None, iou_threshold=None):
        """:func:`~defi1.yolo.decode.postprocess` with the detector's settings: one :class:`Detection` per image."""
        boxes, objectness, class_probabilities = decoded
        return postprocess(boxes, objectness, class_probabilities, letterboxes=letterboxes, image_sizes=sizes,
                           conf_threshold=self.conf_threshold if conf_threshold is None else conf_threshold,
                           iou_threshold=self.iou_threshold if iou_threshold is None else iou_threshold,
                           max_detections=self.max_detections, class_names=self.class_names,
                           multi_label=self.multi_label)

    def detect_batch(self, images, *, conf_threshold=None, iou_threshold=None) -> list[Detection]:
        """Detect objects in a list of images with ONE forward pass (sizes may differ: each is letterboxed).

        Args:
            images: list of RGB ``uint8`` arrays ``(height, width, 3)`` (grayscale and RGBA are converted).
            conf_threshold, iou_threshold: override the detector's thresholds for this call.
        Returns:
            one :class:`Detection` per image: boxes ``(K, 4)`` xyxy in pixels of that image, scores, class ids, names.
        """
        images = list(images)
        if not images:
            return []
        batch, letterboxes, sizes = self.preprocess(images)
        conf_threshold = self.conf_threshold if conf_threshold is None else conf_threshold
        return self.postprocess(self.infer(batch, min_objectness=conf_threshold), letterboxes, sizes,
                                conf_threshold=conf_threshold, iou_threshold=iou_threshold)

    def detect(self, images, *, bgr: bool = False, **thresholds) -> list[Detection]:
        """Detect objects in images as users hold them, alone or in a list (like ``model(source)`` of the
        predictors students know).

        Args:
            images: an image file path, a ``PIL.Image``, a numpy array (RGB ``uint8`` ``(height, width, 3)``;
                grayscale ``(H, W)`` and RGBA ``(H, W, 4)`` are converted), a batch array ``(N, H, W, 3)``, or a list
                mixing them (:func:`defi1.images.as_rgb_image`).
            bgr: the arrays are OpenCV frames (BGR, as ``cv2.imread`` and ``cv2.VideoCapture`` give them).
            thresholds: ``conf_threshold``, ``iou_threshold`` for this call.
        Returns:
            one :class:`Detection` per image (a list, also for a single image), boxes in pixels of that image,
            ``image_size`` its ``(width, height)``. Images go through the network ``batch_size`` at a time.
        Raises:
            TypeError / ValueError / FileNotFoundError naming the bad input (``images[2]``, or its file).
        """
        images = _image_list(images, bgr=bgr)
        detections = []
        for start in range(0, len(images), self.batch_size):
            detections.extend(self.detect_batch(images[start:start + self.batch_size], **thresholds))
        return detections

    def __call__(self, images, **options) -> list[Detection]:
        return self.detect(images, **options)


def _image_list(images, *, bgr=False) -> list:
    """RGB ``uint8`` arrays from one image or a list of them (:meth:`Detector.detect`); errors name the input."""
    single = isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, np.ndarray)
                                                                     and images.ndim in (2, 3))
    items = [images] if single else list(images) if isinstance(images, (list, tuple, np.ndarray)) else None
    if items is None:
        raise TypeError(f"expected an image (file path, PIL.Image, numpy array) or a list of them, got "
                        f"{type(images).__name__}")
    converted = []
    for index, item in enumerate(items):
        try:
            converted.append(as_rgb_image(item, bgr=bgr))
        except (TypeError, ValueError) as error:
            where = "image" if single else f"images[{index}]"
            if isinstance(error, DataError):  # a file that cannot be read: its message names it
                raise
            raise type(error)(f"{where}: {error}") from error
    return converted


def infer_decoded(forward, batch, heads, *, input_size=None, min_objectness=None):
    """``forward.detect(batch)`` when the forward pass compiles the decoding with the network (a
    :class:`~defi1.yolo.inference.CompiledForward`), else ``decode_heads_numpy(forward(batch), heads,
    min_objectness=...)`` (only the rows above ``min_objectness`` decoded, when given): decoded
    ``(boxes, objectness, class_probabilities)`` numpy arrays either way."""
    detect = getattr(forward, "detect", None)
    if callable(detect):
        return detect(batch)
    return decode_heads_numpy(forward(batch), heads, input_size=input_size, min_objectness=min_objectness)


def _yolo_head_layers(model):
    from defi1.yolo.layers import yolo_heads

    return yolo_heads(model)


class _ModelCall:
    """Forward pass of a YOLO model that does not carry a darknet cfg (no compiled copy can be built)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        import keras

        outputs = self.model(batch, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float32) for output in outputs]


def _make_forward(model, layers, *, fold_batchnorm, jit_compile=None):
    """The compiled forward pass of :mod:`defi1.yolo.inference` for models built from a cfg; a direct call else."""
    if not layers[0].cfg_text:
        return _ModelCall(model)
    from defi1.yolo.inference import compile_forward

    return compile_forward(model, fold_batchnorm=fold_batchnorm, jit_compile=jit_compile)


def format_detections_txt(detection, image_size=None) -> str:
    """Detections as YOLO prediction lines ``class cx cy w h confidence``, normalised by the image size.

    Args:
        detection: boxes ``(K, 4)`` xyxy pixels of the original image.
        image_size: ``(width, height)`` of that image (default ``detection.image_size``).
    """
    image_size = image_size if image_size is not None else detection.image_size
    if image_size is None:
        raise ValueError("the image size is needed to normalise the boxes (pass image_size=(width, height))")
    width, height = image_size
    centre_size = cxcywh_from_xyxy(detection.boxes) / np.array([width, height, width, height], dtype=np.float64)
    lines = [f"{int(class_id)} {values[0]:.6f} {values[1]:.6f} {values[2]:.6f} {values[3]:.6f} {float(score):.6f}"
             for class_id, values, score in zip(detection.class_ids, centre_size, detection.scores)]
    return "".join(line + "\n" for line in lines)


def save_detections_txt(path, detection, image_size=None) -> Path:
    """Write :func:`format_detections_txt` to ``path`` atomically (an empty file when nothing was detected: the
    evaluator then knows the image was processed). This is the format ``defi1 detect evaluate --pred`` reads."""
    return atomic_write_text(path, format_detections_txt(detection, image_size))
