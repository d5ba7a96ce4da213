"""Tests of defi1.grading.isolation: a child that hangs or eats memory is stopped and the reason reported."""

import sys

import pytest

from defi1.grading.isolation import IsolatedRun, apply_memory_limit, run_isolated

pytestmark = pytest.mark.backend_agnostic  # processes only


def test_a_hanging_child_is_killed_at_the_time_limit(tmp_path):
    run = run_isolated([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(120)"],
                       time_limit_s=1.0, log_path=tmp_path / "log.txt")
    assert run.killed == "time" and not run.ok
    assert 1.0 <= run.seconds < 20
    assert run.describe() == f"stopped after {run.seconds:.0f} s (time limit 1 s)"
    assert "started" in run.log_tail


def test_a_memory_hungry_child_is_killed_at_the_memory_limit(tmp_path):
    # touches 600 MB page by page (bytes filled with 1, not lazily zeroed), then waits
    code = "import time; block = b'\\x01' * (600 << 20); time.sleep(120)"
    run = run_isolated([sys.executable, "-c", code], time_limit_s=60, memory_limit_bytes=200 << 20)
    assert run.killed == "memory" and run.seconds < 50
    assert run.peak_rss_bytes > 200 << 20
    assert run.describe().startswith("stopped at ") and run.describe().endswith("of memory (limit 200.0 MB)")


def test_exit_status_and_signals_are_described(tmp_path):
    failed = run_isolated([sys.executable, "-c", "import sys; print('bad model'); sys.exit(3)"], time_limit_s=30,
                          log_path=tmp_path / "log.txt")
    assert failed.returncode == 3 and failed.describe() == "failed (exit status 3): bad model"
    crashed = run_isolated([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                           time_limit_s=30)
    assert crashed.describe() == "crashed (SIGSEGV)"
    assert run_isolated([sys.executable, "-c", "pass"], time_limit_s=30).ok
    assert IsolatedRun(returncode=0, seconds=1.0).describe() == "ok"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_the_childs_own_memory_limit_makes_large_allocations_fail(tmp_path):
    # RLIMIT_DATA set from inside the child, 300 MB above what it uses now: 50 MB more fit, 1 GB more fail
    code = ("import re; from defi1.grading.isolation import apply_memory_limit;"
            "used = int(re.search(r'VmData:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024;"
            "assert apply_memory_limit(used + (300 << 20));"
            "small = b'1' * (50 << 20); print('small ok', flush=True);"
            "big = b'1' * (1 << 30)")
    run = run_isolated([sys.executable, "-c", code], time_limit_s=120, log_path=tmp_path / "log.txt")
    assert run.returncode == 1 and "small ok" in run.log_tail and run.log_tail.rstrip().endswith("MemoryError")
    assert apply_memory_limit(None) is False and apply_memory_limit(0) is False
