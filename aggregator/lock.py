"""The writer lock: one file lock beside the state database, so one process at a time writes
feeds/, output/, the state database and config.toml."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from aggregator import defaults
from aggregator.errors import LockFileError, LockHeldError


@contextmanager
def writer_lock(path: Path, wait: float = defaults.LOCK_WAIT) -> Iterator[None]:
    """Hold the lock; LockHeldError when another process keeps it for more than `wait` seconds,
    LockFileError when its file cannot be used."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise LockHeldError(str(path)) from None
    except OSError as exc:
        raise LockFileError(str(path), exc.strerror or str(exc)) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def writer_lock_until(path: Path, stop: threading.Event) -> Iterator[bool]:
    """Hold the lock, waiting as long as it takes unless `stop` is set first; yields whether the
    lock is held (False only when stopping); LockFileError when its file cannot be used."""
    lock = FileLock(path)
    while not stop.is_set():
        try:
            lock.acquire(timeout=defaults.LOCK_POLL)
        except Timeout:
            continue
        except OSError as exc:
            raise LockFileError(str(path), exc.strerror or str(exc)) from None
        try:
            yield True
        finally:
            lock.release()
        return
    yield False
