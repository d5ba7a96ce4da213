"""YOLOv3 loss: a hand-computed 1-box 1-cell case, the ignore mask, finiteness on degenerate input, serialisation."""

import math

import keras
import numpy as np
import pytest

from defi1.yolo.layers import YoloHead
from defi1.yolo.loss import YoloLoss, complete_iou, yolo_losses
from defi1.yolo.heads import HeadSpec
from defi1.yolo.targets import encode_targets


def sigmoid(value):
    return 1.0 / (1.0 + math.exp(-value))


def bce(label, logit):
    probability = sigmoid(logit)
    return -label * math.log(probability) - (1 - label) * math.log(1 - probability)


def loss_value(loss, y_true, y_pred):
    return float(keras.ops.convert_to_numpy(loss(np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32))))


def loss_gradient(loss, y_true, y_pred):
    """d loss / d y_pred with the active backend's autodiff."""
    y_true, y_pred = np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            value = loss(y_true, variable)
        return value.numpy(), tape.gradient(value, variable).numpy()
    if backend == "jax":
        import jax

        value, gradient = jax.value_and_grad(lambda prediction: loss(y_true, prediction))(y_pred)
        return np.asarray(value), np.asarray(gradient)
    if backend == "torch":
        import torch

        variable = torch.tensor(y_pred, requires_grad=True)
        value = loss(y_true, variable)
        value.backward()
        return value.detach().numpy(), variable.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def one_box_one_cell():
    """Targets and raw predictions of two images on a one-cell head (anchor 16 x 8, stride 32, 2 classes): the first
    with one box (corners 8, 12, 16, 28: centre (12, 20), size 8 x 16, class 1), the second empty."""
    head = HeadSpec(anchors=[[16, 8]], stride=32, num_classes=2)
    y_true = encode_targets([np.array([[8, 12, 16, 28]]), np.zeros((0, 4))], [np.array([1]), np.zeros(0)],
                            input_size=32, heads=[head], max_boxes=2)[0]
    y_pred = np.zeros((2, 1, 1, 7), np.float32)
    y_pred[0, 0, 0] = [0.5, -0.3, 0.2, -0.1, 1.5, 2.0, -1.0]
    y_pred[1, 0, 0, 4] = -0.7
    return y_true, y_pred


@pytest.mark.backend_agnostic
def test_hand_computed_one_box_one_cell():
    y_true, y_pred = one_box_one_cell()
    # Box: centre (12, 20), size 8 x 16, class 1; input 32 x 32; one cell.
    scale = 2 - (8 / 32) * (16 / 32)
    centre = bce(12 / 32, 0.5) + bce(20 / 32, -0.3)
    size = 0.5 * ((0.2 - math.log(8 / 16)) ** 2 + (-0.1 - math.log(16 / 8)) ** 2)
    objectness = bce(1, 1.5)
    classes = bce(0, 2.0) + bce(1, -1.0)
    first_image = scale * (centre + size) + objectness + classes
    second_image = bce(0, -0.7)  # empty image: background objectness only
    loss = YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, max_boxes=2)
    assert loss_value(loss, y_true, y_pred) == pytest.approx((first_image + second_image) / 2, rel=1e-5)
    # Uniform box weighting: the same terms, the box ones weighted 1 instead of 2 - w * h = 1.875.
    uniform = YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, max_boxes=2, box_weighting="uniform")
    first_image_uniform = centre + size + objectness + classes
    assert loss_value(uniform, y_true, y_pred) == pytest.approx((first_image_uniform + second_image) / 2, rel=1e-5)
    assert YoloLoss.from_config(uniform.get_config()).box_weighting == "uniform"
    with pytest.raises(ValueError, match="box_weighting='large': expected one of darknet, uniform"):
        YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, box_weighting="large")


