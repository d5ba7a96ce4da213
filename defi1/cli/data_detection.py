"""``defi1 data convert``, ``defi1 data check``, ``defi1 data shapes``, ``defi1 data paste``: detection datasets."""

from __future__ import annotations

FORMAT_CHOICES = ("yolo", "voc", "keras-yolo3", "labelme", "coco")


def register(subparsers):
    parser = subparsers.add_parser(
        "convert", help="convert detection annotations between YOLO, Pascal VOC, keras-yolo3, LabelMe and COCO",
        description="Convert a detection dataset. Sources: yolo (dataset YAML or folder with images/ and labels/), "
                    "voc (folder with Annotations/ and JPEGImages/, or XML files beside the images), keras-yolo3 "
                    "(the 'path x1,y1,x2,y2,class ...' file), labelme (folder of LabelMe JSON files), coco (the "
                    "JSON file). Images are copied into the output. VOC's difficult flag is kept (a .difficult "
                    "sidecar beside YOLO labels).")
    parser.add_argument("--from", dest="source_format", required=True, choices=FORMAT_CHOICES, help="source format")
    parser.add_argument("--to", dest="target_format", required=True, choices=FORMAT_CHOICES, help="target format")
    parser.add_argument("--source", required=True, help="source file or folder")
    parser.add_argument("--out", required=True,
                        help="output folder (or file for keras-yolo3 .txt/.csv and coco .json targets)")
    parser.add_argument("--names", default=None,
                        help="class names: a file with one name a line or a dataset YAML (needed for keras-yolo3 "
                             "sources; fixes the class order of voc/labelme sources, default: sorted names)")
    parser.add_argument("--no-copy-images", dest="copy_images", action="store_false",
                        help="write annotations only (the output then refers to the source images)")
    parser.add_argument("--strict", action="store_true",
                        help="stop on any invalid object (no area, outside the image, unknown class) instead of "
                             "leaving it out and listing it")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the dataset already in OUT (default: refuse, so that two datasets never mix)")
    parser.add_argument("--max-problems", type=int, default=50, help="problems listed per kind (default 50)")
    parser.set_defaults(handler=convert_command)

    parser = subparsers.add_parser(
        "check", help="count objects per class and split, box sizes, and list every problem of a detection dataset",
        description="Check a detection dataset (a dataset YAML in any Ultralytics/Roboflow form, a folder with "
                    "images/ and labels/, Pascal VOC, COCO JSON or LabelMe): every malformed label line, class ids "
                    "out of range or unknown, boxes outside the image (clipped) or empty (dropped), boxes annotated "
                    "twice, images without objects (backgrounds), labels without image, unreadable images, the "
                    "same image in two splits; each with its file and line or object. Exits with status 1 when it "
                    "finds an error (warnings alone: 0).")
    parser.add_argument("--data", required=True,
                        help="dataset YAML, COCO JSON, or a dataset folder (YOLO, Pascal VOC, COCO, LabelMe)")
    parser.add_argument("--names", default=None, help="class names file, when the dataset does not give them")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 on warnings too")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the report as JSON to this file")
    parser.add_argument("--headers-only", action="store_true",
                        help="read image headers and the end of JPEG/PNG files only (faster; finds truncated files "
                             "but not damage inside a complete one)")
    parser.add_argument("--max-problems", type=int, default=50, help="problems listed per kind (default 50)")
    parser.set_defaults(handler=check_command)

    parser = subparsers.add_parser(
        "shapes", help="write the built-in synthetic dataset of coloured shapes (YOLO format, offline)",
        description="Write a YOLO-format dataset of coloured geometric shapes (circle, square, triangle, star, "
                    "cross) on noisy or textured backgrounds: OUT/images/{train,val,test}, OUT/labels/..., "
                    "OUT/data.yaml. Deterministic for a seed.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", type=int, required=True, help="number of training images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--val", type=int, default=None, help="validation images (default images // 4)")
    parser.add_argument("--test", type=int, default=None, help="test images (default images // 4; 0 for none)")
    parser.add_argument("--max-objects", type=int, default=5, help="at most this many shapes per image (default 5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in OUT")
    parser.set_defaults(handler=shapes_command)

    parser = subparsers.add_parser(
        "paste", help="paste your object crops onto your backgrounds to make a YOLO-format dataset",
        description="OBJECTS holds one sub-folder per class of object crops (PNG transparency respected); "
                    "BACKGROUNDS holds background photos. Each image pastes a few crops at random scale, position "
                    "and flip; boxes are the extent of the pasted pixels.")
    parser.add_argument("--objects", required=True, help="folder of class sub-folders of crops")
    parser.add_argument("--backgrounds", required=True, help="folder of background images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", type=int, required=True, help="number of training images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=416,
                        help="square output side in pixels; 0 keeps each background's size (default 416)")
    parser.add_argument("--val", type=int, default=None, help="validation images (default images // 4)")
    parser.add_argument("--test", type=int, default=None, help="test images (default images // 4; 0 for none)")
    parser.add_argument("--min-objects", type=int, default=1, help="at least this many objects per image (default 1)")
    parser.add_argument("--max-objects", type=int, default=4, help="at most this many objects per image (default 4)")
    parser.add_argument("--min-scale", type=float, default=0.15,
                        help="smallest object side as a fraction of the image's shorter side (default 0.15)")
    parser.add_argument("--max-scale", type=float, default=0.5, help="largest, likewise (default 0.5)")
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="never flip the crops")
    parser.add_argument("--format", dest="image_format", choices=("jpg", "png"), default="jpg",
                        help="image format (default jpg)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in OUT")
    parser.set_defaults(handler=paste_command)


