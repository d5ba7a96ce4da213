"""``defi1 detect predict`` as a library function: a :class:`~defi1.yolo.detector.Detector` on an image, a folder of
images or a video file, with annotated outputs and prediction files written beside each other.

This is an application of the lower layers: images are read by :mod:`defi1.images`, videos by
:class:`defi1.realtime.sources.VideoCaptureSource` and written by :class:`defi1.realtime.video.AtomicVideoWriter`,
boxes drawn by :func:`defi1.yolo.drawing.draw_detections` and saved by :func:`defi1.yolo.detector.save_detections_txt`.
"""

from __future__ import annotations

from pathlib import Path

from defi1.files import ensure_output_dir
from defi1.images import IMAGE_EXTENSIONS, is_image_path, list_images, read_image, write_image
from defi1.yolo.detector import save_detections_txt
from defi1.yolo.drawing import draw_detections

#: Extensions read as videos by :func:`predict_source` (OpenCV decodes them).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")
#: Frame rate of the annotated video when the source video does not say.
DEFAULT_VIDEO_FPS = 25.0


def is_video_path(path) -> bool:
    """True when the file name ends with a known video extension (case-insensitive)."""
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def predict_source(detector, source, out_dir, *, save_txt=False, save_images=True, progress=False) -> dict:
    """Run a :class:`~defi1.yolo.detector.Detector` on an image file, a folder of images or a video file and write
    the results.

    Outputs in ``out_dir``: annotated images under their own names (an annotated ``<stem>.mp4`` for a video), and with
    ``save_txt`` one ``labels/<stem>.txt`` per image (``labels/<stem>_<frame>.txt`` per video frame, frames counted
    from 0) of ``class cx cy w h confidence`` lines normalised to the original image
    (:func:`~defi1.yolo.detector.save_detections_txt`).

    An image that cannot be read raises (naming it) when it is the source; in a folder it is skipped, listed in the
    report, and the other images are processed. In a video, a frame that cannot be decoded is skipped and counted
    (:class:`~defi1.realtime.sources.VideoCaptureSource`); the video ends at the container's end; the annotated video
    appears only once complete.

    Returns:
        a report dict: ``images`` (images or frames processed), ``detections`` (their total), ``skipped`` (list of
        ``(path, reason)``), ``unreadable_frames`` (video frames skipped), ``outputs`` (written annotated files), ``labels_dir`` (or ``None``).
    """
    source, out_dir = Path(source), Path(out_dir)
    _check_source(source, out_dir)
    ensure_output_dir(out_dir)
    labels_dir = out_dir / "labels" if save_txt else None
    report = {"images": 0, "detections": 0, "skipped": [], "unreadable_frames": 0, "outputs": [],
              "labels_dir": labels_dir}
    if source.is_file() and is_video_path(source):
        _predict_video(detector, source, out_dir, report, save_images=save_images, progress=progress)
    else:
        _predict_images(detector, source, out_dir, report, save_images=save_images, progress=progress)
    return report


def _check_source(source, out_dir):
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such image, folder or video")
    if source.is_dir() and out_dir.resolve() == source.resolve():
        raise ValueError(f"{out_dir}: the output folder is the source folder; annotated images would overwrite the "
                         "originals (choose another --out)")
    if source.is_file() and not (is_image_path(source) or is_video_path(source)):
        raise ValueError(f"{source}: not an image ({', '.join(IMAGE_EXTENSIONS)}) or a video "
                         f"({', '.join(VIDEO_EXTENSIONS)})")


def _progress_bar(total, description, unit, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=not enabled)


def _record(report, detection, image, *, name, stem, out_dir, save_images, writer=None):
    """Count one processed image or frame, and write its annotated picture (or video frame) and prediction file."""
    report["images"] += 1
    report["detections"] += len(detection)
    if save_images:
        annotated = draw_detections(image, detection)
        if writer is not None:
            writer.write(annotated)
        else:
            report["outputs"].append(write_image(out_dir / name, annotated))
    if report["labels_dir"] is not None:
        save_detections_txt(report["labels_dir"] / f"{stem}.txt", detection)


def _predict_images(detector, source, out_dir, report, *, save_images, progress):
    paths = [source] if source.is_file() else list_images(source)
    if not paths:
        raise FileNotFoundError(f"{source}: no image files in this folder (expected {', '.join(IMAGE_EXTENSIONS)})")
    with _progress_bar(len(paths), f"predict {source.name}", "image", progress) as bar:
        for start in range(0, len(paths), detector.batch_size):
            chosen = paths[start:start + detector.batch_size]
            images, names = [], []
            for path in chosen:
                try:
                    images.append(read_image(path))
                    names.append(path)
                except (OSError, ValueError) as error:
                    if source.is_file():
                        raise
                    report["skipped"].append((str(path), str(error)))
            for path, image, detection in zip(names, images, detector.detect_batch(images)):
                _record(report, detection, image, name=path.name, stem=path.stem, out_dir=out_dir,
                        save_images=save_images)
            bar.update(len(chosen))


def _predict_video(detector, source, out_dir, report, *, save_images, progress):
    from defi1.realtime.sources import VideoCaptureSource
    from defi1.realtime.video import AtomicVideoWriter

    video = VideoCaptureSource(source)
    writer = AtomicVideoWriter(out_dir / f"{source.stem}.mp4", fps=video.fps or DEFAULT_VIDEO_FPS) \
        if save_images else None
    try:
        with video, _progress_bar(video.frame_count or None, f"predict {source.name}", "frame", progress) as bar:
            frames = iter(video)
            while batch := [frame for _, frame in zip(range(detector.batch_size), frames)]:
                images = [frame.image for frame in batch]
                for frame, image, detection in zip(batch, images, detector.detect_batch(images)):
                    _record(report, detection, image, name=None, stem=f"{source.stem}_{frame.index:06d}",
                            out_dir=out_dir, save_images=save_images, writer=writer)
                bar.update(len(batch))
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    report["unreadable_frames"] = video.unreadable
    written = writer.close() if writer is not None else None
    if written is not None:
        report["outputs"].append(written)
