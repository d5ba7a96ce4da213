"""``defi1 detect convert-darknet`` and ``defi1 detect export-darknet``: darknet weights in and out of Keras."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "convert-darknet", help="Convert a darknet .cfg + .weights into a Keras .keras detector",
        description="Build the network of a darknet cfg (YOLOv3 family), load its .weights exactly (a short, "
                    "too long or mismatching file is an error) and save a .keras model that carries its anchors, "
                    "masks, class names and input size.")
    parser.add_argument("--cfg", help="darknet .cfg file (e.g. yolov3.cfg), or a built-in name: yolov3-tiny, "
                                      "yolov3, yolov3-spp (darknet's released COCO models; default: recognised from "
                                      "the size of --weights)")
    parser.add_argument("--weights", required=True, help="darknet .weights file")
    parser.add_argument("--names", help="class names file, one a line (e.g. coco.names; default COCO's for the "
                                        "built-in cfgs)")
    parser.add_argument("--input-size", type=int, help="default input side stored in the model (multiple of 32; "
                                                       "default: the cfg's width)")
    parser.add_argument("--out", required=True, help="output .keras file")
    parser.set_defaults(handler=convert_darknet)

    parser = subparsers.add_parser(
        "export-darknet", help="Write a Keras detector back as darknet .weights + .cfg",
        description="Write a defi1 YOLO model (.keras) as a darknet .weights file and the .cfg beside it, "
                    "readable by darknet and OpenCV's readNetFromDarknet.")
    parser.add_argument("--model", required=True, help="defi1 YOLO model (.keras)")
    parser.add_argument("--out", required=True, help="output .weights file")
    parser.add_argument("--cfg", help="output .cfg file (default: beside --out with the suffix .cfg)")
    parser.set_defaults(handler=export_darknet)


def convert_darknet(arguments):
    from defi1.files import atomic_save_model
    from defi1.yolo.darknet import load_darknet
    from defi1.yolo.layers import yolo_heads
    from defi1.yolo.released import resolve_darknet_cfg

    _check_keras_suffix(arguments.out)
    cfg, names = resolve_darknet_cfg(arguments.cfg, arguments.weights, arguments.names)
    model = load_darknet(cfg, arguments.weights, class_names=names, input_size=arguments.input_size)
    path = atomic_save_model(model, arguments.out)
    heads = yolo_heads(model)
    print(f"{path}: {model.name}, {model.count_params():,} parameters, {len(heads)} heads (strides "
          f"{', '.join(str(head.stride) for head in heads)}), {heads[0].num_classes} classes, input "
          f"{heads[0].input_size}x{heads[0].input_size}")


def export_darknet(arguments):
    from defi1.files import load_keras_model
    from defi1.yolo.darknet import save_darknet

    weights_path, cfg_path = save_darknet(load_keras_model(arguments.model), arguments.out, arguments.cfg)
    print(f"{weights_path}: darknet weights ({weights_path.stat().st_size:,} bytes)\n{cfg_path}: darknet cfg")


def _check_keras_suffix(path):
    if not str(path).endswith(".keras"):
        raise ValueError(f"{path}: the output model file must end with .keras")
