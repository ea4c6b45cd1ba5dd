"""The worker pool: one worker more than the cores, none for a few jobs; its answer to a worker
that dies: no job is handed to a broken pool, and a job whose worker died reads as not done,
while a job's own error still reaches the caller."""

from __future__ import annotations

import os

import pytest

from aggregator import defaults
from aggregator.pool import finished, worker_pool


def test_one_worker_more_than_the_cores_and_none_for_a_few_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker waiting for the disk leaves its core to the spare one; a single core, or a few
    jobs, get no workers at all."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    pool = worker_pool(200)
    assert pool is not None and (pool.size, pool.cores) == (3, 2)
    assert worker_pool(defaults.PARALLEL_MIN_FEEDS - 1) is None
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert worker_pool(200) is None


def test_a_dead_worker_reads_as_not_done_and_a_job_error_still_raises() -> None:
    pool = worker_pool(8)
    assert pool is not None
    try:
        assert finished(pool.submit(abs, -3)) == 3
        with pytest.raises(ValueError):
            finished(pool.submit(int, "not a number"))
        assert finished(pool.submit(os._exit, 1)) is None
        assert pool.submit(abs, -3) is None  # broken: the caller does its jobs itself
        assert finished(None) is None
    finally:
        pool.shutdown()
