"""``defi1 demo``: the main job, offline, on built-in data."""

from __future__ import annotations


def register(parser):
    parser.add_argument("--out", default="runs/demo", help="run folder to write (default: runs/demo)")
    parser.add_argument("--parts", default="1,2,3", help="comma-separated parts to run: 1 classification, "
                        "2 localisation, 3 real-time (default: 1,2,3)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds, numbers not meaningful)")
    parser.set_defaults(handler=_run)


def _run(arguments):
    from defi1.demo import run_demo

    try:
        parts = tuple(int(part) for part in arguments.parts.split(",") if part.strip())
    except ValueError as error:
        raise ValueError(f"--parts {arguments.parts!r}: expected comma-separated numbers among 1, 2, 3") from error
    run_demo(arguments.out, parts=parts, smoke=arguments.smoke)
