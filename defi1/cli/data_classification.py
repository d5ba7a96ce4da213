"""``defi1 data digits``, ``defi1 data split`` and ``defi1 data download``: classification datasets."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "digits", help="write scikit-learn's handwritten digits as a class-per-folder image tree (offline)",
        description="Write the 1797 built-in 8x8 digits as PNG files OUT_DIR/<digit>/digit_<index>.png.")
    parser.add_argument("out_dir", help="output folder (created; must be empty)")
    parser.add_argument("--scale", type=int, default=4,
                        help="enlargement factor by pixel repetition (default 4: 32x32)")
    parser.add_argument("--max-per-class", type=int, default=None, help="keep only the first N images of each digit")
    parser.set_defaults(handler=digits_command)

    parser = subparsers.add_parser(
        "split", help="split a dataset into train / val / test folders (stratified, seeded, leakage check)",
        description="Split a class-per-folder dataset into OUT_DIR/{train,val,test}/<class>/ (stratified by class, "
                    "deterministic for a seed; files are copied). A detection dataset (a folder with images/ and "
                    "labels/, a dataset YAML, Pascal VOC, COCO JSON) is split into a YOLO dataset by "
                    "defi1.detection.splits.")
    parser.add_argument("source", help="dataset folder: one sub-folder per class, or a detection dataset (images/ + "
                                       "labels/, a dataset YAML, Pascal VOC, COCO)")
    parser.add_argument("out_dir", help="output folder (created; must be empty)")
    parser.add_argument("--test-size", type=float, default=0.25, help="fraction held out for test (default 0.25)")
    parser.add_argument("--val-size", type=float, default=0.2,
                        help="fraction of the remaining images held out for validation (default 0.2)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--link", action="store_true", help="hard-link files instead of copying (classification)")
    parser.set_defaults(handler=split_command)

    parser = subparsers.add_parser(
        "download", help="download MNIST, Fashion-MNIST or CIFAR-10 (keras.datasets; online) as image folders",
        description="Download a keras.datasets dataset (cached in ~/.keras/datasets) and write OUT_DIR/train/<class>/ "
                    "and OUT_DIR/test/<class>/ PNG files. Needs an internet connection the first time.")
    parser.add_argument("name", choices=("mnist", "fashion_mnist", "cifar10"), help="dataset")
    parser.add_argument("out_dir", help="output folder (created; must be empty)")
    parser.add_argument("--max-per-class", type=int, default=None, help="keep only the first N images of each class")
    parser.set_defaults(handler=download_command)


def digits_command(arguments):
    from defi1.classification.data import scan_class_folders
    from defi1.classification.datasets import write_digits_tree

    out_dir = write_digits_tree(arguments.out_dir, scale=arguments.scale, max_per_class=arguments.max_per_class,
                                progress=True)
    dataset = scan_class_folders(out_dir, check_images=False)
    print(f"wrote {len(dataset.paths)} digit images in {len(dataset.class_names)} class folders to {out_dir}")


def split_command(arguments):
    from defi1.split import split_folder

    report = split_folder(arguments.source, arguments.out_dir, test_size=arguments.test_size,
                          val_size=arguments.val_size, seed=arguments.seed, link=arguments.link)
    print("\n".join(report.lines()))
    return 0


def download_command(arguments):
    from defi1.classification.datasets import download_keras_dataset

    out_dir = download_keras_dataset(arguments.name, arguments.out_dir, max_per_class=arguments.max_per_class,
                                     progress=True)
    print(f"wrote {arguments.name} to {out_dir}/train and {out_dir}/test")
