"""Run one command in a fresh process and measure it: wall time and peak memory of its tree.

Peak memory is the peak of the summed proportional set size (PSS) of the child and all its
descendants, sampled every 20 ms, or less often when a sample takes long (the kernel walks each
process's pages for it: about 5 ms for our four processes), so that sampling never takes more
than a twentieth of a core from the run it measures (every 20 ms, it took a fifth of one on two
cores, and from a run that uses both more than from one that uses one). A process pool counts in
full, but pages its processes share (a fork server's preloaded code) count once, not once per
process as summed RSS would. The kernel's ru_maxrss stands in only for a child too short-lived
to be sampled: a child started by vfork inherits its parent's high-water mark there, so it is
not the child's own figure.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.02
SAMPLING_SHARE = 0.05  # of a core, at most
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


class BenchError(Exception):
    """A measured command failed or produced something the benchmark cannot trust."""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


def descendants(pid: int) -> list[int]:
    """The process and every process below it, from /proc's children lists."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    queue.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """The process's proportional set size (its private pages plus its share of shared ones),
    or its RSS where the kernel gives no smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return rss_bytes(pid)


def tree_memory_bytes(pid: int) -> int:
    return sum(pss_bytes(p) for p in descendants(pid))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_measured(
    command: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 3600,
) -> Run:
    """Run `command` to completion; its output is captured through files, never a pipe."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            pause = SAMPLE_SECONDS
            while not done.wait(pause):
                began = time.perf_counter()
                peak = max(peak, tree_memory_bytes(process.pid))
                pause = max(SAMPLE_SECONDS, (time.perf_counter() - began) / SAMPLING_SHARE)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            status, usage = _wait(process, started + timeout)
        finally:
            done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            peak_mb=(peak or usage.ru_maxrss * 1024) / MB,
            returncode=os.waitstatus_to_exitcode(status),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _wait(process: subprocess.Popen[bytes], deadline: float) -> tuple[int, resource.struct_rusage]:
    """Reap the child with wait4, which also gives its resource usage."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.perf_counter() > deadline:
            process.kill()
            process.wait()
            raise BenchError(f"{process.args!r} ran past its time limit")
        time.sleep(0.005)
