"""Crash-safe file replacement: temp file in the same folder, fsync, os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

TEMP_PREFIX = ".tmp-"
OPEN_AT_ONCE = 64  # temp files open together, well under any descriptor limit


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader (or a crash) sees the old or the new bytes."""
    _replace([(path, data)])


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically unless the file already holds exactly `data`; True when written."""
    return bool(write_many([(path, data)]))


def write_many(files: Iterable[tuple[Path, bytes]]) -> list[Path]:
    """Replace many files, each atomically; files that already hold their bytes are left
    alone. Returns those written."""
    changed = [(path, data) for path, data in files if not _holds(path, data)]
    _replace(changed)
    return [path for path, _ in changed]


def _replace(files: list[tuple[Path, bytes]]) -> None:
    """Durability paid for together: the temp files of a chunk are written, then all fsynced,
    then renamed over their targets; each folder is fsynced once at the end (not once a
    file). Chunks bound the descriptors held open at once."""
    folders = {path.parent for path, _ in files}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(files), OPEN_AT_ONCE):
        _replace_chunk(files[start : start + OPEN_AT_ONCE])
    for folder in folders:
        _fsync_dir(folder)


def _replace_chunk(files: list[tuple[Path, bytes]]) -> None:
    temps: list[tuple[str, Path]] = []
    try:
        handles: list[int] = []
        try:
            for path, data in files:
                fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
                handles.append(fd)
                temps.append((tmp, path))
                os.fchmod(fd, 0o644)
                _write_all(fd, data)
            for fd in handles:
                os.fsync(fd)
        finally:
            for fd in handles:
                os.close(fd)
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:  # those already renamed are gone: unlinking them fails quietly
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files a killed process left behind (they were never visible as output)."""
    if folder.is_dir():
        for leftover in folder.rglob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
