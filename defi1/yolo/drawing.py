"""Drawing detections on RGB images (OpenCV drawing functions on an RGB array: colours are given as RGB)."""

from __future__ import annotations

import colorsys

import numpy as np

from defi1.images import as_rgb_uint8


def class_color(class_id) -> tuple[int, int, int]:
    """A distinct, stable RGB colour for a class id (golden-ratio hues, bright and saturated)."""
    hue = (int(class_id) * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(red * 255), int(green * 255), int(blue * 255)


def draw_detections(image_rgb, detection, *, thickness=None, font_scale=None, show_scores=True) -> np.ndarray:
    """Draw boxes and labels (``name score``) of a :class:`~defi1.yolo.decode.Detection` on an image.

    Args:
        image_rgb: ``(height, width, 3)`` RGB ``uint8`` image (grayscale and RGBA are converted); not modified.
        detection: boxes ``(K, 4)`` xyxy pixels of this image, scores, class ids and names.
        thickness: line thickness in pixels (default: scaled with the image size).
        font_scale: OpenCV font scale of the labels (default: scaled with the image size).
        show_scores: append the score to each label.
    Returns:
        a new RGB ``uint8`` image ``(height, width, 3)``.
    """
    import cv2

    canvas = np.ascontiguousarray(as_rgb_uint8(image_rgb)).copy()
    height, width = canvas.shape[:2]
    side = max(height, width)
    thickness = int(thickness) if thickness is not None else max(1, round(side / 400))
    font_scale = float(font_scale) if font_scale is not None else max(0.35, side / 1200)
    font = cv2.FONT_HERSHEY_SIMPLEX
    boxes = np.asarray(detection.boxes, dtype=np.float64).reshape(-1, 4)
    for index, box in enumerate(boxes):
        class_id = int(detection.class_ids[index])
        color = class_color(class_id)
        x_min, y_min, x_max, y_max = (int(round(value)) for value in box)
        cv2.rectangle(canvas, (x_min, y_min), (x_max, y_max), color, thickness, lineType=cv2.LINE_8)
        name = detection.class_names[index] if index < len(detection.class_names) else str(class_id)
        label = f"{name} {float(detection.scores[index]):.2f}" if show_scores else name
        (text_width, text_height), baseline = cv2.getTextSize(label, font, font_scale, max(1, thickness // 2))
        # The label sits above the box, or inside its top when the box touches the image top.
        top = y_min - text_height - baseline - 2
        if top < 0:
            top = y_min
        left = min(max(x_min, 0), max(width - text_width - 2, 0))
        cv2.rectangle(canvas, (left, top), (left + text_width + 2, top + text_height + baseline + 2), color, -1)
        text_color = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
        cv2.putText(canvas, label, (left + 1, top + text_height + 1), font, font_scale, text_color,
                    max(1, thickness // 2), lineType=cv2.LINE_AA)
    return canvas
