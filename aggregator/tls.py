"""The TLS context every HTTP client of the process shares: the CA bundle is loaded once (about
50 ms), in a thread that a cycle starts ahead of its first request. OpenSSL reads the bundle
without the GIL, so the load overlaps the cycle's start instead of delaying the first request,
and a daemon's later cycles do not load it again."""

from __future__ import annotations

import ssl
import threading
from concurrent.futures import Future

import httpx

_loading: Future[ssl.SSLContext] | None = None
_lock = threading.Lock()


def preload() -> None:
    """Start loading the context, unless it is loaded or loading already."""
    _future()


def context() -> ssl.SSLContext:
    """The shared context (waits for the load; raises what it raised, and loads again next
    time)."""
    future = _future()
    try:
        return future.result()
    except BaseException:
        _forget(future)
        raise


def _future() -> Future[ssl.SSLContext]:
    global _loading
    with _lock:
        if _loading is None:
            _loading = Future()
            # not a daemon thread: one still inside OpenSSL when the process exits (a cycle that
            # failed at once) raced OpenSSL's own exit handlers, and the process died of SIGSEGV
            threading.Thread(target=_load, args=(_loading,), name="tls-load").start()
        return _loading


def _forget(future: Future[ssl.SSLContext]) -> None:
    global _loading
    with _lock:
        if _loading is future:
            _loading = None


def _load(future: Future[ssl.SSLContext]) -> None:
    try:
        future.set_result(httpx.create_ssl_context(trust_env=False))
    except BaseException as exc:  # handed to whoever waits for the context
        future.set_exception(exc)
