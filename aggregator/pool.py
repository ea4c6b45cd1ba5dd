"""The worker processes a cycle shares its CPU work with (parsing and converting feeds, then
building feeds to publish): a fork server that preloaded the modules, so workers start fast and
are safe to start from the daemon's threads; none starts before the first job."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from aggregator import defaults


@dataclass(frozen=True)
class Pool:
    executor: ProcessPoolExecutor
    size: int

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
