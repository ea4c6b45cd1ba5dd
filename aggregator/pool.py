"""The worker processes a cycle shares its CPU work with (parsing and converting feeds, then
building feeds to publish): a fork server that preloaded the modules, so workers start fast and
are safe to start from the daemon's threads; none starts before the first job."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from aggregator import defaults

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Pool:
    executor: ProcessPoolExecutor
    size: int

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T] | None:
        """`fn` run by a worker; None when the pool is broken (a worker process died, killed or
        out of memory): the caller does the job itself, or goes without."""
        try:
            return self.executor.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            return None

    def shutdown(self) -> None:
        """Stop the workers once their jobs are done (jobs not started are dropped)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def worker_pool(jobs: int) -> Pool | None:
    """Worker processes for up to `jobs` jobs; None when too few to pay for them (the caller
    does them itself)."""
    size = min(os.cpu_count() or 1, jobs)
    if jobs < defaults.PARALLEL_MIN_FEEDS or size < 2:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aggregator.workers", "aggregator.publish"])
    return Pool(ProcessPoolExecutor(size, mp_context=context), size)


def finished(future: Future[T] | None) -> T | None:
    """A job's result; None when it never reached a worker or its worker died before it was
    done. Any other error of the job is raised."""
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None
