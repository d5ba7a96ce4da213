"""YOLO label files and dataset YAML."""

import numpy as np
import pytest

from defi1.detection.labels import (DetectionSample, find_dataset_yaml, label_path_for, labels_from_pixels,
                                    list_samples, load_dataset_yaml, load_ground_truth, parse_label_file,
                                    pixels_from_labels, prepare_dataset_folder, read_difficult_flags,
                                    read_yolo_labels, write_dataset_yaml, write_yolo_labels)
from defi1.errors import ConfigError, DataError

pytestmark = pytest.mark.backend_agnostic  # numpy only: must pass under every Keras backend


def test_course_example(tmp_path):
    # The course: box (6, 21)-(293, 202) in a 300×208 image is "0 0.498333 0.536058 0.956667 0.870192".
    labels = labels_from_pixels([[6, 21, 293, 202]], (300, 208))
    path = write_yolo_labels(tmp_path / "x.txt", [0], labels)
    assert path.read_text() == "0 0.498333 0.536058 0.956667 0.870192\n"
    class_ids, boxes = read_yolo_labels(path)
    assert class_ids.tolist() == [0]
    np.testing.assert_allclose(pixels_from_labels(boxes, (300, 208)), [[6, 21, 293, 202]], atol=1e-3)
    boxes_pixels, class_ids = load_ground_truth(DetectionSample(tmp_path / "x.png", path), (300, 208))
    assert np.round(boxes_pixels).tolist() == [[6, 21, 293, 202]] and class_ids.tolist() == [0]


