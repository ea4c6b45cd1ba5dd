"""A hostile HTTP server for the fetcher's tests: routes that stall, drip, flood, loop, bomb or
lie, served beside good feeds by the real server of tests.helpers, with every request logged."""

from __future__ import annotations

import functools
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import brotli  # type: ignore[import-untyped]

from tests.helpers import Route, http_server, serve_bytes

BLOCK = 64 * 1024
STALL_LIMIT = 60.0  # seconds a stalling route gives up by itself, whatever happens


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]


@dataclass
class Log:
    """Every request the server answered or stalled on, and how many were in flight at once."""

    hits: list[Hit] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        return sum(1 for hit in self.hits if hit.path == path)

    def last(self, path: str) -> Hit:
        return [hit for hit in self.hits if hit.path == path][-1]

    def recorded(self, route: Route) -> Route:
        def wrapper(handler: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.hits.append(Hit(handler.path, dict(handler.headers.items())))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                route(handler)
            except OSError:
                pass  # the client hung up on a route meant to be cut off
            finally:
                with self.lock:
                    self.in_flight -= 1

        return wrapper


class Switch:
    """A route that answers as `current` does, changeable while the server runs."""

    def __init__(self, current: Route) -> None:
        self.current = current

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        self.current(handler)


@contextmanager
def hostile_server(
    routes: dict[str, Route],
    closing: threading.Event,
    host: str = "127.0.0.1",
    log: Log | None = None,
) -> Iterator[tuple[str, Log]]:
    """Serve `routes`, logging each request (in `log`, which servers may share); `closing` is
    set at the end to free stalled routes."""
    log = log or Log()
    try:
        with http_server({p: log.recorded(r) for p, r in routes.items()}, host) as base:
            yield base, log
    finally:
        closing.set()


def status(code: int, headers: Sequence[tuple[str, str]] = ()) -> Route:
    """An empty answer with `code` and `headers`."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def redirect(location: str, code: int = 302) -> Route:
    return status(code, [("Location", location)])


def hang(closing: threading.Event) -> Route:
    """Read the request, then answer nothing at all."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        closing.wait(STALL_LIMIT)

    return route


def cut(times: int, then: Route, reset: bool = False) -> Route:
    """Read the request and cut the connection without a word the first `times` times (a
    reset when `reset`, else a clean close), then answer as `then` does."""
    cuts = iter(range(times))

    def route(handler: BaseHTTPRequestHandler) -> None:
        if next(cuts, None) is None:
            then(handler)
            return
        handler.close_connection = True
        if reset:  # linger 0 makes close() send RST; detach() closes past the file objects
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            os.close(handler.connection.detach())

    return route


def drip(closing: threading.Event, pause: float = 0.5) -> Route:
    """A 200 whose body comes one byte at a time, forever (until `closing`)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()
        started = time.monotonic()
        while not closing.wait(pause) and time.monotonic() - started < STALL_LIMIT:
            handler.wfile.write(b" ")
            handler.wfile.flush()

    return route


def flood(size: int) -> Route:
    """A `size`-byte body streamed without a Content-Length, never held in memory."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()
        block = b"<rss>" + b" " * (BLOCK - 5)
        for _ in range(size // BLOCK):
            handler.wfile.write(block)

    return route


def compressed(body: bytes, encoding: str) -> Route:
    """`body`, already encoded, sent with its Content-Encoding and Content-Length."""
    return serve_bytes(body, headers=[("Content-Encoding", encoding)])


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped (about 1/1000 of that), compressed a block at a time."""
    engine = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(BLOCK * 16)
    parts = [engine.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + engine.flush()


@functools.cache
def brotli_bomb(size: int) -> bytes:
    """`size` zero bytes, brotli-compressed (a few hundred bytes)."""
    engine = brotli.Compressor(quality=5)
    block = bytes(BLOCK * 16)
    parts: list[bytes] = [engine.process(block) for _ in range(size // len(block))]
    parts.append(engine.finish())
    return b"".join(parts)


def slow(body: bytes, seconds: float) -> Route:
    """`body` after `seconds`: lets a test see how many requests overlap."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        serve_bytes(body)(handler)

    return route
