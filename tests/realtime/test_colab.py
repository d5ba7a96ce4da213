"""Tests of the pure parts of defi1.realtime.colab (the browser bridge itself needs Colab)."""

import base64

import cv2
import numpy as np
import pytest

from defi1.errors import Defi1Error
from defi1.realtime.colab import (decode_data_url, encode_data_url, in_colab, overlay_image, run_colab_webcam,
                                  take_photo)

from .conftest import StandInDetection, draw_box

pytestmark = pytest.mark.backend_agnostic  # numpy / OpenCV / threads only, or the backend's compiled pass


def test_png_data_url_round_trip():
    image = np.zeros((6, 8, 3), dtype=np.uint8)
    image[1, 2] = (255, 0, 0)  # red in RGB
    url = encode_data_url(image)
    assert url.startswith("data:image/png;base64,")
    np.testing.assert_array_equal(decode_data_url(url), image)


def test_decode_browser_jpeg():
    # what canvas.toDataURL('image/jpeg') sends: a JPEG of a pure blue frame
    bgr = np.zeros((16, 16, 3), dtype=np.uint8)
    bgr[:, :, 0] = 255
    ok, buffer = cv2.imencode(".jpg", bgr)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode()
    decoded = decode_data_url(url)
    assert decoded.shape == (16, 16, 3)
    assert decoded[8, 8, 2] > 240 and decoded[8, 8, 0] < 15  # blue lands in the RGB blue channel


def test_decode_bad_data_urls():
    with pytest.raises(ValueError, match="expected a data URL"):
        decode_data_url("http://example.com/a.jpg")
    with pytest.raises(ValueError, match="base64 payload is invalid"):
        decode_data_url("data:image/jpeg;base64,@@@")
    with pytest.raises(ValueError, match="does not hold a decodable image"):
        decode_data_url("data:image/jpeg;base64," + base64.b64encode(b"hello").decode())


def test_overlay_is_transparent_except_boxes():
    detection = StandInDetection(boxes=np.array([[2, 3, 12, 13]], dtype=np.float32), scores=np.array([0.9]),
                                 class_ids=np.array([0]))
    overlay = overlay_image(detection, 20, 16, draw=draw_box)
    assert overlay.shape == (16, 20, 4)
    assert overlay[3, 5].tolist() == [0, 255, 0, 255]  # top edge of the box: green, opaque
    assert overlay[8, 8, 3] == 0 and overlay[0, 0, 3] == 0  # inside and outside the box: transparent
    assert decode_data_url(encode_data_url(overlay)).shape == (16, 20, 3)


def test_clear_error_outside_colab():
    if in_colab():
        pytest.skip("running on Colab")
    with pytest.raises(Defi1Error, match="needs Google Colab"):
        take_photo()
    with pytest.raises(Defi1Error, match="needs Google Colab"):
        run_colab_webcam(object())
