"""Webcam detection on Google Colab, where the notebook's machine has no camera: the browser's webcam is read
through Colab's JavaScript bridge (``google.colab.output.eval_js``) and the boxes are drawn over the live video.

* :func:`take_photo`: one picture from the webcam, as an RGB array.
* :func:`run_colab_webcam`: a frame loop; each round trip sends the overlay of the last frame's boxes (a transparent
  PNG) to the page and brings back the newest webcam frame (JPEG). The detector is the same
  :class:`defi1.yolo.detector.Detector` as everywhere else. Click the video to stop.

``google.colab`` is imported only when these run; elsewhere they raise :class:`defi1.errors.Defi1Error` saying so.
The pure parts (:func:`decode_data_url`, :func:`encode_data_url`, :func:`overlay_image`) work anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

import cv2
import numpy as np

from defi1.environment import in_colab  # noqa: F401  (re-exported: notebooks import it from here)
from defi1.errors import Defi1Error
from defi1.images import bgr_from_rgb, rgb_from_bgr

PHOTO_JS = """
async function defi1TakePhoto(quality, width, height) {
  const div = document.createElement('div');
  const button = document.createElement('button');
  button.textContent = 'Capture';
  div.appendChild(button);
  const video = document.createElement('video');
  video.style.display = 'block';
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: width, height: height}});
  document.body.appendChild(div);
  div.appendChild(video);
  video.srcObject = stream;
  await video.play();
  google.colab.output.setIframeHeight(document.documentElement.scrollHeight, true);
  await new Promise((resolve) => button.onclick = resolve);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  stream.getVideoTracks()[0].stop();
  div.remove();
  return canvas.toDataURL('image/jpeg', quality);
}
"""

STREAM_JS = """
var defi1 = {div: null, video: null, overlay: null, label: null, canvas: null, stream: null, stop: false};
async function defi1Start(width, height) {
  if (defi1.div !== null) return;
  defi1.stop = false;
  defi1.div = document.createElement('div');
  defi1.div.style.position = 'relative';
  defi1.div.style.width = width + 'px';
  defi1.video = document.createElement('video');
  defi1.video.width = width;
  defi1.video.height = height;
  defi1.video.setAttribute('playsinline', '');
  defi1.overlay = document.createElement('img');
  defi1.overlay.style.position = 'absolute';
  defi1.overlay.style.left = '0px';
  defi1.overlay.style.top = '0px';
  defi1.overlay.width = width;
  defi1.overlay.height = height;
  defi1.label = document.createElement('div');
  defi1.label.textContent = 'Starting the webcam... click the video to stop.';
  const stop = () => { defi1.stop = true; };
  defi1.video.onclick = stop;
  defi1.overlay.onclick = stop;
  defi1.div.appendChild(defi1.video);
  defi1.div.appendChild(defi1.overlay);
  defi1.div.appendChild(defi1.label);
  document.body.appendChild(defi1.div);
  defi1.stream = await navigator.mediaDevices.getUserMedia({video: {width: width, height: height}});
  defi1.video.srcObject = defi1.stream;
  await defi1.video.play();
  defi1.canvas = document.createElement('canvas');
  defi1.canvas.width = width;
  defi1.canvas.height = height;
  google.colab.output.setIframeHeight(document.documentElement.scrollHeight, true);
}
function defi1Stop() {
  if (defi1.stream) defi1.stream.getVideoTracks()[0].stop();
  if (defi1.div) defi1.div.remove();
  defi1.div = null;
  defi1.stream = null;
}
async function defi1Frame(width, height, overlayUrl, labelText, quality) {
  await defi1Start(width, height);
  if (defi1.stop) { defi1Stop(); return ''; }
  if (overlayUrl !== '') defi1.overlay.src = overlayUrl;
  if (labelText !== '') defi1.label.textContent = labelText;
  await new Promise((resolve) => window.requestAnimationFrame(resolve));
  defi1.canvas.getContext('2d').drawImage(defi1.video, 0, 0, width, height);
  return defi1.canvas.toDataURL('image/jpeg', quality);
}
"""


def _colab_output():
    try:
        from google.colab import output
    except ImportError as error:
        raise Defi1Error("the browser webcam bridge needs Google Colab (google.colab is not available here); "
                         "on your own machine use `defi1 detect stream --source 0` or run_stream(0, detector)") \
            from error
    return output


def _define_javascript(code: str) -> None:
    from IPython.display import Javascript, display

    display(Javascript(code))


def decode_data_url(data_url: str) -> np.ndarray:
    """A ``data:image/...;base64,...`` URL (as the browser's ``canvas.toDataURL`` returns) -> RGB ``uint8``
    ``(height, width, 3)``. Raises ``ValueError`` saying what was expected."""
    if not isinstance(data_url, str) or not data_url.startswith("data:image/") or ";base64," not in data_url:
        shown = repr(data_url[:40]) if isinstance(data_url, str) else type(data_url).__name__
        raise ValueError(f"expected a data URL 'data:image/<type>;base64,<data>', got {shown}")
    try:
        payload = base64.b64decode(data_url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"the data URL's base64 payload is invalid ({error})") from error
    image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"the data URL does not hold a decodable image ({len(payload)} bytes)")
    return rgb_from_bgr(image)


def encode_data_url(image: np.ndarray, *, format: str = "png", quality: int = 80) -> str:
    """An RGB ``(height, width, 3)`` or RGBA ``(height, width, 4)`` ``uint8`` image -> ``data:image/png;base64,...``
    (or ``jpeg``, without alpha)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB or RGBA uint8 image (height, width, 3 or 4), got {image.dtype} "
                         f"{image.shape}")
    if format == "png":
        converted = bgr_from_rgb(image) if image.shape[2] == 3 else cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
        ok, buffer = cv2.imencode(".png", converted)
        mime = "image/png"
    elif format == "jpeg":
        ok, buffer = cv2.imencode(".jpg", bgr_from_rgb(image[:, :, :3]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        mime = "image/jpeg"
    else:
        raise ValueError(f"format {format!r}: expected 'png' or 'jpeg'")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {format}")
    return f"data:{mime};base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def overlay_image(detection, width: int, height: int, *, draw=None) -> np.ndarray:
    """The boxes and labels of ``detection`` (boxes xyxy pixels of a ``width`` × ``height`` frame) on a transparent
    RGBA ``uint8`` canvas ``(height, width, 4)``: drawn pixels are opaque, the rest fully transparent."""
    if draw is None:
        from defi1.yolo.drawing import draw_detections as draw
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    drawn = np.asarray(draw(canvas, detection))
    alpha = np.where(drawn.any(axis=2), 255, 0).astype(np.uint8)
    return np.dstack([drawn, alpha])


def take_photo(*, quality: float = 0.8, width: int = 640, height: int = 480) -> np.ndarray:
    """Show the webcam with a *Capture* button in the Colab output and return the picture as RGB ``uint8``."""
    output = _colab_output()
    _define_javascript(PHOTO_JS)
    data_url = output.eval_js(f"defi1TakePhoto({float(quality)}, {int(width)}, {int(height)})")
    return decode_data_url(data_url)


def run_colab_webcam(detector, *, max_frames: int | None = None, width: int = 640, height: int = 480,
                     quality: float = 0.8, on_frame=None):
    """Detect on the browser's webcam with boxes drawn over the live video, until the video is clicked or
    ``max_frames`` frames were processed. ``on_frame(image, detection, info)`` is called per frame (returning
    ``True`` stops). Returns a :class:`defi1.realtime.stream.StreamStats` (round-trip latency included)."""
    from defi1.realtime.stream import StreamStats

    output = _colab_output()
    _define_javascript(STREAM_JS)
    stats = StreamStats(source="browser webcam (Colab)", mode="drop")
    overlay_url, label = "", ""
    first_done = None
    try:
        while max_frames is None or stats.frames_processed < max_frames:
            requested = time.perf_counter()
            data_url = output.eval_js(f"defi1Frame({int(width)}, {int(height)}, {json.dumps(overlay_url)}, "
                                      f"{json.dumps(label)}, {float(quality)})")
            if not data_url:
                stats.end_reason = "stopped by the user (video clicked)"
                break
            image = decode_data_url(data_url)
            started = time.perf_counter()
            detection = detector.detect(image)[0]
            model_ms = (time.perf_counter() - started) * 1000.0
            overlay_url = encode_data_url(overlay_image(detection, image.shape[1], image.shape[0]))
            done = time.perf_counter()
            stats.frames_processed += 1
            stats.frames_captured += 1
            stats.model_ms.append(model_ms)
            stats.latency_ms.append((done - requested) * 1000.0)
            if first_done is None:
                first_done = done
            stats.elapsed_s = done - first_done
            label = (f"{stats.fps_end_to_end:.1f} FPS, detection {model_ms:.0f} ms, {len(detection.scores)} "
                     "object(s) - click the video to stop")
            if on_frame is not None and on_frame(image, detection, {"index": stats.frames_processed - 1,
                                                                    "model_ms": model_ms}):
                stats.end_reason = "stopped by the callback"
                break
        else:
            stats.end_reason = f"max_frames ({max_frames}) reached"
    finally:
        output.eval_js("defi1Stop()")
    return stats
