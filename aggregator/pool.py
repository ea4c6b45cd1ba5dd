"""The worker processes a cycle shares its CPU work with (parsing and converting feeds, then
building feeds to publish): a fork server that preloaded the modules, so workers start fast and
are safe to start from the daemon's threads; none starts before the first job, and each ends
as soon as the process that made it is gone, however that ended, or at once when a stopped
cycle no longer wants its job."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Future
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from aggregator import defaults

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

P = ParamSpec("P")
T = TypeVar("T")


class Pool:
    """Up to `size` worker processes for a machine of `cores`, made with the first job
    (multiprocessing is not even imported by a cycle with nothing to parse)."""

    def __init__(self, size: int, cores: int) -> None:
        self.size = size
        self.cores = cores
        self._executor: ProcessPoolExecutor | None = None
        self._lost = False  # the fork server failed, or end(): the callers do the jobs

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.start_server()
            self._executor = ProcessPoolExecutor(
                self.size,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=end_with,
                initargs=(os.getpid(),),
            )
        return self._executor

    def start_server(self) -> None:
        """Start the fork server (and its resource tracker) unless it runs: it then preloads
        the modules while this process goes on, where the first job would wait for them."""
        import multiprocessing.forkserver

        multiprocessing.get_context("forkserver").set_forkserver_preload(
            ["aggregator.workers", "aggregator.publish", "langcodes"]
        )
        with _cwd_off_path():
            multiprocessing.forkserver.ensure_running()

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T] | None:
        """`fn` run by a worker; None when the pool is broken (a worker process died, killed or
        out of memory, or the fork server died as it started: EOFError or OSError on its
        pipes): the caller does the job itself, or goes without."""
        if self._lost:
            return None
        try:
            return self.executor.submit(fn, *args, **kwargs)
        except (BrokenExecutor, EOFError, OSError):
            self._lost = True
            return None

    def shutdown(self) -> None:
        """Stop the workers once their jobs are done (jobs not started are dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def end(self) -> None:
        """End the workers at once, their jobs undone (read as a dead worker's), when no one
        wants the results; returns once they are gone, so that none writes a temp file later.
        Jobs submitted afterwards are the callers' to do."""
        self._lost = True
        executor, self._executor = self._executor, None
        if executor is None:
            return
        workers = list(executor._processes.values())
        # A worker killed while it sends a result leaves the executor's thread waiting for the
        # rest for ever, unless no process holds the pipe's write end any more: it reads EOF
        executor._result_queue._writer.close()  # type: ignore[attr-defined]
        for worker in workers:
            worker.kill()
        executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _cwd_off_path() -> Iterator[None]:
    """Have the processes multiprocessing starts meanwhile (the fork server and its resource
    tracker, each a `python -c`, which puts the working directory first on sys.path) import
    nothing from the working directory: a `threading.py` there would run in them, and in every
    worker. The fork server ignores the sys.path it is passed (Python 3.11 to 3.13) and imports
    multiprocessing before it could use it; PYTHONSAFEPATH (-P), which they inherit, keeps it
    off from the start. Unset again after, for any other program this process starts."""
    if os.environ.get("PYTHONSAFEPATH"):
        yield
        return
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        del os.environ["PYTHONSAFEPATH"]


def end_with(parent: int) -> None:
    """Have this worker end as soon as process `parent` has: one killed (SIGKILL, out of
    memory) cannot stop its workers, which would live on, holding pipes no one reads, and
    write temp files after the next run looked for a killed run's leftovers."""
    threading.Thread(target=_watch, args=(parent,), name="end-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux, or before 5.3): ask every second
        while _alive(parent):
            time.sleep(1)
        os._exit(1)
    select.select([handle], [], [])  # readable once the process has ended
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, someone else's
        pass
    return True


def worker_pool(jobs: int) -> Pool | None:
    """Worker processes for up to `jobs` jobs, one more than the cores: a worker waiting for the
    disk (it fsyncs the entry files it writes ahead) leaves its core to another. None on a
    single core, or for too few jobs to pay for them (the caller does them itself)."""
    cores = os.cpu_count() or 1
    if jobs < defaults.PARALLEL_MIN_FEEDS or cores < 2:
        return None
    return Pool(min(cores + 1, jobs), cores)


def finished(future: Future[T] | None) -> T | None:
    """A job's result; None when it never reached a worker or its worker died before it was
    done. Any other error of the job is raised."""
    if future is None:
        return None
    try:
        return future.result()
    except BrokenExecutor:
        return None
