"""Tests of defi1.images: every file becomes RGB uint8 (EXIF orientation, 16-bit, palette, CMYK, alpha), errors name
the file, writes are atomic, and the array helpers (BGR, layouts, network scaling) give known values."""

import numpy as np
import pytest
from PIL import Image

from defi1.errors import ImageReadError
from defi1.images import (as_rgb_uint8, bgr_from_rgb, image_size, is_image_path, list_images, pixels_to_unit,
                          read_image, read_image_with_alpha, resize_image, rgb_from_bgr, verify_image, write_image)

pytestmark = pytest.mark.backend_agnostic  # Pillow and NumPy only


def stored_pixels():
    """A 2 x 3 (height x width) RGB image whose pixels are all different."""
    return np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10


def test_exif_orientation_is_applied(tmp_path):
    stored = stored_pixels()
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation 6: the camera was turned; display rotated 90 degrees clockwise
    image.save(tmp_path / "turned.png", exif=exif)
    upright = read_image(tmp_path / "turned.png")
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))  # clockwise: (2, 3) -> (3, 2)
    assert image_size(tmp_path / "turned.png") == (2, 3)  # (width, height) as displayed
    image.save(tmp_path / "plain.png")
    np.testing.assert_array_equal(read_image(tmp_path / "plain.png"), stored)


def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path):
    values = np.array([[0, 4095], [2048, 1000]], dtype=np.uint16)  # a 12-bit sensor in a 16-bit PNG
    Image.fromarray(values).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    # Scaled by 255 / max: 4095 -> 255, 2048 -> 127.5 -> 127, 1000 -> 62.3 -> 62; grey on three channels.
    expected = np.array([[0, 255], [127, 62]], dtype=np.uint8)
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], expected)


def test_palette_image_gives_its_palette_colours(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 128, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").tolist() == [[[255, 0, 0], [0, 128, 255]]]


def test_cmyk_image_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "print.tif")  # full magenta and yellow: red
    Image.new("CMYK", (1, 1), (0, 0, 0, 255)).save(tmp_path / "black.tif")
    assert read_image(tmp_path / "print.tif").tolist() == [[[255, 0, 0]] * 2] * 2
    assert read_image(tmp_path / "black.tif").tolist() == [[[0, 0, 0]]]


def test_grayscale_and_alpha(tmp_path):
    Image.fromarray(np.array([[0, 200]], dtype=np.uint8)).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png").tolist() == [[[0, 0, 0], [200, 200, 200]]]
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 255]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "crop.png")
    assert read_image(tmp_path / "crop.png").tolist() == [[[10, 20, 30], [40, 50, 60]]]  # alpha dropped
    np.testing.assert_array_equal(read_image_with_alpha(tmp_path / "crop.png"), rgba)
    # Without alpha, read_image_with_alpha makes every pixel opaque.
    assert read_image_with_alpha(tmp_path / "grey.png")[:, :, 3].tolist() == [[255, 255]]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png: no such image file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"broken.jpg: cannot decode image .* \(expected a JPEG, PNG"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        image_size(tmp_path / "broken.jpg")
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        list_images(tmp_path / "nowhere")


