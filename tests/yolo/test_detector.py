"""Detector API: known boxes through the letterbox and back, batching of mixed sizes, loading, drawing, txt output."""

import math

import keras
import numpy as np
import pytest

from defi1.yolo.decode import Detection, decode_heads, postprocess
from defi1.images import as_rgb_uint8
from defi1.yolo.detector import Detector, format_detections_txt, save_detections_txt
from defi1.yolo.drawing import class_color, draw_detections
from defi1.yolo.layers import YoloHead


def constant_model():
    """A 64 x 64 detector whose every 32-pixel cell predicts a 20 x 20 box at the cell centre, objectness 0.8,
    class 1 ("square") with probability 0.9: score 0.72, whatever the image."""
    inputs = keras.Input((None, None, 3))
    convolution = keras.layers.Conv2D(7, 32, strides=32, name="constant")
    outputs = [YoloHead(anchors=[[20, 20]], num_classes=2, stride=32, input_size=64, head_index=0,
                        class_names=["circle", "square"])(convolution(inputs))]
    model = keras.Model(inputs, outputs)
    bias = np.array([0, 0, 0, 0, math.log(4), -5, math.log(9)], np.float32)
    convolution.set_weights([np.zeros((32, 32, 3, 7), np.float32), bias])
    return model


# The constant model's four boxes mapped back to a 128 x 64 (width x height) image (scale 0.5, pad_y 16) and to a
# 64 x 128 image (scale 0.5, pad_x 16), clipped to the image; rows in (y, x) cell order.
WIDE_BOXES = [[12, 0, 52, 20], [76, 0, 116, 20], [12, 44, 52, 64], [76, 44, 116, 64]]
TALL_BOXES = [[0, 12, 20, 52], [44, 12, 64, 52], [0, 76, 20, 116], [44, 76, 64, 116]]


@pytest.fixture(scope="module")
def tiny_model():
    from defi1.yolo.model import build_yolov3_tiny

    keras.utils.set_random_seed(0)
    return build_yolov3_tiny(num_classes=3, input_size=64, class_names=["a", "b", "c"])


def test_known_boxes_come_back_in_original_pixels_for_mixed_sizes():
    detector = Detector(constant_model())
    wide, tall = np.zeros((64, 128, 3), np.uint8), np.full((128, 64, 3), 200, np.uint8)
    detections = detector.detect([wide, tall])
    np.testing.assert_allclose(detections[0].boxes, WIDE_BOXES, atol=1e-4)
    np.testing.assert_allclose(detections[1].boxes, TALL_BOXES, atol=1e-4)
    for detection, size in zip(detections, [(128, 64), (64, 128)]):
        np.testing.assert_allclose(detection.scores, [0.72] * 4, atol=1e-5)
        assert detection.class_ids.tolist() == [1] * 4 and detection.class_names == ["square"] * 4
        assert detection.image_size == size
    assert detector.detect(wide, conf_threshold=0.75)[0].boxes.shape == (0, 4)


def test_grayscale_and_rgba_arrays_are_accepted():
    detector = Detector(constant_model())
    (gray,) = detector.detect(np.zeros((64, 128), np.uint8))
    (rgba,) = detector.detect(np.zeros((64, 128, 4), np.uint8))
    np.testing.assert_allclose(gray.boxes, WIDE_BOXES, atol=1e-4)
    np.testing.assert_allclose(rgba.boxes, WIDE_BOXES, atol=1e-4)
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(as_rgb_uint8(image[..., 0]), np.repeat(image[..., :1], 3, axis=2))
    np.testing.assert_array_equal(as_rgb_uint8(np.concatenate([image, image[..., :1]], axis=2)), image)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="input size 50x50 is not a multiple of 32"):
        Detector(constant_model(), input_size=50)
    detector = Detector(constant_model())
    with pytest.raises(ValueError, match="expected an RGB uint8 image"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="got shape \\(10, 10, 2\\)"):
        detector.detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="3 class names for a model of 2 classes"):
        Detector(constant_model(), class_names=["a", "b", "c"])
    with pytest.raises(FileNotFoundError, match="missing.keras: no such model file"):
        Detector.from_keras("missing.keras")


def test_detector_matches_the_step_by_step_pipeline(tiny_model, rng):
    from defi1.boxes import letterbox_image
    from defi1.yolo.heads import head_specs

    images = [rng.integers(0, 255, (48, 100, 3), dtype=np.uint8), rng.integers(0, 255, (90, 30, 3), dtype=np.uint8)]
    # A random network scores about 0.25 everywhere: the threshold 0.2 keeps many boxes for NMS to sort out.
    detector = Detector(tiny_model, conf_threshold=0.2, fold_batchnorm=False)
    detections = detector.detect(images)
    canvases, letterboxes = zip(*(letterbox_image(image, 64) for image in images))
    outputs = tiny_model(np.stack(canvases).astype(np.float32) / 255.0, training=False)
    expected = postprocess(*decode_heads(outputs, head_specs(tiny_model), input_size=64), letterboxes=letterboxes,
                           image_sizes=[(100, 48), (30, 90)], conf_threshold=0.2, class_names=["a", "b", "c"])
    for detection, reference in zip(detections, expected):
        assert len(detection) == len(reference) > 0
        np.testing.assert_allclose(detection.boxes, reference.boxes, atol=1e-3)
        np.testing.assert_allclose(detection.scores, reference.scores, atol=1e-5)
        assert detection.class_names == reference.class_names
    # An image alone gives what it gives inside a batch of another size.
    (alone,) = detector.detect(images[1])
    np.testing.assert_allclose(alone.boxes, detections[1].boxes, atol=1e-3)


