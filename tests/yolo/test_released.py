"""Darknet's released COCO models without cfg files (:mod:`defi1.yolo.released`), and the released tiny weights on
darknet's sample photographs: ``defi1 detect predict`` finds what darknet finds, box for box as an independent
OpenCV 4 DNN pipeline (darknet's importer, OpenCV's decoding and NMS) given the same letterboxed input."""

import numpy as np
import pytest

from defi1.boxes import box_iou, letterbox_image
from defi1.cli import main
from defi1.images import pixels_to_unit, read_image
from defi1.yolo.cfg import parse_cfg
from defi1.yolo.released import (COCO_CLASS_NAMES, RELEASED_WEIGHTS_BYTES, recognise_released_weights,
                                 released_cfg, resolve_darknet_cfg)

#: Detections compared: those scoring at least this in either pipeline (predict keeps 0.25 and up: a detection near
#: the threshold may fall either side of it through float rounding).
COMPARED_SCORE = 0.3
#: Each such detection has one of the same class in the other pipeline with at least this IoU (measured: 1.0 to
#: four decimals on all 30 comparisons of the 7 photographs, scores equal to three decimals).
MIN_IOU = 0.99


def _released_tiny_cfg_file(darknet_dir, path):
    """darknet's yolov3-tiny.cfg with the second [yolo]'s mask put back to 1,2,3, as the released weights were
    trained (darknet's README at ../shared/darknet)."""
    text = (darknet_dir / "cfg" / "yolov3-tiny.cfg").read_text()
    assert text.count("mask = 0,1,2") == 1
    path.write_text(text.replace("mask = 0,1,2", "mask = 1,2,3"))
    return path


def test_the_built_in_tiny_cfg_is_the_released_weights_one(darknet_dir, tmp_path):
    def layers(text):
        return [(section.type, {key: value.replace(" ", "") for key, value in section.options.items()
                                if key in ("filters", "size", "stride", "mask", "anchors", "classes", "layers")})
                for section in parse_cfg(text) if section.type != "net"]

    released = _released_tiny_cfg_file(darknet_dir, tmp_path / "tiny.cfg").read_text()
    assert layers(released_cfg("yolov3-tiny")) == layers(released)
    for name in ("yolov3", "yolov3-spp"):
        assert layers(released_cfg(name)) == layers((darknet_dir / "cfg" / f"{name}.cfg").read_text())
    # A released file is known by its size; anything else needs its cfg.
    (tmp_path / "tiny.weights").write_bytes(b"\0" * RELEASED_WEIGHTS_BYTES["yolov3-tiny"])
    (tmp_path / "other.weights").write_bytes(b"\0" * 1000)
    assert recognise_released_weights(tmp_path / "tiny.weights") == "yolov3-tiny"
    cfg, names = resolve_darknet_cfg(None, tmp_path / "tiny.weights")
    assert cfg == released_cfg("yolov3-tiny") and names == COCO_CLASS_NAMES and len(names) == 80
    assert resolve_darknet_cfg("my.cfg", tmp_path / "other.weights", ["a"]) == ("my.cfg", ["a"])
    with pytest.raises(ValueError, match=r"other\.weights: not the size of darknet's released .* \(--cfg FILE\.cfg\)"):
        resolve_darknet_cfg(None, tmp_path / "other.weights")
    with pytest.raises(ValueError, match="unknown built-in cfg 'yolov4'"):
        released_cfg("yolov4")