def test_list_images_keeps_known_extensions_in_name_order(tmp_path):
    for name in ("b.PNG", "a.jpg", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    assert [path.name for path in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]
    assert is_image_path("x.TIFF") and not is_image_path("x.mp4")


def test_write_image_round_trips_and_is_atomic(tmp_path):
    stored = stored_pixels()
    path = write_image(tmp_path / "out" / "image.png", stored)
    np.testing.assert_array_equal(read_image(path), stored)
    write_image(path, stored[::-1])  # replaced whole
    np.testing.assert_array_equal(read_image(path), stored[::-1])
    assert sorted(entry.name for entry in path.parent.iterdir()) == ["image.png"]  # no temporary left
    with pytest.raises(ValueError, match="image.png: expected a uint8 image array, got dtype float32"):
        write_image(path, stored.astype(np.float32))
    np.testing.assert_array_equal(read_image(path), stored[::-1])  # the refused write changed nothing


def test_bgr_and_layout_conversions():
    rgb = stored_pixels()
    np.testing.assert_array_equal(bgr_from_rgb(rgb)[..., 0], rgb[..., 2])
    np.testing.assert_array_equal(rgb_from_bgr(bgr_from_rgb(rgb)), rgb)
    np.testing.assert_array_equal(rgb_from_bgr(rgb[..., 0]), np.repeat(rgb[..., :1], 3, axis=2))  # grey frame
    bgra = np.concatenate([bgr_from_rgb(rgb), np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(rgb_from_bgr(bgra), rgb)
    np.testing.assert_array_equal(as_rgb_uint8(rgb[..., :1]), np.repeat(rgb[..., :1], 3, axis=2))
    with pytest.raises(ValueError, match="got shape \\(2, 3, 2\\)"):
        as_rgb_uint8(rgb[..., :2])


def test_pixels_to_unit_is_the_network_scaling():
    pixels = np.array([[[0, 51, 255]]], dtype=np.uint8)
    scaled = pixels_to_unit(pixels)
    assert scaled.dtype == np.float32
    # pixel * float32(1 / 255) in float32: 0 and 1 exactly, 51 / 255 = 0.2 within one float32 rounding step.
    np.testing.assert_array_equal(scaled, pixels.astype(np.float32) * np.float32(1.0 / 255.0))
    assert scaled[0, 0, 0] == 0.0 and scaled[0, 0, 2] == 1.0
    np.testing.assert_array_max_ulp(scaled, np.float32([[[0.0, 0.2, 1.0]]]), maxulp=1)
    batch = np.zeros((2, 1, 1, 3), dtype=np.float32)
    written = pixels_to_unit(pixels, out=batch[1])
    assert np.shares_memory(written, batch)
    np.testing.assert_array_equal(batch[1], scaled)
    np.testing.assert_array_equal(batch[0], 0.0)


def test_a_header_declaring_an_enormous_image_is_an_error_naming_the_file(decompression_bomb):
    # Pillow raises DecompressionBombError (not an OSError) for 60000 x 60000: before issue 12 it escaped as a
    # traceback from every command.
    for read in (read_image, image_size, verify_image):
        with pytest.raises(ImageReadError, match=r"huge\.png: image too large to read: .*3600000000 pixels"):
            read(decompression_bomb)


def test_image_size_reads_the_header_only(tmp_path, monkeypatch):
    stored = np.zeros((20, 30, 3), np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # stored 30 wide and 20 high, displayed turned: 20 wide and 30 high
    image.save(tmp_path / "turned.jpg", exif=exif)
    Image.fromarray(stored).save(tmp_path / "plain.jpg")

    def no_decoding(*_, **__):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageOps.exif_transpose", no_decoding)
    assert image_size(tmp_path / "turned.jpg") == (20, 30)
    assert image_size(tmp_path / "plain.jpg") == (30, 20)
    assert verify_image(tmp_path / "plain.jpg", decode_pixels=False) == (30, 20)


def test_verify_image_finds_truncated_files_from_their_end(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "whole.jpg", pixels)
    write_image(tmp_path / "whole.png", pixels)
    for name in ("whole.jpg", "whole.png"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name.replace("whole", "cut")).write_bytes(data[: len(data) * 2 // 3])
        assert verify_image(tmp_path / name, decode_pixels=False) == (64, 64)
        with pytest.raises(ImageReadError, match=r"cut\.(jpg|png): cannot decode image"):
            verify_image(tmp_path / name.replace("whole", "cut"), decode_pixels=False)
    # Data appended after JPEG's end marker (phones' motion photos) is not damage: the file is decoded to decide.
    (tmp_path / "appended.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes() + b"\x00ftypmp42" * 100)
    assert verify_image(tmp_path / "appended.jpg", decode_pixels=False) == (64, 64)


def test_pixels_to_unit_gives_numpys_mixed_multiplication_bit_for_bit():
    every_value = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    reference = np.multiply(every_value, np.float32(1.0 / 255.0), dtype=np.float32)
    np.testing.assert_array_equal(pixels_to_unit(every_value), reference)
    out = np.full(every_value.shape, np.nan, np.float32)
    np.testing.assert_array_equal(pixels_to_unit(every_value, out=out), reference)


def test_resize_image_averages_areas_for_strong_reductions_and_is_bilinear_otherwise():
    import cv2

    # 6 x 6 made of 3 x 3 blocks of 0, 40, 80, 120 with each block's centre pixel 9 brighter: a third of the size
    # is each block's mean, v + 1 (area), where bilinear sampling would take the centre pixel alone, v + 9.
    blocks = np.kron(np.array([[0, 40], [80, 120]]), np.ones((3, 3)))
    blocks[1::3, 1::3] += 9
    image = np.repeat(blocks.astype(np.uint8)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(resize_image(image, 2, 2)[..., 0], [[1, 41], [81, 121]])
    # A mild reduction (640 x 480 to 416 x 312, what a webcam frame goes through) is OpenCV's bilinear resize.
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_image(frame, 416, 312),
                                  cv2.resize(frame, (416, 312), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(resize_image(frame, 320, 200),  # one side halved: area
                                  cv2.resize(frame, (320, 200), interpolation=cv2.INTER_AREA))
    assert resize_image(frame, 640, 480) is frame


def test_channel_swaps_of_views_and_other_types_are_exact_copies():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (9, 12, 4), dtype=np.uint8)
    view = frame[::2, ::3, :3]  # not contiguous: a crop of a BGRA frame
    for image in (view, view.astype(np.float64), view.astype(np.uint16), frame):
        swapped = rgb_from_bgr(image)
        np.testing.assert_array_equal(swapped, image[:, :, 2::-1])
        assert swapped.flags.c_contiguous and not np.shares_memory(swapped, image)
    np.testing.assert_array_equal(bgr_from_rgb(view), view[:, :, ::-1])
