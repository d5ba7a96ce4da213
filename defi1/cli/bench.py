"""``defi1 bench``: model-only and end-to-end FPS and latency of a detector (:mod:`defi1.realtime.bench`)."""

from __future__ import annotations

from defi1.choices import ENGINE_CHOICES


def register(parser):
    parser.add_argument("--model", required=True, help="trained detector (.keras)")
    parser.add_argument("--source", default=None, help="video file (default: a generated 640x480 video)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="auto (default, as detect stream): keras on a GPU, else the fastest engine installed")
    parser.add_argument("--input-size", type=int, default=None, help="network input side (default: the model's)")
    parser.add_argument("--frames", type=int, default=100, help="frames timed per measurement (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    parser.add_argument("--mode", choices=("every", "drop"), default="every",
                        help="every: every frame of the video (throughput); drop: play it in real time")
    parser.add_argument("--model-workers", type=int, default=None, metavar="N",
                        help="frames in the model at once (default as detect stream: 2 in every mode on a CPU with "
                             "2 cores or more and the keras or onnxruntime engine, else 1)")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU; keras engine)")
    parser.add_argument("--json", metavar="OUT.json", help="also write the figures as JSON")
    parser.set_defaults(handler=run_bench)


def run_bench(arguments):
    from defi1.realtime.bench import benchmark, format_benchmark

    if arguments.frames < 2:
        raise ValueError(f"--frames {arguments.frames}: expected at least 2")
    if arguments.json:
        from defi1.files import ensure_output_dir
        from pathlib import Path

        ensure_output_dir(Path(arguments.json).parent)
    result = benchmark(arguments.model, source=arguments.source, engine=arguments.engine,
                       input_size=arguments.input_size, frames=arguments.frames, warmup=arguments.warmup,
                       mode=arguments.mode, mixed_precision=arguments.mixed_precision,
                       model_workers=arguments.model_workers)
    print(format_benchmark(result))
    if arguments.json:
        from defi1.files import atomic_write_json

        atomic_write_json(arguments.json, result)
        print(f"figures: {arguments.json}")
    return 0
