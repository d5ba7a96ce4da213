"""YOLOv3 networks in Keras 3, built from darknet cfg sections.

Every model is built from a darknet cfg (:mod:`defi1.yolo.cfg`): :func:`build_yolov3` and
:func:`build_yolov3_tiny` generate the cfg of the standard architectures (:mod:`defi1.yolo.architectures`),
:func:`build_from_cfg` takes any cfg of the YOLOv3 family (``yolov3.cfg``, ``yolov3-tiny.cfg``, ``yolov3-spp.cfg``,
``yolov3-voc.cfg`` or a custom one).

Input: ``(batch, height, width, 3)`` RGB floats in ``[0, 1]``, NHWC; height and width multiples of 32 (the largest
stride), so one model runs at 320, 416 or 608. Outputs: one raw head tensor per ``[yolo]`` section in cfg order,
``(batch, height / stride, width / stride, len(mask) * (5 + num_classes))`` in darknet's channel order, each passed
through a :class:`defi1.yolo.layers.YoloHead` carrying the anchors, stride, class names... The first head also
keeps the cfg text so that the model can be written back to darknet (:func:`defi1.yolo.darknet.save_darknet`).

Darknet's arithmetic is reproduced exactly: leaky ReLU with slope 0.1, batch norm as ``(x - mean) /
(sqrt(variance) + 1e-6)`` (:class:`defi1.yolo.layers.DarknetBatchNormalization`), convolutions padded by ``size //
2`` on every side when ``pad=1`` (for a 3 × 3 stride-2 convolution that is one pixel top and left, unlike Keras'
``"same"`` which pads bottom and right), nearest-neighbour upsampling, route concatenation in the listed order,
shortcut addition, and darknet's max-pool padding (:class:`defi1.yolo.layers.DarknetMaxPool`).

Keras layer names carry the darknet layer index: ``conv_12``, ``batchnorm_12``, ``leaky_12``, ``shortcut_4``,
``route_83``, ``upsample_85``, ``maxpool_11``; heads are ``yolo_head_0``, ``yolo_head_1`` ... in output order.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import warnings

import keras
import numpy as np

from defi1.errors import ConfigError
from defi1.yolo import architectures
from defi1.yolo.cfg import check_supported, format_cfg, parse_cfg, read_cfg_text
from defi1.yolo.layers import DarknetBatchNormalization, DarknetMaxPool, YoloHead, yolo_heads

LEAKY_SLOPE = 0.1
_LAYER_NAME = re.compile(r"^(conv|batchnorm|leaky|relu|logistic|zeropad|shortcut|route|upsample|maxpool)_(\d+)$")


@dataclasses.dataclass
class LayerPlan:
    """What one darknet layer computes, worked out from the cfg alone (no Keras).

    Attributes:
        index: darknet layer index (0 = first section after ``[net]``).
        section: the cfg :class:`~defi1.yolo.cfg.Section`.
        inputs: indices of the layers it reads (``-1`` = the network input).
        channels: output channels.
        stride: input pixels per output pixel.
        feeds_yolo: for a convolution, ``True`` if the next section is a ``[yolo]`` (a head convolution).
    """

    index: int
    section: object
    inputs: list
    channels: int
    stride: int
    feeds_yolo: bool = False

    @property
    def type(self) -> str:
        return self.section.type


def prepare_sections(cfg, *, num_classes=None, class_names=None, input_size=None):
    """Parse and check a cfg, apply a new class count / input size, return ``(sections, cfg_text, source)``.

    With ``num_classes`` (or ``class_names``) given, every ``[yolo]`` gets ``classes=C`` and the convolution
    feeding it ``filters = len(mask) * (5 + C)``; with ``input_size``, ``[net] width`` and ``height`` are set.
    ``cfg_text`` is the original text when nothing changed, else the rewritten cfg.
    """
    text, source = read_cfg_text(cfg)
    sections = parse_cfg(text, source=source)
    check_supported(sections, source=source)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if num_classes is None:
            num_classes = len(class_names)
        elif len(class_names) != int(num_classes):
            raise ValueError(f"{len(class_names)} class names given for num_classes={num_classes}")
    changed = False
    if num_classes is not None:
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        for position, section in enumerate(sections):
            if section.type != "yolo":
                continue
            previous = sections[position - 1]
            if previous.type != "convolutional":
                raise ConfigError(f"{source}: line {section.line}: [yolo] must follow a [convolutional] section "
                                  f"(found [{previous.type}] at line {previous.line})")
            mask = _mask(section, source)
            filters = str(len(mask) * (5 + num_classes))
            if section.options.get("classes") != str(num_classes) or previous.options.get("filters") != filters:
                section.options["classes"] = str(num_classes)
                previous.options["filters"] = filters
                changed = True
    if input_size is not None:
        input_size = int(input_size)
        net = sections[0]
        if net.options.get("width") != str(input_size) or net.options.get("height") != str(input_size):
            net.options["width"] = net.options["height"] = str(input_size)
            changed = True
    return sections, (format_cfg(sections) if changed else text), source


def _mask(section, source):
    anchors = section.get_floats("anchors", source=source)
    if len(anchors) % 2:
        raise ConfigError(f"{source}: line {section.key_lines['anchors']}: [yolo] anchors has an odd number of "
                          f"values ({len(anchors)}); expected width,height pairs")
    count = len(anchors) // 2
    if "mask" in section.options:
        mask = section.get_ints("mask", source=source)
    else:
        mask = list(range(count))
    for index in mask:
        if not 0 <= index < count:
            raise ConfigError(f"{source}: line {section.key_lines.get('mask', section.line)}: [yolo] mask index "
                              f"{index} outside the {count} anchors")
    return mask


def _layer_reference(value, index, section, key, source):
    target = value + index if value < 0 else value
    if not 0 <= target < index:
        raise ConfigError(f"{source}: line {section.key_lines.get(key, section.line)}: [{section.type}] at line "
                          f"{section.line} (layer {index}): {key}={value} refers to layer {target}, expected an "
                          f"earlier layer (0 to {index - 1})")
    return target


def plan_network(sections, *, source="<cfg>") -> list[LayerPlan]:
    """Work out inputs, channels and strides of every layer of checked cfg ``sections`` (``[net]`` first).

    Raises :class:`ConfigError` naming the section and line for inconsistent graphs (shortcut between different
    shapes, route over different strides, ``[yolo]`` not after a convolution or with the wrong filter count).
    """
    plans: list[LayerPlan] = []
    channels, stride = 3, 1
    layers = sections[1:]
    for index, section in enumerate(layers):
        previous = index - 1
        if section.type == "convolutional":
            filters = section.get_int("filters", 1, source=source)
            size = section.get_int("size", 1, source=source)
            conv_stride = section.get_int("stride", 1, source=source)
            if filters < 1 or size < 1 or conv_stride < 1:
                raise ConfigError(f"{source}: line {section.line}: [convolutional] (layer {index}): filters, size "
                                  f"and stride must be positive")
            feeds_yolo = index + 1 < len(layers) and layers[index + 1].type == "yolo"
            plan = LayerPlan(index, section, [previous], filters, stride * conv_stride, feeds_yolo)
        elif section.type == "shortcut":
            target = _layer_reference(section.get_int("from", source=source), index, section, "from", source)
            if plans[target].channels != channels or plans[target].stride != stride:
                raise ConfigError(f"{source}: line {section.line}: [shortcut] (layer {index}) adds layer {target} "
                                  f"({plans[target].channels} channels, stride {plans[target].stride}) to layer "
                                  f"{previous} ({channels} channels, stride {stride}); expected equal shapes")
            plan = LayerPlan(index, section, [previous, target], channels, stride)
        elif section.type == "route":
            targets = [_layer_reference(value, index, section, "layers", source)
                       for value in section.get_ints("layers", source=source)]
            if not targets:
                raise ConfigError(f"{source}: line {section.line}: [route] (layer {index}) lists no layer")
            strides = {plans[target].stride for target in targets}
            if len(strides) != 1:
                raise ConfigError(f"{source}: line {section.line}: [route] (layer {index}) concatenates layers "
                                  f"{targets} with different strides {sorted(strides)}")
            plan = LayerPlan(index, section, targets, sum(plans[target].channels for target in targets),
                             strides.pop())
        elif section.type == "upsample":
            factor = section.get_int("stride", 2, source=source)
            if factor < 1 or stride % factor:
                raise ConfigError(f"{source}: line {section.line}: [upsample] (layer {index}) stride={factor} "
                                  f"after a stride-{stride} layer; expected a divisor of {stride}")
            plan = LayerPlan(index, section, [previous], channels, stride // factor)
        elif section.type == "maxpool":
            size = section.get_int("size", 1, source=source)
            pool_stride = section.get_int("stride", 1, source=source)
            if size < 1 or pool_stride < 1:
                raise ConfigError(f"{source}: line {section.line}: [maxpool] (layer {index}): size and stride "
                                  f"must be positive")
            plan = LayerPlan(index, section, [previous], channels, stride * pool_stride)
        else:  # yolo
            if index == 0 or layers[previous].type != "convolutional":
                raise ConfigError(f"{source}: line {section.line}: [yolo] (layer {index}) must follow a "
                                  f"[convolutional] section")
            mask = _mask(section, source)
            num_classes = section.get_int("classes", 20, source=source)
            expected = len(mask) * (5 + num_classes)
            if channels != expected:
                raise ConfigError(f"{source}: line {layers[previous].key_lines.get('filters', layers[previous].line)}"
                                  f": [convolutional] (layer {previous}) feeding the [yolo] at line {section.line} "
                                  f"has filters={channels}; expected len(mask) * (5 + classes) = {len(mask)} * "
                                  f"(5 + {num_classes}) = {expected}")
            plan = LayerPlan(index, section, [previous], channels, stride)
        channels, stride = plan.channels, plan.stride
        plans.append(plan)
    if not any(plan.type == "yolo" for plan in plans):
        raise ConfigError(f"{source}: no [yolo] section: not a YOLO detector")
    return plans


def _convolution_padding(section, source):
    size = section.get_int("size", 1, source=source)
    if section.get_int("pad", 0, source=source):
        return size // 2
    return section.get_int("padding", 0, source=source)


def build_from_sections(sections, cfg_text, source, *, class_names=None, name=None, fold_batchnorm=False, dtype=None,
                        darknet_header=None) -> keras.Model:
    """Build the Keras model of checked cfg ``sections`` (see the module docstring for layers and names).

    Args:
        sections: the cfg's sections, checked (:func:`prepare_sections`, or :func:`model_sections` of a model).
        cfg_text: the cfg text the first head keeps. source: the cfg's name in error messages.
        class_names: ``C`` names stored in the heads. name: the Keras model name (default: from ``source``).
        fold_batchnorm: build the convolutions with a bias and no batch norm (inference copies).
        dtype: Keras dtype policy of every layer (``"mixed_float16"`` ...). darknet_header: stored in head 0.
    """
    plans = plan_network(sections, source=source)
    net = sections[0]
    width = net.get_int("width", 416, source=source)
    height = net.get_int("height", 416, source=source)
    max_stride = max(plan.stride for plan in plans)
    if width % max_stride or height % max_stride or width < 1 or height < 1:
        raise ValueError(f"{source}: input size {width}x{height} is not a multiple of the network's largest "
                         f"stride {max_stride}")
    if width != height:
        warnings.warn(f"{source}: non-square [net] size {width}x{height}; the heads record input_size={width}",
                      stacklevel=3)
    head_sections = [plan for plan in plans if plan.type == "yolo"]
    num_classes_per_head = {plan.section.get_int("classes", 20, source=source) for plan in head_sections}
    if len(num_classes_per_head) != 1:
        raise ConfigError(f"{source}: the [yolo] sections disagree on classes: {sorted(num_classes_per_head)}")
    num_classes = num_classes_per_head.pop()
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for a cfg with classes={num_classes}")

    inputs = keras.Input(shape=(None, None, 3), name="image", dtype="float32")
    tensors = []
    outputs = []
    for plan in plans:
        section, index = plan.section, plan.index
        previous = tensors[-1] if tensors else inputs
        if plan.type == "convolutional":
            x = _convolution(previous, section, index, source, fold_batchnorm=fold_batchnorm, dtype=dtype)
        elif plan.type == "shortcut":
            x = keras.layers.Add(name=f"shortcut_{index}", dtype=dtype)([previous, tensors[plan.inputs[1]]])
        elif plan.type == "route":
            if len(plan.inputs) == 1:
                x = tensors[plan.inputs[0]]
            else:
                x = keras.layers.Concatenate(axis=-1, name=f"route_{index}", dtype=dtype)(
                    [tensors[target] for target in plan.inputs])
        elif plan.type == "upsample":
            factor = section.get_int("stride", 2, source=source)
            x = keras.layers.UpSampling2D(size=factor, interpolation="nearest", name=f"upsample_{index}",
                                          dtype=dtype)(previous)
        elif plan.type == "maxpool":
            size = section.get_int("size", 1, source=source)
            padding = section.get_int("padding", size - 1, source=source)
            x = DarknetMaxPool(pool_size=size, strides=section.get_int("stride", 1, source=source),
                               padding=padding, name=f"maxpool_{index}", dtype=dtype)(previous)
        else:
            all_anchors = section.get_floats("anchors", source=source)
            all_anchors = [[all_anchors[2 * i], all_anchors[2 * i + 1]] for i in range(len(all_anchors) // 2)]
            mask = _mask(section, source)
            head_index = len(outputs)
            x = YoloHead(
                anchors=[all_anchors[i] for i in mask], num_classes=num_classes, stride=plan.stride,
                class_names=class_names, input_size=width, head_index=head_index, mask=mask,
                all_anchors=all_anchors, ignore_threshold=section.get_float("ignore_thresh", 0.5, source=source),
                cfg_text=cfg_text if head_index == 0 else None,
                darknet_header=darknet_header if head_index == 0 else None,
                name=f"yolo_head_{head_index}", dtype=dtype,
            )(previous)
            outputs.append(x)
        tensors.append(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name or _model_name(source))


def _model_name(source):
    stem = source.rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.endswith(".cfg") else stem
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip("_")
    return stem if stem and not stem.startswith("cfg_text") else "yolo"


def _convolution(x, section, index, source, *, fold_batchnorm, dtype):
    filters = section.get_int("filters", 1, source=source)
    size = section.get_int("size", 1, source=source)
    stride = section.get_int("stride", 1, source=source)
    padding = _convolution_padding(section, source)
    batch_normalize = bool(section.get_int("batch_normalize", 0, source=source))
    if padding == 0:
        keras_padding = "valid"
    elif stride == 1 and size % 2 == 1 and padding == size // 2:
        keras_padding = "same"  # identical to darknet's symmetric padding at stride 1
    else:
        x = keras.layers.ZeroPadding2D(padding=padding, name=f"zeropad_{index}", dtype=dtype)(x)
        keras_padding = "valid"
    x = keras.layers.Conv2D(filters, size, strides=stride, padding=keras_padding,
                            use_bias=not batch_normalize or fold_batchnorm, name=f"conv_{index}", dtype=dtype)(x)
    if batch_normalize and not fold_batchnorm:
        x = DarknetBatchNormalization(name=f"batchnorm_{index}", dtype=dtype)(x)
    activation = section.options.get("activation", "logistic")
    if activation == "leaky":
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"leaky_{index}", dtype=dtype)(x)
    elif activation == "relu":
        x = keras.layers.ReLU(name=f"relu_{index}", dtype=dtype)(x)
    elif activation == "logistic":
        x = keras.layers.Activation("sigmoid", name=f"logistic_{index}", dtype=dtype)(x)
    return x


def build_from_cfg(cfg, *, num_classes=None, class_names=None, input_size=None, name=None) -> keras.Model:
    """Build a YOLOv3-family model from a darknet cfg.

    Args:
        cfg: path of a ``.cfg`` file or its text.
        num_classes: class count; when given, the ``[yolo]`` ``classes`` and the filters of the convolutions
            feeding them (``len(mask) * (5 + C)``) are rewritten. Default: the cfg's ``classes``.
        class_names: optional list of ``C`` names stored in the heads (sets ``num_classes`` when that is omitted).
        input_size: default square input side stored in the heads (a multiple of 32); default the cfg's
            ``[net] width``. The model itself accepts any multiple of 32.
        name: Keras model name (default: the cfg file's name).

    Returns:
        A ``keras.Model``: input ``(batch, H, W, 3)`` RGB in ``[0, 1]``; outputs, one per ``[yolo]`` in cfg order,
        ``(batch, H / stride, W / stride, len(mask) * (5 + C))`` raw logits through :class:`YoloHead` layers.

    Raises:
        ConfigError: unsupported section or key, inconsistent graph (message names the file, section and line).
        ValueError: an input size that is not a multiple of the largest stride.
    """
    sections, cfg_text, source = prepare_sections(cfg, num_classes=num_classes, class_names=class_names,
                                                  input_size=input_size)
    return build_from_sections(sections, cfg_text, source, class_names=class_names, name=name)


def build_yolov3(*, num_classes, input_size=416, anchors=None, class_names=None, masks=None) -> keras.Model:
    """YOLOv3 (Darknet-53 backbone, heads at strides 32, 16 and 8) for ``num_classes`` classes.

    Args:
        num_classes: number of classes ``C``; heads have ``3 * (5 + C)`` channels.
        input_size: default input side (multiple of 32) recorded in the heads; the model accepts any multiple of 32.
        anchors: ``(9, 2)`` ``[width, height]`` pixels of the network input; default COCO anchors
            (:data:`defi1.yolo.anchors.YOLOV3_ANCHORS`).
        class_names: optional ``C`` names.
        masks: anchor indices per head; default ``[[6, 7, 8], [3, 4, 5], [0, 1, 2]]``.
    """
    cfg_text = architectures.yolov3_cfg(num_classes=num_classes, input_size=input_size, anchors=anchors, masks=masks)
    return build_from_cfg(cfg_text, class_names=class_names, name="yolov3")


def build_yolov3_tiny(*, num_classes, input_size=416, anchors=None, class_names=None, masks=None) -> keras.Model:
    """tiny-YOLOv3 (heads at strides 32 and 16) for ``num_classes`` classes.

    Arguments as :func:`build_yolov3`; anchors ``(6, 2)`` (default :data:`defi1.yolo.anchors.YOLOV3_TINY_ANCHORS`),
    masks default ``[[3, 4, 5], [0, 1, 2]]`` as in the current ``yolov3-tiny.cfg``.
    """
    cfg_text = architectures.yolov3_tiny_cfg(num_classes=num_classes, input_size=input_size, anchors=anchors,
                                             masks=masks)
    return build_from_cfg(cfg_text, class_names=class_names, name="yolov3_tiny")


def model_cfg_text(model) -> str:
    """The darknet cfg a defi1 YOLO model was built from (kept in its first :class:`YoloHead`)."""
    cfg_text = yolo_heads(model)[0].cfg_text
    if not cfg_text:
        raise ValueError(f"model {model.name!r} does not carry its darknet cfg (first YoloHead has no cfg_text)")
    return cfg_text


def model_sections(model) -> list:
    """The sections of the cfg a defi1 YOLO model was built from (:func:`model_cfg_text`), parsed once per cfg text
    and shared between callers: read them, do not modify them."""
    return list(_parsed_cfg(model_cfg_text(model), model.name))


def model_plan(model) -> list[LayerPlan]:
    """:func:`plan_network` of a model's own cfg (worked out once per cfg text; read only)."""
    return list(_planned_cfg(model_cfg_text(model), model.name))


def network_stride(model) -> int:
    """The largest stride of a defi1 YOLO model: input sides must be multiples of it (32 for YOLOv3)."""
    return max(plan.stride for plan in model_plan(model))


@functools.lru_cache(maxsize=16)
def _parsed_cfg(cfg_text, source):
    return tuple(parse_cfg(cfg_text, source=source))


@functools.lru_cache(maxsize=16)
def _planned_cfg(cfg_text, source):
    return tuple(plan_network(list(_parsed_cfg(cfg_text, source)), source=source))


def darknet_layer_index(layer_name):
    """Darknet layer index encoded in a defi1 Keras layer name (``"conv_12"`` -> 12), or ``None``."""
    match = _LAYER_NAME.match(layer_name)
    return int(match.group(2)) if match else None


def backbone_end(sections, *, source="<cfg>") -> int:
    """Index of the last darknet layer of the backbone (the part frozen in the first stage of training).

    Darknet-53 models (cfgs with ``[shortcut]`` layers before the first ``[yolo]``): the last shortcut before it,
    layer 74 for ``yolov3.cfg`` / ``-spp`` / ``-voc`` (the 52 convolutions of ``darknet53.conv.74``). Models without
    shortcuts (tiny-YOLOv3): the layers before the first branch, i.e. before the layer that the first
    ``[route]`` after a ``[yolo]`` reads; for ``yolov3-tiny.cfg`` layers 0 to 12 (up to the 1024-filter
    convolution), the part shared by both heads before head-specific layers.
    """
    plans = plan_network(sections, source=source)
    first_yolo = next(plan.index for plan in plans if plan.type == "yolo")
    shortcuts = [plan.index for plan in plans[:first_yolo] if plan.type == "shortcut"]
    if shortcuts:
        return shortcuts[-1]
    branch = next((min(plan.inputs) for plan in plans[first_yolo:] if plan.type == "route"), None)
    if branch is None:
        return first_yolo - 2
    return branch - 1


def backbone_layer_names(model) -> list[str]:
    """Names of the model's Keras layers that belong to the backbone (see :func:`backbone_end`), in model order.

    Freeze them (``layer.trainable = False``) for the first stage of transfer learning.
    """
    end = backbone_end(model_sections(model), source=model.name)
    return [layer.name for layer in model.layers
            if (index := darknet_layer_index(layer.name)) is not None and index <= end]


def check_input_shape(shape, *, max_stride=32, source="input"):
    """Raise ``ValueError`` unless ``shape`` is ``(batch, height, width, 3)`` with sides multiples of ``max_stride``.

    The network is not rounded silently: an image must be letterboxed to such a size first
    (:func:`defi1.boxes.letterbox_image`).
    """
    shape = tuple(shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"{source}: expected a batch of RGB images (batch, height, width, 3), got shape {shape}")
    height, width = shape[1], shape[2]
    if height % max_stride or width % max_stride or height < max_stride or width < max_stride:
        raise ValueError(f"{source}: input side {height}x{width} is not a multiple of {max_stride} (the network's "
                         f"largest stride); letterbox the image to e.g. 416x416 first")


def initialize_head_priors(model, *, objectness_prior=0.01, class_prior=None) -> list[str]:
    """Set the biases of the convolutions feeding the :class:`~defi1.yolo.layers.YoloHead` layers so that, before
    any training, every prediction says "object" with probability ``objectness_prior`` and each class with
    probability ``class_prior`` (default ``1 / C``, 0.5 for a single class); the box terms' biases are set to 0.

    Only for training from random weights: with a zero bias every one of the thousands of background predictions
    starts at probability 0.5, the objectness loss of the first steps is hundreds of times that of the objects, and
    the first epochs are spent pushing them all down (the prior-probability initialisation of Lin et al., "Focal
    Loss for Dense Object Detection", 2017). Darknet or ``.keras`` weights loaded afterwards replace these values.

    Returns the names of the convolutions changed (a head fed by a convolution without a bias, as in a cfg whose
    last convolution is batch-normalised, is left alone). Raises ``ValueError`` for priors outside ``(0, 1)``.
    """
    heads = yolo_heads(model)
    class_prior = min(1.0 / heads[0].num_classes, 0.5) if class_prior is None else class_prior
    for prior in (objectness_prior, class_prior):
        if not 0.0 < prior < 1.0:
            raise ValueError(f"priors must be probabilities in (0, 1), got {prior}")
    changed = []
    for head in heads:
        convolution = head.input._keras_history[0]
        if not isinstance(convolution, keras.layers.Conv2D) or not convolution.use_bias:
            continue  # a cfg whose head convolution is batch-normalised: no bias to set
        depth = 5 + head.num_classes
        bias = np.zeros((len(head.anchors), depth), dtype=np.float32)
        bias[:, 4] = math.log(objectness_prior / (1.0 - objectness_prior))
        bias[:, 5:] = math.log(class_prior / (1.0 - class_prior))
        convolution.bias.assign(bias.reshape(-1))
        changed.append(convolution.name)
    return changed