def hand_complete_iou(predicted, true):
    """CIoU of two [cx, cy, w, h] boxes, by hand (Zheng et al. 2020)."""
    (pcx, pcy, pw, ph), (tcx, tcy, tw, th) = predicted, true
    overlap_w = max(0.0, min(pcx + pw / 2, tcx + tw / 2) - max(pcx - pw / 2, tcx - tw / 2))
    overlap_h = max(0.0, min(pcy + ph / 2, tcy + th / 2) - max(pcy - ph / 2, tcy - th / 2))
    intersection = overlap_w * overlap_h
    iou = intersection / (pw * ph + tw * th - intersection)
    enclosing_w = max(pcx + pw / 2, tcx + tw / 2) - min(pcx - pw / 2, tcx - tw / 2)
    enclosing_h = max(pcy + ph / 2, tcy + th / 2) - min(pcy - ph / 2, tcy - th / 2)
    distance = ((pcx - tcx) ** 2 + (pcy - tcy) ** 2) / (enclosing_w ** 2 + enclosing_h ** 2)
    aspect = 4 / math.pi ** 2 * (math.atan(tw / th) - math.atan(pw / ph)) ** 2
    return iou - distance - aspect / (1 - iou + aspect) * aspect


@pytest.mark.backend_agnostic
def test_complete_iou_of_hand_computed_boxes():
    # Predicted 8..12 x 8..12, true 9..13 x 9..11: intersection 3 x 2 = 6, union 16 + 8 - 6 = 18, IoU 1/3; centres
    # 1 apart, enclosing box 5 x 4 (diagonal squared 41); aspect term v = 4 / pi^2 (atan 2 - atan 1)^2.
    aspect = 4 / math.pi ** 2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    expected = 1 / 3 - 1 / 41 - aspect / (2 / 3 + aspect) * aspect
    assert hand_complete_iou([10, 10, 4, 4], [11, 10, 4, 2]) == pytest.approx(expected)
    pairs = np.array([[[10, 10, 4, 4], [11, 10, 4, 2]], [[5, 5, 2, 2], [5, 5, 2, 2]], [[0, 0, 2, 2], [10, 0, 2, 2]]],
                     np.float32)
    values = keras.ops.convert_to_numpy(complete_iou(pairs[:, 0], pairs[:, 1]))
    # Identical boxes: 1. Disjoint boxes 10 apart (enclosing 12 x 2): IoU 0, minus 100 / 148.
    assert values == pytest.approx([expected, 1.0, -100 / 148], abs=1e-6)


@pytest.mark.backend_agnostic
def test_hand_computed_ciou_box_term():
    # As in the hand-computed case above, with box_loss="ciou": the centre and size terms give way to
    # (2 - w * h) * (1 - CIoU) of the decoded box: centre ((sigmoid(0.5), sigmoid(-0.3)) * 32), size
    # (16 exp(0.2), 8 exp(-0.1)), against the true box centre (12, 20), size 8 x 16.
    y_true, y_pred = one_box_one_cell()
    decoded = [sigmoid(0.5) * 32, sigmoid(-0.3) * 32, 16 * math.exp(0.2), 8 * math.exp(-0.1)]
    scale = 2 - (8 / 32) * (16 / 32)
    first_image = scale * (1 - hand_complete_iou(decoded, [12, 20, 8, 16])) + bce(1, 1.5) + bce(0, 2.0) + bce(1, -1.0)
    second_image = bce(0, -0.7)
    loss = YoloLoss(anchors=[[16, 8]], stride=32, num_classes=2, max_boxes=2, box_loss="ciou")
    value, gradient = loss_gradient(loss, y_true, y_pred)
    assert float(value) == pytest.approx((first_image + second_image) / 2, rel=1e-5)
    assert np.isfinite(gradient).all()
    # The box logits of the responsible anchor get a gradient; the empty image's box logits none.
    assert np.abs(gradient[0, 0, 0, 0:4]).min() > 0 and not gradient[1, 0, 0, 0:4].any()
    assert YoloLoss.from_config(loss.get_config()).box_loss == "ciou"


