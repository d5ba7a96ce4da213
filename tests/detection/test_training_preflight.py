"""``detect train`` checks its dataset once before the first epoch (issues 11 and 12): bad images are found and
left out at the start, and a training run through the one loader accepts datasets as students have them."""

import numpy as np
import pytest

from defi1.detection.training import train_detector
from defi1.errors import DataError
from defi1.images import write_image

from ..conftest import write_decompression_bomb
from .conftest import narrow_tiny_cfg, shapes_dataset


def _train(data_yaml, cfg, out_dir, logged):
    return train_detector(data=data_yaml, model=str(cfg), input_size=64, epochs=1, batch_size=2, augment=False,
                          seed=0, out_dir=out_dir, verbose=0, early_stopping_patience=0, reduce_lr_patience=0,
                          log=logged.append)


def test_bad_images_are_left_out_before_the_first_epoch(tmp_path):
    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=4, image_size=64)
    cfg = narrow_tiny_cfg(tmp_path / "narrow.cfg")
    # A decompression bomb (issue 12: PIL's DecompressionBombError mid-epoch) and a truncated JPEG with a label.
    write_decompression_bomb(tmp_path / "shapes" / "images" / "train" / "huge.png")
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    photo = write_image(tmp_path / "shapes" / "images" / "train" / "photo.jpg", pixels)
    photo.write_bytes(photo.read_bytes()[:1500])
    (tmp_path / "shapes" / "labels" / "train" / "photo.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    logged = []
    result = _train(data_yaml, cfg, tmp_path / "run", logged)
    assert result.epochs_completed == 1
    # The validation split of this dataset is its training split: each bad image is found in both, left out once.
    assert logged[0].startswith("data check: 4 unreadable_image (error)")
    left_out = [line for line in logged if line.startswith("  left out: ")]
    assert [line.split(": ")[1].rsplit("/", 1)[-1] for line in left_out] == ["huge.png", "photo.jpg"]
    assert "2 image(s) left out of training" in logged


def test_a_split_without_usable_images_stops_before_training(tmp_path):
    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=2, image_size=64)
    for path in (tmp_path / "shapes" / "images" / "train").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"no usable image in the 'train' split \(.*train_00000\.\w+: cannot be read"):
        _train(data_yaml, narrow_tiny_cfg(tmp_path / "narrow.cfg"), tmp_path / "run", [])
    assert not (tmp_path / "run").exists()  # stopped before the run folder was made


def test_training_reads_a_voc_dataset_through_the_loader(tmp_path):
    from .formats.test_loader import _same_dataset_in_three_forms

    voc = _same_dataset_in_three_forms(tmp_path / "forms")["voc"]
    logged = []
    result = _train(voc, narrow_tiny_cfg(tmp_path / "narrow.cfg", num_classes=2), tmp_path / "run", logged)
    assert result.epochs_completed == 1 and result.history["epoch"] == [0.0]
    assert np.isfinite(result.history["val_loss"][0])  # the VOC val split (ImageSets/Main/val.txt) was used
    assert not any(line.startswith("data check") for line in logged)  # a clean dataset: nothing to report


def test_label_files_training_would_refuse_are_left_out_and_counted_before_training(tmp_path):
    """Issue 12: a label file with a malformed line, or a class beyond the names, used to stop training when its
    batch was loaded, one file per run; the check before the first epoch finds them all and leaves them out."""
    from defi1.detection.check import check_before_training

    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=4, image_size=64)
    labels = tmp_path / "shapes" / "labels" / "train"
    first, second = sorted(labels.glob("*.txt"))[:2]
    first.write_text("0 0.5 0.5 0.2\n")  # four numbers
    second.write_text("9 0.5 0.5 0.2 0.2\n")  # class 9 of 5
    logged = []
    index = check_before_training(data_yaml, log=logged.append)
    assert [sample.image_path.stem for sample in index.samples("train")] == ["train_00002", "train_00003"]
    assert "2 image(s) left out of training" in logged
    left_out = sorted(line for line in logged if line.startswith("  left out: "))
    assert len(left_out) == 2 and first.name in left_out[0] and second.name in left_out[1]
