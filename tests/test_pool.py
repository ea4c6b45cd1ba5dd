"""The worker pool's answer to a worker that dies: no job is handed to a broken pool, and a job
whose worker died reads as not done, while a job's own error still reaches the caller."""

from __future__ import annotations

import os

import pytest

from aggregator.pool import finished, worker_pool


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
