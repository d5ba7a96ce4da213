"""Running a command in a child process with a wall-time and a memory limit, so one pathological submission cannot
stop the class.

Two limits, enforced from two sides:

* the parent (:func:`run_isolated`) polls the child: past ``time_limit_s`` of wall time, or when its resident
  memory (``VmRSS`` in ``/proc``, Linux) exceeds ``memory_limit_bytes``, the child's whole process group is killed
  and the run says why;
* the child itself calls :func:`apply_memory_limit` first thing: ``RLIMIT_DATA`` (heap and private writable
  mappings) makes an allocation beyond the limit fail inside the child (``MemoryError``). ``RLIMIT_AS`` is not used:
  TensorFlow and CUDA reserve far more virtual address space than they ever touch, and would fail under any
  useful address-space limit.

The child's standard output and error go to a log file (its last lines come back in :attr:`IsolatedRun.log_tail`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from defi1.grading.archive import format_bytes


@dataclass
class IsolatedRun:
    """How a child process ended. ``killed``: ``"time"``, ``"memory"`` or ``None``."""

    returncode: int | None
    seconds: float
    killed: str | None = None
    peak_rss_bytes: int = 0
    log_tail: str = ""
    time_limit_s: float | None = None
    memory_limit_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.killed is None and self.returncode == 0

    def describe(self) -> str:
        """One line for a grades table: why the run failed (or ``"ok"``)."""
        if self.killed == "time":
            return f"stopped after {self.seconds:.0f} s (time limit {self.time_limit_s:g} s)"
        if self.killed == "memory":
            return (f"stopped at {format_bytes(self.peak_rss_bytes)} of memory (limit "
                    f"{format_bytes(self.memory_limit_bytes)})")
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"crashed ({name}){_last_line(self.log_tail)}"
        if self.returncode:
            return f"failed (exit status {self.returncode}){_last_line(self.log_tail)}"
        return "ok"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f": {lines[-1][:200]}" if lines else ""


def apply_memory_limit(limit_bytes: int | None) -> bool:
    """Limit this process's data segment (``RLIMIT_DATA``) to ``limit_bytes``; returns False where the platform
    cannot (the parent's watch still applies). Call it before importing anything large."""
    if not limit_bytes:
        return False
    try:
        import resource
    except ImportError:  # Windows
        return False
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = int(limit_bytes) if hard == resource.RLIM_INFINITY else min(int(limit_bytes), hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ValueError, OSError):
        return False
    return True


def resident_bytes(pid: int) -> int:
    """Resident memory of a process (``VmRSS``), 0 when unknown (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_isolated(command, *, time_limit_s: float, memory_limit_bytes: int | None = None, log_path=None,
                 env=None, cwd=None, poll_interval_s: float = 0.2) -> IsolatedRun:
    """Run ``command`` (a list) in a new process group, killed past ``time_limit_s`` seconds or
    ``memory_limit_bytes`` of resident memory. Output goes to ``log_path`` (default: discarded). Never raises for
    what the child does; ``OSError`` when it cannot be started."""
    log_handle = open(log_path, "wb") if log_path else subprocess.DEVNULL
    started = time.monotonic()
    killed, peak = None, 0
    try:
        process = subprocess.Popen(list(map(str, command)), stdout=log_handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=os.name == "posix")
        while True:
            try:
                process.wait(timeout=poll_interval_s)
                break
            except subprocess.TimeoutExpired:
                pass
            peak = max(peak, resident_bytes(process.pid))
            if memory_limit_bytes and peak > memory_limit_bytes:
                killed = "memory"
            elif time.monotonic() - started > time_limit_s:
                killed = "time"
            if killed:
                _kill_group(process)
                break
    finally:
        if log_path:
            log_handle.close()
    tail = ""
    if log_path and Path(log_path).is_file():
        with open(log_path, "rb") as handle:
            handle.seek(max(0, Path(log_path).stat().st_size - 4000))
            tail = handle.read().decode("utf-8", errors="replace")
    return IsolatedRun(returncode=process.returncode, seconds=time.monotonic() - started, killed=killed,
                       peak_rss_bytes=peak, log_tail=tail, time_limit_s=time_limit_s,
                       memory_limit_bytes=memory_limit_bytes)


def _kill_group(process):
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
