"""The ``defi1`` command line. It parses arguments and calls library functions; it holds no logic of its own.

Each command group (``data``, ``classify``, ``detect`` ...) is filled by the modules listed in :data:`GROUPS`; a
module contributes sub-commands through ``register(subparsers)``, each sub-command setting ``handler`` with
``parser.set_defaults(handler=function)``. A handler takes the parsed ``argparse.Namespace`` and returns an exit code
(or ``None`` for 0).
"""

from __future__ import annotations

import argparse
import importlib
import sys

GROUPS = {
    "demo": ("Run the main job offline on built-in data (Parts 1, 2 and 3)", ("defi1.cli.demo",)),
    "data": ("Datasets: built-in data, splits, conversions, checks, synthetic data",
             ("defi1.cli.data_classification", "defi1.cli.data_detection")),
    "classify": ("Part 1: train, evaluate and use image classifiers", ("defi1.cli.classify",)),
    "detect": ("Parts 2 and 3: YOLOv3 models, darknet weights, training, evaluation, prediction, streaming",
               ("defi1.cli.detect_core", "defi1.cli.detect_infer", "defi1.cli.detect_train",
                "defi1.cli.detect_realtime")),
    "bench": ("Part 3: measure detector speed (FPS and latency)", ("defi1.cli.bench",)),
    "report": ("Students: write the report skeleton from the notebooks' results and figures", ("defi1.cli.report",)),
    "collect": ("Instructors: gather students' results into a grades table", ("defi1.cli.collect",)),
}


def _import_optional(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every group and sub-command)."""
    from defi1 import __version__

    parser = argparse.ArgumentParser(prog="defi1", description="Hands on AI, défi 1: classification, YOLOv3 "
                                     "localisation and real-time detection with Keras 3.")
    parser.add_argument("--version", action="version", version=f"defi1 {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show the deep-learning backend's own log messages (TensorFlow, CUDA, oneDNN); "
                             "the environment variable DEFI1_VERBOSE=1 does the same")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    for group_name, (help_text, module_names) in GROUPS.items():
        modules = [module for module in map(_import_optional, module_names) if module is not None]
        if not modules:
            continue
        if group_name in ("demo", "bench", "report", "collect"):
            # Single commands: the module adds its arguments to the group's own parser.
            group_parser = groups.add_parser(group_name, help=help_text, description=help_text)
            modules[0].register(group_parser)
            continue
        group_parser = groups.add_parser(group_name, help=help_text, description=help_text)
        commands = group_parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
        for module in modules:
            module.register(commands)
        group_parser.set_defaults(handler=lambda arguments, parser=group_parser: _print_help(parser))
    return parser


def _print_help(parser):
    parser.print_help()
    return 2


def main(argv=None) -> int:
    """Entry point of the ``defi1`` command. Errors from bad input are printed as one line, exit code 1."""
    from defi1.errors import Defi1Error

    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.verbose:
        from defi1.keras_runtime import set_verbose

        set_verbose(True)
    handler = getattr(arguments, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code = handler(arguments)
    except KeyboardInterrupt:
        print("defi1: interrupted", file=sys.stderr)
        return 130
    except (Defi1Error, FileNotFoundError, FileExistsError, PermissionError, ValueError) as error:
        print(f"defi1: error: {error}", file=sys.stderr)
        return 1
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
