"""The event loop a cycle's fetches run on: uvloop's, a dependency on this platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from aggregator import eventloop
from aggregator.config import load_config
from aggregator.pipeline import run_cycle
from tests.helpers import make_project


async def _running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_a_coroutine_runs_to_its_result_on_uvloop() -> None:
    loop = eventloop.run(_running_loop())
    assert isinstance(loop, uvloop.Loop)
    assert loop.is_closed()


def test_a_cycle_fetches_on_that_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[asyncio.AbstractEventLoop] = []
    factory = eventloop.loop_factory()
    assert factory is not None

    def make() -> asyncio.AbstractEventLoop:
        made.append(factory())
        return made[-1]

    monkeypatch.setattr(eventloop, "loop_factory", lambda: make)
    config = load_config(make_project(tmp_path))
    report = run_cycle(config, config.feeds)
    assert not report.failed
    assert len(made) == 1 and isinstance(made[0], uvloop.Loop)