def test_raw_head_engine_decoded_on_the_host_gives_the_same_detections(tiny_model, rng):
    images = [rng.integers(0, 255, (48, 100, 3), dtype=np.uint8), rng.integers(0, 255, (90, 30, 3), dtype=np.uint8)]
    compiled = Detector(tiny_model, conf_threshold=0.2)
    assert callable(getattr(compiled.forward, "detect", None))  # decoding compiled with the network
    calls = []

    def raw_engine(batch):  # an engine returning raw heads, as ONNX Runtime does
        calls.append(batch.shape)
        return [keras.ops.convert_to_numpy(output) for output in tiny_model(batch, training=False)]

    host = Detector(tiny_model, conf_threshold=0.2, forward=raw_engine)
    assert host.forward is raw_engine
    for detection, reference in zip(host.detect(images), compiled.detect(images)):
        assert len(detection) == len(reference) > 0
        np.testing.assert_allclose(detection.boxes, reference.boxes, atol=1e-3)
        np.testing.assert_allclose(detection.scores, reference.scores, atol=1e-5)
        assert detection.class_names == reference.class_names
    assert calls == [(2, 64, 64, 3)]


def test_preprocess_scales_the_letterbox_to_float32():
    detector = Detector(constant_model())
    batch, letterboxes, sizes = detector.preprocess([np.full((32, 64, 3), 255, np.uint8)])
    assert batch.dtype == np.float32 and batch.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(batch[0, 16:48], 1.0, atol=1e-6)  # the image, scale 1, rows 16 to 48
    np.testing.assert_allclose(batch[0, :16], 128 / 255, atol=1e-6)  # the grey padding (darknet: 0.5)
    assert sizes == [(64, 32)] and letterboxes[0].pad_y == 16


def test_saved_model_gives_the_same_detections(tiny_model, rng, tmp_path):
    image = rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)
    reference = Detector(tiny_model, conf_threshold=0.2, fold_batchnorm=False).detect(image)[0]
    tiny_model.save(tmp_path / "tiny.keras")
    loaded = Detector.from_keras(tmp_path / "tiny.keras", conf_threshold=0.2, fold_batchnorm=False).detect(image)[0]
    assert len(loaded) == len(reference) > 0
    np.testing.assert_allclose(loaded.boxes, reference.boxes, atol=1e-4)
    np.testing.assert_allclose(loaded.scores, reference.scores, atol=1e-6)
    assert loaded.class_names == reference.class_names


@pytest.mark.smoke
def test_smoke_from_darknet_reads_cfg_weights_and_names(tmp_path):
    from defi1.yolo.architectures import yolov3_tiny_cfg
    from defi1.yolo.darknet import write_random_darknet_weights

    cfg_path = tmp_path / "tiny.cfg"
    cfg_path.write_text(yolov3_tiny_cfg(num_classes=2, input_size=64))
    write_random_darknet_weights(cfg_path, tmp_path / "tiny.weights", seed=0)
    (tmp_path / "two.names").write_text("cat\ndog\n")
    detector = Detector.from_darknet(cfg_path, tmp_path / "tiny.weights", tmp_path / "two.names", conf_threshold=0.01)
    assert detector.class_names == ["cat", "dog"] and detector.input_size == (64, 64)
    (detection,) = detector.detect(np.zeros((40, 60, 3), np.uint8))
    assert set(detection.class_names) <= {"cat", "dog"}


def test_save_detections_txt_writes_normalised_lines(tmp_path):
    # The course's example box (6, 21)-(293, 202) of a 300 x 208 image: 0.498333 0.536058 0.956667 0.870192.
    detection = Detection(boxes=np.array([[6, 21, 293, 202], [0, 0, 150, 104]]), scores=np.array([0.9, 0.25]),
                          class_ids=np.array([0, 2]), class_names=["a", "c"], image_size=(300, 208))
    path = save_detections_txt(tmp_path / "labels" / "x.txt", detection)
    assert path.read_text() == ("0 0.498333 0.536058 0.956667 0.870192 0.900000\n"
                                "2 0.250000 0.250000 0.500000 0.500000 0.250000\n")
    assert save_detections_txt(tmp_path / "empty.txt", Detection.empty(), (10, 10)).read_text() == ""
    with pytest.raises(ValueError, match="image size is needed"):
        format_detections_txt(Detection.empty())


