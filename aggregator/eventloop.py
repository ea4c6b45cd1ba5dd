"""The event loop the fetches run on: uvloop's (libuv, written in C) where it is installed, as
it is on Linux and macOS, else asyncio's own. A cycle's requests spend much of their CPU in the
loop: with uvloop a warm cycle of 200 feeds took about 6 % less (README, Libraries)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on the fastest loop there is."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, None (asyncio's default loop) without uvloop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