def test_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0 0.5 0.5 0.1 0.1\n\n1 0.5 0.5 0.1\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 3: 4 values, expected 5"):
        read_yolo_labels(path)
    path.write_text("0 0.5 0.5 0.1 0.1\n1.5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"line 2: class '1.5' is not a non-negative integer"):
        read_yolo_labels(path)
    path.write_text("0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"line 2: class 3 out of range \(expected 0..2\)"):
        read_yolo_labels(path, num_classes=3)
    path.write_text("0 150 80 20 10\n")
    with pytest.raises(DataError, match="not normalised"):
        read_yolo_labels(path)
    path.write_text("0 abc 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match="line 1: not a number"):
        read_yolo_labels(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_yolo_labels(tmp_path / "missing.txt")


def test_outside_boxes_are_clipped_and_empty_ones_dropped(tmp_path):
    path = tmp_path / "x.txt"
    # Box 1 spans x in [0.8, 1.2]: clipped to [0.8, 1.0]. Box 2 has zero width: dropped.
    path.write_text("0 1.0 0.5 0.4 0.2\n1 0.5 0.5 0.0 0.2\n2 0.25 0.25 0.5 0.5\n")
    class_ids, boxes = read_yolo_labels(path)
    assert class_ids.tolist() == [0, 2]
    np.testing.assert_allclose(boxes, [[0.9, 0.5, 0.2, 0.2], [0.25, 0.25, 0.5, 0.5]])
    with pytest.raises(DataError, match=r"line 1: box .* extends outside the image"):
        read_yolo_labels(path, strict=True)


def test_difficult_sidecar(tmp_path):
    path = write_yolo_labels(tmp_path / "x.txt", [0, 1], [[0.5, 0.5, 0.2, 0.2]] * 2, difficult=[False, True])
    assert (tmp_path / "x.difficult").read_text() == "0\n1\n"
    assert read_difficult_flags(path, 2).tolist() == [False, True]
    _, _, difficult = load_ground_truth(path, (10, 10), with_difficult=True)
    assert difficult.tolist() == [False, True]
    write_yolo_labels(path, [0], [[0.5, 0.5, 0.2, 0.2]])
    assert not (tmp_path / "x.difficult").exists()


def test_dataset_yaml_names_list_or_dict(tmp_path):
    (tmp_path / "data.yaml").write_text("path: ds\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n")
    config = load_dataset_yaml(tmp_path / "data.yaml")
    assert config.names == ["cat", "dog"] and config.train == (tmp_path / "ds" / "images" / "train").resolve()
    assert config.test is None and config.num_classes == 2
    (tmp_path / "data.yaml").write_text("train: a\nval: b\nnames:\n  1: dog\n  0: cat\n")
    config = load_dataset_yaml(tmp_path / "data.yaml")
    assert config.names == ["cat", "dog"] and config.root == tmp_path.resolve()
    with pytest.raises(ConfigError, match="no 'test' split"):
        config.split_dir("test")
    (tmp_path / "data.yaml").write_text("train: a\nnames:\n  0: cat\n  2: dog\n")
    with pytest.raises(ConfigError, match=r"are not 0..1"):
        load_dataset_yaml(tmp_path / "data.yaml")
    (tmp_path / "data.yaml").write_text("train: a\nval: [b\n")
    with pytest.raises(ConfigError, match=r"data\.yaml, line \d+: not valid YAML"):
        load_dataset_yaml(tmp_path / "data.yaml")
    (tmp_path / "data.yaml").write_text("train: a\nval: b\n")
    with pytest.raises(ConfigError, match="missing 'names'"):
        load_dataset_yaml(tmp_path / "data.yaml")
    written = write_dataset_yaml(tmp_path / "w.yaml", names=["a", "b", "c"], test="images/test")
    config = load_dataset_yaml(written)
    assert config.names == ["a", "b", "c"] and config.test == tmp_path.resolve() / "images" / "test"


def test_list_samples_pairs_images_and_labels(tmp_path):
    for relative in ("images/train/b.jpg", "images/train/sub/a.png", "images/train/notes.md"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    samples = list_samples(tmp_path / "images" / "train")
    assert [sample.image_path.relative_to(tmp_path).as_posix() for sample in samples] == [
        "images/train/b.jpg", "images/train/sub/a.png"]
    assert [sample.label_path.relative_to(tmp_path).as_posix() for sample in samples] == [
        "labels/train/b.txt", "labels/train/sub/a.txt"]
    assert samples[0].is_background
    assert label_path_for("/data/images/x/images/y.jpg").as_posix() == "/data/images/x/labels/y.txt"
    assert label_path_for("/data/flat/y.jpg").as_posix() == "/data/flat/y.txt"
    with pytest.raises(FileNotFoundError, match="nothing: no such image folder"):
        list_samples(tmp_path / "nothing")


def test_background_image_has_no_boxes(tmp_path):
    boxes, class_ids = load_ground_truth(DetectionSample(tmp_path / "a.jpg", tmp_path / "a.txt"), (10, 10))
    assert boxes.shape == (0, 4) and class_ids.shape == (0,)


def test_prediction_lines_with_confidence(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("2 0.5 0.5 0.2 0.4 0.75\n")
    rows = parse_label_file(path, with_confidence=True)
    assert rows.class_ids.tolist() == [2] and rows.confidences.tolist() == [0.75]


def test_find_dataset_yaml_only_when_unambiguous(tmp_path):
    assert find_dataset_yaml(tmp_path) is None
    (tmp_path / "data.yml").write_text("names: [a]\n")
    assert find_dataset_yaml(tmp_path) == tmp_path / "data.yml"
    (tmp_path / "other.yaml").write_text("names: [b]\n")
    assert find_dataset_yaml(tmp_path) is None  # two: ambiguous


def test_prepare_dataset_folder_refuses_or_replaces_an_existing_dataset(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already holds images/ or labels/ .* or overwrite"):
        prepare_dataset_folder(tmp_path)
    assert (tmp_path / "images" / "train").is_dir()
    assert prepare_dataset_folder(tmp_path, overwrite=True) == tmp_path
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]  # the stale data.yaml went too


def test_split_fingerprint_follows_file_list_and_labels_not_pixels(tmp_path):
    from defi1.detection.labels import split_fingerprint
    from defi1.fingerprint import fingerprint_entries

    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / "images" / "test").mkdir(parents=True, exist_ok=True)
        (root / "images" / "test" / f"{name}.png").write_bytes(b"pixels " + name.encode())
    (root / "labels" / "test").mkdir(parents=True)
    (root / "labels" / "test" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # b.png is a background image
    yaml_path = write_dataset_yaml(root / "data.yaml", names=["circle", "square"], train="images/test", val=None,
                                   test="images/test")
    first = split_fingerprint(yaml_path, "test")
    assert first == fingerprint_entries([("\0names", '["circle", "square"]'), ("a.png", "0 0.5 0.5 0.2 0.2\n"),
                                         ("b.png", b"")])
    (root / "images" / "test" / "b.png").write_bytes(b"re-encoded pixels")
    assert split_fingerprint(yaml_path, "test") == first
    (root / "labels" / "test" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")  # relabelled
    relabelled = split_fingerprint(yaml_path, "test")
    assert relabelled != first
    (root / "images" / "test" / "b.png").rename(root / "images" / "test" / "c.png")
    assert split_fingerprint(yaml_path, "test") not in (first, relabelled)
    with pytest.raises(ConfigError, match="no 'val' split"):
        split_fingerprint(yaml_path, "val")
