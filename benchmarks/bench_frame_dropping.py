"""Frame dropping in real-time mode: how many frames a slow consumer gets, and how far behind it lags.

These are timing figures, so they are measured here and not asserted by the tests (which check only what holds
on any machine: every captured frame is either processed or counted as dropped, frames come in order, the last one
is seen). Two measurements, each against its ideal computed from the periods of the same run:

* :class:`defi1.realtime.sources.CaptureThread` in ``drop`` mode: a source producing 20 frames, one every 5 ms,
  read by a consumer that spends 30 ms per frame (6 times slower). Ideal: about 20 × 5 / 30 ≈ 3.3 frames taken,
  the rest dropped. Aim: at least 10 of the 20 dropped.
* :func:`defi1.realtime.stream.run_stream` in ``drop`` mode on a 30-frame, 30 fps file, with a detector taking
  100 ms per frame. Ideal: about one frame in three processed (10 of 30) and a latency of about one model period.
  Aims: 5 to 16 frames processed; the largest capture-to-written latency under 600 ms (it must not grow with the
  backlog).

    python benchmarks/bench_frame_dropping.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from defi1.realtime.sources import CaptureThread, FrameSource
from defi1.realtime.stream import run_stream
from defi1.yolo.decode import Detection


class CountingSource(FrameSource):
    """A live source producing ``count`` tiny frames, one every ``period`` seconds."""

    is_live = True
    name = "counting"

    def __init__(self, count, period):
        super().__init__()
        self.count, self.period = count, period

    def read(self):
        if self._next_index >= self.count:
            self.end_reason = "done"
            return None
        time.sleep(self.period)
        return self._frame(np.full((2, 2, 3), self._next_index, dtype=np.uint8))


class SlowDetector:
    """One fixed box per image, after ``delay_s`` seconds (as slow as a real model)."""

    def __init__(self, delay_s):
        self.delay_s = delay_s

    def detect(self, images):
        images = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else images
        time.sleep(self.delay_s)
        return [Detection(boxes=np.array([[0.0, 0.0, 10.0, 10.0]]), scores=np.array([0.9]),
                          class_ids=np.array([0]), class_names=["box"]) for _ in images]


def capture_thread_figures(*, count=20, period=0.005, consumer_period=0.03) -> dict:
    capture = CaptureThread(CountingSource(count, period), mode="drop").start()
    taken = []
    while (frame := capture.get(timeout=1.0)) is not None:
        taken.append(frame.index)
        time.sleep(consumer_period)
    capture.stop()
    return {"captured": capture.captured, "taken": len(taken), "dropped": capture.dropped,
            "ideal_taken": count * period / consumer_period}


def stream_figures(video, *, frames=30, fps=30.0, model_period=0.1) -> dict:
    stats = run_stream(str(video), SlowDetector(model_period), mode="drop", draw=lambda image, detection: image,
                       overlay=False)
    return {"captured": stats.frames_captured, "processed": stats.frames_processed, "dropped": stats.frames_dropped,
            "max_latency_ms": max(stats.latency_ms), "ideal_processed": frames / (fps * model_period),
            "ideal_latency_ms": model_period * 1000.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="measurements of each kind (default 5)")
    arguments = parser.parse_args(argv)

    from defi1.environment import describe
    from defi1.realtime.video import write_synthetic_video

    environment = describe()
    print(f"machine: {environment['machine']}; backend: {environment['backend']}")
    if hasattr(os, "getloadavg"):
        print("load average before the run: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="defi1-dropping-") as folder:
        video = write_synthetic_video(Path(folder) / "clip.mp4", frames=30, width=160, height=120, fps=30)
        print("\ncapture thread, drop mode (20 frames every 5 ms, consumer 30 ms per frame; aim: dropped >= 10)")
        for _ in range(arguments.repeats):
            figures = capture_thread_figures()
            print(f"  taken {figures['taken']:2d} (ideal {figures['ideal_taken']:.1f}), dropped {figures['dropped']:2d}"
                  f" of {figures['captured']}: {'ok' if figures['dropped'] >= 10 else 'AIM MISSED'}")
        print("\nrun_stream, drop mode (30 frames at 30 fps, model 100 ms; aims: 5 to 16 processed, latency < 600 ms)")
        for _ in range(arguments.repeats):
            figures = stream_figures(video)
            within = 5 <= figures["processed"] <= 16 and figures["max_latency_ms"] < 600
            print(f"  processed {figures['processed']:2d} (ideal {figures['ideal_processed']:.0f}), dropped "
                  f"{figures['dropped']:2d}, max latency {figures['max_latency_ms']:.0f} ms = "
                  f"{figures['max_latency_ms'] / figures['ideal_latency_ms']:.1f} model periods: "
                  f"{'ok' if within else 'AIM MISSED'}")
    if hasattr(os, "getloadavg"):
        print("\nload average after the run: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