def test_draw_detections_draws_the_box_in_the_class_colour():
    image = np.zeros((60, 80, 3), np.uint8)
    detection = Detection(boxes=np.array([[10, 30, 50, 55]]), scores=np.array([0.5]), class_ids=np.array([3]),
                          class_names=["kite"], image_size=(80, 60))
    drawn = draw_detections(image, detection, thickness=1)
    assert np.all(image == 0)  # the input is not modified
    color = class_color(3)
    assert tuple(drawn[55, 30]) == color and tuple(drawn[40, 10]) == color and tuple(drawn[40, 50]) == color
    assert np.all(drawn[40, 11:50] == 0)  # inside the box, below the label: untouched
    assert np.all(drawn[31:, 52:] == 0) and np.all(drawn[56:] == 0)  # right of and below the box
    assert np.any(drawn[15:30, 10:50] != 0)  # the label above the box


@pytest.mark.slow
def test_targets_loss_and_detector_agree_after_training():
    """Targets -> loss -> training -> Detector: a small network fitted on white squares finds them again."""
    from defi1.boxes import box_iou
    from defi1.yolo.loss import yolo_losses
    from defi1.yolo.heads import head_specs
    from defi1.yolo.targets import encode_targets

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, boxes_list = [], []
    for _ in range(32):
        size = int(rng.integers(12, 22))
        x_min, y_min = (int(value) for value in rng.integers(0, 64 - size, 2))
        image = np.zeros((64, 64, 3), np.uint8)
        image[y_min:y_min + size, x_min:x_min + size] = 255
        images.append(image)
        boxes_list.append(np.array([[x_min, y_min, x_min + size, y_min + size]], np.float64))
    inputs = keras.Input((None, None, 3))
    features = inputs
    for filters in (16, 32, 32, 64):
        features = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(features)
    raw = keras.layers.Conv2D(6, 1)(features)
    model = keras.Model(inputs, [YoloHead(anchors=[[16, 16]], num_classes=1, stride=16, input_size=64,
                                          head_index=0, class_names=["square"])(raw)])
    targets = encode_targets(boxes_list, [np.zeros(1, int)] * 32, input_size=64, heads=head_specs(model),
                             max_boxes=4)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=yolo_losses(model, max_boxes=4))
    model.fit(np.stack(images).astype(np.float32) / 255.0, targets, epochs=300, batch_size=16, verbose=0)
    detections = Detector(model, conf_threshold=0.5).detect(images)
    matched = [len(detection) > 0 and box_iou(detection.boxes[:1], boxes)[0, 0] > 0.7
               for detection, boxes in zip(detections, boxes_list)]
    assert np.mean(matched) >= 0.9


def test_detect_takes_images_as_users_hold_them(tiny_model, tmp_path):
    from PIL import Image

    from defi1.images import bgr_from_rgb, read_image, write_image

    detector = Detector(tiny_model, conf_threshold=0.01)
    pixels = np.random.default_rng(1).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    path = write_image(tmp_path / "photo.png", pixels)
    reference = detector.detect(pixels)[0]
    assert reference.image_size == (80, 48) and len(reference) > 0
    given = [str(path), path, Image.open(path), bgr_from_rgb(pixels)]
    results = detector.detect(given[:3] + [read_image(path)])  # file paths (str, Path), a PIL image, an array
    results += detector.detect(given[3], bgr=True)  # an OpenCV frame, said to be BGR
    for result in results:
        np.testing.assert_allclose(result.boxes, reference.boxes, atol=1e-4)
        np.testing.assert_allclose(result.scores, reference.scores, atol=1e-6)
        assert result.image_size == (80, 48)
    # A batch array (N, H, W, 3) is N images; each result keeps its image's size in a mixed list.
    assert len(detector.detect(np.stack([pixels, pixels]))) == 2
    sizes = [result.image_size for result in detector.detect([pixels, np.zeros((30, 20, 3), np.uint8)])]
    assert sizes == [(80, 48), (20, 30)]
    assert detector(str(path))[0].image_size == (80, 48)  # detector(source), like the predictors students know


def test_detect_errors_name_the_bad_input(tmp_path):
    detector = Detector(constant_model())
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(TypeError, match=r"images\[1\]: expected an image file path, a PIL.Image or a numpy array"):
        detector.detect([image, 5])
    with pytest.raises(ValueError, match=r"images\[2\]: expected an RGB uint8 image .* got dtype float64"):
        detector.detect([image, image, image / 255.0])
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg: no such image file"):
        detector.detect([image, tmp_path / "missing.jpg"])
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg: cannot decode image"):
        detector.detect(str(tmp_path / "broken.jpg"))
    with pytest.raises(TypeError, match="expected an image .* or a list of them, got int"):
        detector.detect(3)