def convert_command(arguments):
    from defi1.detection.formats import convert_dataset
    from defi1.detection.problems import format_problems, summary_line

    problems = []
    out = convert_dataset(arguments.source, arguments.out, source_format=arguments.source_format,
                          target_format=arguments.target_format, names=arguments.names,
                          copy_images=arguments.copy_images, strict=arguments.strict, overwrite=arguments.overwrite,
                          problems=problems)
    if problems:
        print("\n".join(format_problems(problems, max_per_kind=arguments.max_problems, indent="")))
        print(f"{len(problems)} problem(s) found and handled as listed: {summary_line(problems)}")
    print(f"converted {arguments.source} ({arguments.source_format}) to {arguments.target_format}: {out}")
    return 0


def check_command(arguments):
    from defi1.detection.check import check_dataset
    from defi1.detection.formats import read_names
    from defi1.files import atomic_write_json

    report = check_dataset(arguments.data, names=read_names(arguments.names),
                           decode_images=not arguments.headers_only, progress=True)
    print(report.format(max_problems=arguments.max_problems))
    if arguments.json_path:
        atomic_write_json(arguments.json_path, report.to_dict())
        print(f"report written to {arguments.json_path}")
    if report.has_errors:
        print("defi1: check failed: errors found (see above)")
        return 1
    if arguments.strict and not report.ok:
        print("defi1: check failed (--strict): warnings found")
        return 1
    return 0


def shapes_command(arguments):
    from defi1.detection.shapes import ShapesSettings, generate_shapes_dataset

    data_yaml = generate_shapes_dataset(arguments.out, num_images=arguments.images, seed=arguments.seed,
                                        image_size=arguments.size, num_val=arguments.val, num_test=_test_count(arguments),
                                        settings=ShapesSettings(image_size=arguments.size,
                                                                max_objects=arguments.max_objects),
                                        overwrite=arguments.overwrite, progress=True)
    print(f"shapes dataset written; dataset file: {data_yaml}")
    return 0


def paste_command(arguments):
    from defi1.detection.paste import PasteSettings, generate_paste_dataset

    settings = PasteSettings(objects_per_image=(arguments.min_objects, arguments.max_objects),
                             scale_range=(arguments.min_scale, arguments.max_scale), flip=arguments.flip,
                             image_size=arguments.size or None)
    data_yaml = generate_paste_dataset(arguments.objects, arguments.backgrounds, arguments.out,
                                       num_images=arguments.images, seed=arguments.seed, num_val=arguments.val,
                                       num_test=_test_count(arguments), settings=settings,
                                       image_format=arguments.image_format, overwrite=arguments.overwrite,
                                       progress=True)
    print(f"pasted dataset written; dataset file: {data_yaml}")
    return 0


def _test_count(arguments):
    """``--test``, by default a quarter of ``--images`` (at least 1): the course always keeps a test set."""
    return max(1, arguments.images // 4) if arguments.test is None else arguments.test