def _opencv_detections(read_net_from_darknet, cfg_path, weights_path, images, size=416):
    """Per image, ``(boxes (K, 4) xyxy original pixels, scores, class ids)`` by OpenCV alone from the letterboxed
    input: OpenCV's [yolo] outputs (cx, cy, w, h relative to the input, objectness, objectness x class probability),
    the best class of each box at 0.25, OpenCV's NMS per class at 0.45, then the letterbox undone and the boxes
    clipped to the image."""
    import cv2

    canvases, letterboxes = zip(*(letterbox_image(image, size, size) for image in images))
    network = read_net_from_darknet(str(cfg_path), str(weights_path))
    network.setInput(np.ascontiguousarray(pixels_to_unit(np.stack(canvases)).transpose(0, 3, 1, 2)))
    outputs = network.forward(["yolo_16", "yolo_23"])  # tiny-YOLOv3's two [yolo] layers, darknet indices
    results = []
    for index, letterbox in enumerate(letterboxes):
        rows = np.concatenate([output[index] if output.ndim == 3 else output for output in outputs], axis=0) \
            if len(images) > 1 else np.concatenate(outputs, axis=0)
        class_ids = rows[:, 5:].argmax(axis=1)
        scores = rows[np.arange(len(rows)), 5 + class_ids]
        chosen = scores >= 0.25
        centres, sides = rows[chosen, :2] * size, rows[chosen, 2:4] * size
        boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
        kept = []
        for class_id in np.unique(class_ids[chosen]):
            members = np.flatnonzero(class_ids[chosen] == class_id)
            rectangles = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes[members]]
            picked = cv2.dnn.NMSBoxes(rectangles, scores[chosen][members].tolist(), 0.25, 0.45)
            kept.extend(members[np.asarray(picked, dtype=np.int64).reshape(-1)].tolist())
        kept = np.asarray(kept, dtype=np.int64)
        height, width = images[index].shape[:2]
        boxes = np.clip(letterbox.to_image(boxes[kept]), 0, [width, height, width, height])  # as darknet draws them
        results.append((boxes, scores[chosen][kept], class_ids[chosen][kept]))
    return results


def _predicted(labels_dir, name, image):
    """``(boxes xyxy pixels, scores, class ids)`` of a prediction file of ``detect predict --save-txt``."""
    height, width = image.shape[:2]
    text = (labels_dir / f"{name}.txt").read_text()  # an empty file: nothing detected
    rows = np.array([line.split() for line in text.splitlines()], dtype=np.float64).reshape(-1, 6)
    centres, sides = rows[:, 1:3] * [width, height], rows[:, 3:5] * [width, height]
    return np.concatenate([centres - sides / 2, centres + sides / 2], axis=1), rows[:, 5], rows[:, 0].astype(int)


def _matched(source, target):
    """Every detection of ``source`` scoring at least COMPARED_SCORE has one of the same class in ``target`` with an
    IoU of at least MIN_IOU; returns the IoUs."""
    ious = []
    for box, score, class_id in zip(*source):
        if score < COMPARED_SCORE:
            continue
        same = target[2] == class_id
        best = box_iou(box[None], target[0][same]).max() if same.any() else 0.0
        assert best >= MIN_IOU, f"{COCO_CLASS_NAMES[class_id]} {score:.2f} at {np.round(box)}: best IoU {best:.3f}"
        ious.append(best)
    return ious


def test_released_tiny_weights_find_what_darknet_and_opencv_find(released_tiny_weights, darknet_dir,
                                                                 read_net_from_darknet, tmp_path, capsys):
    images_dir = darknet_dir / "images"
    # No --cfg, no --names: the file is recognised as darknet's released tiny model (second mask 1,2,3).
    assert main(["detect", "predict", "--weights", str(released_tiny_weights), "--source", str(images_dir),
                 "--out", str(tmp_path / "out"), "--save-txt", "--no-images"]) == 0
    assert "7 image(s) at 416x416" in capsys.readouterr().out
    labels_dir = tmp_path / "out" / "labels"
    names = sorted(path.stem for path in images_dir.glob("*.jpg"))
    images = [read_image(images_dir / f"{name}.jpg") for name in names]
    opencv = _opencv_detections(read_net_from_darknet, _released_tiny_cfg_file(darknet_dir, tmp_path / "tiny.cfg"),
                                released_tiny_weights, images)
    found = {}
    for name, image, reference in zip(names, images, opencv):
        ours = _predicted(labels_dir, name, image)
        found[name] = {COCO_CLASS_NAMES[class_id] for class_id in ours[2]}
        ious = _matched(ours, reference) + _matched(reference, ours)
        compared = np.sum(ours[1] >= COMPARED_SCORE) + np.sum(reference[1] >= COMPARED_SCORE)
        assert len(ious) == compared  # every detection above 0.3 of either pipeline found by the other
    # What darknet itself reports for these photographs with the tiny model (the scream, a painting: nothing).
    assert {"dog", "bicycle", "car"} <= found["dog"] and found["scream"] == set()
    assert "horse" in found["horses"] and "person" in found["person"] and "giraffe" in found["giraffe"]
