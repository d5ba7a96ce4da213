"""Start-up time of the command line: ``defi1 --help`` against ``python -c "import numpy, PIL, yaml"``.

Both are fresh interpreters started by this script, alternated for ``--rounds`` rounds (the machine is shared and
noisy: a ratio measured round by round is what counts). Also times a command that needs the backend
(``python -c "import defi1, keras"``), for scale, and checks that ``defi1 --help`` printed nothing on stderr.

Aim (issue 9): ``defi1 --help`` at most 1.5× the reference.

Usage: ``python benchmarks/bench_startup.py [--rounds 15]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

REFERENCE = [sys.executable, "-c", "import numpy, PIL, yaml"]
HELP = [shutil.which("defi1") or "defi1", "--help"]
BACKEND = [sys.executable, "-c", "import defi1, keras"]


def run(command) -> tuple[float, str]:
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, finished.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    run(REFERENCE), run(HELP)  # warm the file cache
    reference, help_times, ratios, stderr_lines = [], [], [], 0
    for _ in range(arguments.rounds):
        seconds, _ = run(REFERENCE)
        reference.append(seconds)
        seconds, stderr = run(HELP)
        help_times.append(seconds)
        stderr_lines += len(stderr.splitlines())
        ratios.append(help_times[-1] / reference[-1])
    backend = [run(BACKEND)[0] for _ in range(3)]
    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "reference_s_median": round(statistics.median(reference), 4),
        "defi1_help_s_median": round(statistics.median(help_times), 4),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "defi1_help_stderr_lines": stderr_lines,
        "import_defi1_and_keras_s_median": round(statistics.median(backend), 2),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