@pytest.mark.backend_agnostic
def test_ignore_mask_spares_good_non_responsible_predictions():
    # Box 16 x 16 at the centre of a 32 x 32 input: anchor 0 (16 x 16) is responsible. Anchor 1 (20 x 20) with
    # tx = ty = tw = th = 0 predicts a 20 x 20 box on the same centre: IoU 256 / 400 = 0.64.
    head = HeadSpec(anchors=[[16, 16], [20, 20]], stride=32, num_classes=1)
    y_true = encode_targets([np.array([[8, 8, 24, 24]])], [np.array([0])], input_size=32, heads=[head],
                            max_boxes=1)[0]
    y_pred = np.zeros((1, 1, 1, 12), np.float32)
    y_pred[0, 0, 0, 4] = 0.8
    y_pred[0, 0, 0, 6 + 4] = 1.3
    spared = YoloLoss(anchors=[[16, 16], [20, 20]], stride=32, num_classes=1, ignore_threshold=0.5, max_boxes=1)
    penalised = YoloLoss(anchors=[[16, 16], [20, 20]], stride=32, num_classes=1, ignore_threshold=0.7, max_boxes=1)
    responsible = 2 * (2 - 0.25) * bce(0.5, 0.0) + bce(1, 0.8) + bce(1, 0.0)
    assert loss_value(spared, y_true, y_pred) == pytest.approx(responsible, rel=1e-5)
    assert loss_value(penalised, y_true, y_pred) == pytest.approx(responsible + bce(0, 1.3), rel=1e-5)


@pytest.mark.backend_agnostic
def test_ignore_mask_sees_boxes_assigned_to_other_heads():
    # The ground-truth rows carry boxes of every head: a head with no responsible anchor still ignores a prediction
    # that overlaps a box the other head is responsible for.
    heads = [HeadSpec(anchors=[[20, 20]], stride=32, num_classes=1), HeadSpec(anchors=[[16, 16]], stride=16,
                                                                              num_classes=1)]
    targets = encode_targets([np.array([[8, 8, 24, 24]])], [np.array([0])], input_size=32, heads=heads, max_boxes=1)
    assert targets[0][0, 0, 4] == 0 and targets[1][0, :4, 4].sum() == 1
    y_pred = np.zeros((1, 1, 1, 6), np.float32)
    y_pred[..., 4] = 2.0
    loss = YoloLoss(anchors=[[20, 20]], stride=32, num_classes=1, ignore_threshold=0.5, max_boxes=1)
    assert loss_value(loss, targets[0], y_pred) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.backend_agnostic
def test_empty_images_only_pay_background_objectness():
    rng = np.random.default_rng(1)
    head = HeadSpec(anchors=[[8, 8], [16, 16]], stride=16, num_classes=3)
    y_true = encode_targets([np.zeros((0, 4))] * 2, [np.zeros(0)] * 2, input_size=32, heads=[head], max_boxes=4)[0]
    y_pred = rng.normal(size=(2, 2, 2, 16)).astype(np.float32)
    expected = sum(bce(0, float(value)) for value in y_pred.reshape(2, 8, 8)[:, :, 4].ravel()) / 2
    loss = YoloLoss(anchors=[[8, 8], [16, 16]], stride=16, num_classes=3, max_boxes=4)
    assert loss_value(loss, y_true, y_pred) == pytest.approx(expected, rel=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("box_loss", ["darknet", "ciou"])
@pytest.mark.parametrize("logit", [1e4, -1e4])
def test_extreme_logits_give_finite_loss_and_gradient(logit, box_loss):
    head = HeadSpec(anchors=[[8, 8], [16, 16]], stride=16, num_classes=3)
    y_true = encode_targets([np.array([[2, 2, 20, 30]]), np.zeros((0, 4))], [np.array([2]), np.zeros(0)],
                            input_size=32, heads=[head], max_boxes=4)[0]
    y_pred = np.full((2, 2, 2, 16), logit, np.float32)
    value, gradient = loss_gradient(YoloLoss(anchors=head.anchors, stride=16, num_classes=3, max_boxes=4,
                                             box_loss=box_loss), y_true, y_pred)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))
    assert value > 1e3  # confidently wrong somewhere (objectness of the empty image or the box's class)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("box_loss", ["darknet", "ciou"])
