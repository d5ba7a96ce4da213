"""defi1.detection.sliding_window: windows counted by hand, a classifier's windows found, crops cut from labels."""

import numpy as np
import pytest

from defi1.detection.labels import write_dataset_yaml, write_yolo_labels
from defi1.detection.sliding_window import crop_windows, crops_dataset, sliding_window_detect, window_boxes
from defi1.images import write_image


def test_window_boxes_cover_the_image_at_each_size():
    boxes = window_boxes((100, 60), window_sizes=[40, 80], stride_fraction=0.5)
    # side 40, stride 20: x in 0, 20, 40, 60 and y in 0, 20; side 80 does not fit in a height of 60
    assert boxes.shape == (8, 4)
    assert boxes[0].tolist() == [0, 0, 40, 40] and boxes[-1].tolist() == [60, 20, 100, 60]
    # a stride that does not divide the image: the last window is aligned on the edge
    assert window_boxes((50, 30), window_sizes=[30], stride_fraction=1.0)[:, 0].tolist() == [0, 20]
    with pytest.raises(ValueError, match=r"stride_fraction must be in \(0, 1\], got 0"):
        window_boxes((10, 10), window_sizes=[5], stride_fraction=0)


class RedFraction:
    """A stand-in classifier: class 0 ("red object") with probability the window's fraction of red, else class 1
    (background)."""

    input_shape = (None, 8, 8, 3)

    def __call__(self, crops, training=False):
        red = (crops[..., 0] > 128).mean(axis=(1, 2))
        return np.stack([red, 1.0 - red], axis=1)


def test_sliding_window_detect_keeps_the_window_on_the_object():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[16:48, 16:48, 0] = 255
    result = sliding_window_detect(RedFraction(), image, window_sizes=[32], stride_fraction=0.5,
                                   background_class=1, score_threshold=0.6)
    assert result.num_windows == 9  # x and y in 0, 16, 32
    assert result.boxes.tolist() == [[16, 16, 48, 48]] and result.class_ids.tolist() == [0]
    assert result.scores[0] == pytest.approx(1.0) and result.seconds > 0
    # the four corner windows hold a quarter of the square: background at 0.75
    corners = np.isin(np.arange(9), [0, 2, 6, 8])
    assert np.allclose(result.window_scores[corners], 0.75, atol=0.05)
    assert (result.window_class_ids[corners] == 1).all()


def test_crops_dataset_cuts_objects_and_backgrounds(tmp_path):
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[20:60, 20:60] = 255
    write_image(tmp_path / "images" / "train" / "a.png", image)
    write_yolo_labels(tmp_path / "labels" / "train" / "a.txt", [0], np.array([[0.4, 0.4, 0.4, 0.4]]))
    data_yaml = write_dataset_yaml(tmp_path / "data.yaml", names=["square"], train="images/train",
                                   val="images/train")
    images, labels, names = crops_dataset(data_yaml, "train", crop_size=8, backgrounds_per_image=2, seed=1)
    assert names == ["square", "background"] and labels.tolist() == [0, 1, 1]
    assert images.shape == (3, 8, 8, 3) and (images[0] == 255).all()
    assert images[1:].mean() < 255 * 0.2  # backgrounds overlap the square by an IoU under 0.1


def test_crop_windows_resizes_each_window():
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    crops = crop_windows(image, [[0, 0, 8, 8], [8, 8, 16, 16]], 8)
    assert crops.shape == (2, 8, 8, 3) and (crops[1] == image[8:, 8:]).all()
