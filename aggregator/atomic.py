"""Crash-safe file replacement: temp file in the same folder, fsync, os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


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
    """Durability paid for together: every temp file is written, then all are fsynced, then
    renamed over their targets, then each folder is fsynced once (not once a file)."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        for tmp, _ in temps:
            _fsync_file(tmp)
        for tmp, path in temps:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:  # those already renamed are gone: unlinking them fails quietly
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for folder in {path.parent for path, _ in files}:
        _fsync_dir(folder)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