def test_zero_size_ground_truth_gives_finite_loss_and_gradient(box_loss):
    # A hand-packed target whose responsible row has w = h = 0 (encode_targets drops such boxes; the loss must
    # survive them anyway) and a zero-size box in the ground-truth rows.
    y_true = np.zeros((1, 4 + 2, 6), np.float32)
    y_true[0, 0] = [8, 8, 0, 0, 1, 1]
    y_true[0, 4] = [8, 8, 0, 0, 1, 0]
    y_pred = np.zeros((1, 2, 2, 6), np.float32)
    y_pred[..., 2:4] = -1e4  # predicted boxes of zero size too
    value, gradient = loss_gradient(YoloLoss(anchors=[[8, 8]], stride=16, num_classes=1, max_boxes=2,
                                             box_loss=box_loss), y_true, y_pred)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))


@pytest.mark.backend_agnostic
def test_gradient_of_size_term_is_darknets_delta():
    # d loss / d tw = scale * (tw - log(w / anchor_w)) for the responsible anchor (darknet's delta, sign flipped).
    head = HeadSpec(anchors=[[16, 8]], stride=32, num_classes=1)
    y_true = encode_targets([np.array([[8, 12, 16, 28]])], [np.array([0])], input_size=32, heads=[head],
                            max_boxes=1)[0]
    y_pred = np.zeros((1, 1, 1, 6), np.float32)
    y_pred[0, 0, 0, 2] = 0.2
    _, gradient = loss_gradient(YoloLoss(anchors=[[16, 8]], stride=32, num_classes=1, max_boxes=1), y_true, y_pred)
    assert gradient[0, 0, 0, 2] == pytest.approx((2 - 0.125) * (0.2 - math.log(0.5)), rel=1e-5)
    assert gradient[0, 0, 0, 0] == pytest.approx((2 - 0.125) * (sigmoid(0.0) - 12 / 32), rel=1e-5)


@pytest.mark.backend_agnostic
def test_config_round_trip_and_yolo_losses_read_the_heads():
    loss = YoloLoss(anchors=[[10, 14], [23, 27]], stride=16, num_classes=4, ignore_threshold=0.7, max_boxes=20)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, YoloLoss)
    assert (restored.anchors, restored.stride, restored.num_classes, restored.ignore_threshold, restored.max_boxes) == (
        [[10, 14], [23, 27]], 16, 4, 0.7, 20)

    inputs = keras.Input((None, None, 3))
    outputs = [YoloHead(anchors=[[30, 30]], num_classes=2, stride=32, head_index=0, ignore_threshold=0.7)(
        keras.layers.Conv2D(7, 1, strides=32)(inputs))]
    (head_loss,) = yolo_losses(keras.Model(inputs, outputs), max_boxes=7)
    assert (head_loss.anchors, head_loss.stride, head_loss.ignore_threshold, head_loss.max_boxes) == (
        [[30, 30]], 32, 0.7, 7)


def test_training_with_the_loss_lowers_it_and_saves_safely(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(features)
    features = keras.layers.MaxPooling2D(4)(features)
    raw = keras.layers.Conv2D(2 * 7, 1)(features)
    outputs = [YoloHead(anchors=[[12, 12], [30, 30]], num_classes=2, stride=16, head_index=0)(raw)]
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=yolo_losses(model, max_boxes=4))
    images = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype(np.float32)
    boxes = [np.array([[4, 4, 16, 16]]), np.array([[10, 2, 40, 30]]), np.zeros((0, 4)), np.array([[0, 0, 32, 32]])]
    targets = encode_targets(boxes, [[0], [1], [], [1]], input_size=32, heads=[HeadSpec([[12, 12], [30, 30]], 16, 2)],
                             max_boxes=4)
    history = model.fit(images, targets, epochs=30, batch_size=4, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert [type(loss) for loss in keras.tree.flatten(restored.loss)] == [YoloLoss]
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def reference_loss(y_true, y_pred, anchors, stride, ignore_threshold, max_boxes):
    """Loop-by-loop NumPy oracle of the YOLOv3 loss (float64), written from the formulas, not from the module."""
    from defi1.boxes import box_iou, xyxy_from_cxcywh

    def bce_vector(label, logit):
        probability = 1 / (1 + np.exp(-logit))
        return -label * np.log(probability) - (1 - label) * np.log(1 - probability)

    batch, grid_h, grid_w, _ = y_pred.shape
    num_anchors = len(anchors)
    rows = y_pred.reshape(batch, grid_h, grid_w, num_anchors, -1).astype(np.float64)
    cells = y_true[:, :-max_boxes].reshape(batch, grid_h, grid_w, num_anchors, -1).astype(np.float64)
    total = 0.0
    for image in range(batch):
        truth = y_true[image, -max_boxes:]
        truth_boxes = xyxy_from_cxcywh(truth[truth[:, 4] == 1, :4])
        for y in range(grid_h):
            for x in range(grid_w):
                for anchor in range(num_anchors):
                    t = rows[image, y, x, anchor]
                    target = cells[image, y, x, anchor]
                    if target[4] == 1:
                        weight = 2 - target[2] * target[3] / (grid_w * stride * grid_h * stride)
                        offsets = np.array([target[0] / stride - x, target[1] / stride - y])
                        total += weight * bce_vector(offsets, t[0:2]).sum()
                        total += weight * 0.5 * ((t[2:4] - np.log(target[2:4] / anchors[anchor])) ** 2).sum()
                        total += bce_vector(1, t[4]) + bce_vector(target[5:], t[5:]).sum()
                        continue
                    centre = (1 / (1 + np.exp(-t[0:2])) + [x, y]) * stride
                    size = np.array(anchors[anchor]) * np.exp(t[2:4])
                    predicted = xyxy_from_cxcywh(np.concatenate([centre, size])[None])
                    best = box_iou(predicted, truth_boxes).max() if len(truth_boxes) else 0.0
                    if best <= ignore_threshold:
                        total += bce_vector(0, t[4])
    return total / batch


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ignore_threshold", [0.5, 0.7])
def test_loss_matches_a_loop_by_loop_reference_on_random_data(ignore_threshold):
    rng = np.random.default_rng(7)
    anchors = [[10, 14], [23, 27], [37, 58]]
    head = HeadSpec(anchors=anchors, stride=16, num_classes=3)
    boxes_list = [np.array([[2, 3, 20, 30], [30, 30, 60, 50], [40, 2, 63, 20], [5, 40, 15, 63]]),
                  np.zeros((0, 4)), np.array([[10, 10, 50, 55]])]
    y_true = encode_targets(boxes_list, [np.array([0, 1, 2, 1]), np.zeros(0), np.array([2])], input_size=64,
                            heads=[head], max_boxes=6)[0]
    y_pred = rng.normal(0, 1.5, size=(3, 4, 4, 3 * 8)).astype(np.float32)
    loss = YoloLoss(anchors=anchors, stride=16, num_classes=3, ignore_threshold=ignore_threshold, max_boxes=6)
    expected = reference_loss(y_true, y_pred, anchors, 16, ignore_threshold, 6)
    assert loss_value(loss, y_true, y_pred) == pytest.approx(expected, rel=1e-4)
