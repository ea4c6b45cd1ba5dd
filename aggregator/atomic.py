"""Crash-safe file replacement: temp file in the same folder, fsync, os.replace (the temp files
can be written by one process and installed by another)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

TEMP_PREFIX = ".tmp-"
OPEN_AT_ONCE = 64  # temp files open together, well under any descriptor limit


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader (or a crash) sees the old or the new bytes."""
    install(write_temps([(path, data)]))


def edit_atomic(path: Path, data: bytes) -> None:
    """Replace the bytes of an existing file as an editor would, atomically: through a symbolic
    link in the file it points at, which keeps its mode and, where allowed, its owner (a config
    file may hold passwords and be 0600; new files are 0644, for the web server)."""
    target = path.resolve(strict=True)
    install(write_temps([(target, data)], like=target.stat()))


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically unless the file already holds exactly `data`; True when written."""
    return bool(write_many([(path, data)]))


def write_many(files: Iterable[tuple[Path, bytes]]) -> list[Path]:
    """Replace many files, each atomically; files that already hold their bytes are left
    alone. Returns those written."""
    changed = [(path, data) for path, data in files if not _holds(path, data)]
    install(write_temps(changed))
    return [path for path, _ in changed]


def write_temps(
    files: Sequence[tuple[Path, bytes]], like: os.stat_result | None = None
) -> list[tuple[str, Path]]:
    """Each file's bytes in a durable temp file beside its target, nothing replaced yet:
    (temp, target) pairs for install(). The temps of a chunk are written, then fsynced
    together (chunks bound the descriptors held open at once); none is left on failure. They
    are 0644, or have the mode and (where allowed) the owner of the file `like` stands for."""
    for folder in {path.parent for path, _ in files}:
        folder.mkdir(parents=True, exist_ok=True)
    temps: list[tuple[str, Path]] = []
    try:
        for start in range(0, len(files), OPEN_AT_ONCE):
            _temps_chunk(files[start : start + OPEN_AT_ONCE], temps, like)
    except BaseException:
        discard(tmp for tmp, _ in temps)
        raise
    return temps


def install(temps: Sequence[tuple[str, str | Path]]) -> None:
    """Rename durable temp files over their targets, then fsync each folder once (not once a
    file). A temp not renamed when this fails is removed."""
    done = 0
    try:
        for tmp, path in temps:
            os.replace(tmp, path)
            done += 1
    except BaseException:
        discard(tmp for tmp, _ in temps[done:])
        raise
    for folder in {os.path.dirname(path) for _, path in temps}:
        _fsync_dir(folder)


def remove_many(paths: Iterable[Path]) -> None:
    """Remove files (those gone already too), then fsync each folder once: durably gone."""
    folders = set()
    for path in paths:
        path.unlink(missing_ok=True)
        folders.add(os.fspath(path.parent))
    for folder in folders:
        _fsync_dir(folder)


def discard(temps: Iterable[str]) -> None:
    """Remove temp files that will not be installed."""
    for tmp in temps:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _temps_chunk(
    files: Sequence[tuple[Path, bytes]],
    temps: list[tuple[str, Path]],
    like: os.stat_result | None,
) -> None:
    handles: list[int] = []
    try:
        for path, data in files:
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
            handles.append(fd)
            temps.append((tmp, path))
            _own(fd, like)
            _write_all(fd, data)
        for fd in handles:
            os.fsync(fd)
    finally:
        for fd in handles:
            os.close(fd)


def _own(fd: int, like: os.stat_result | None) -> None:
    if like is None:
        os.fchmod(fd, 0o644)
        return
    with contextlib.suppress(OSError):  # only root may give a file to another user
        os.fchown(fd, like.st_uid, like.st_gid)
    os.fchmod(fd, stat.S_IMODE(like.st_mode))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def blamed_path(exc: OSError) -> str | None:
    """The path a failed write is about: the target a temp file was to replace (not the temp,
    gone by then), the folder a temp file could not be made in, else the file named."""
    if exc.filename2 is not None:
        return os.fsdecode(exc.filename2)
    if exc.filename is None:
        return None
    name = os.fsdecode(exc.filename)
    return os.path.dirname(name) if os.path.basename(name).startswith(TEMP_PREFIX) else name


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files a killed process left behind (they were never visible as output),
    in `folder` and below (symbolic links not followed). A walk with os.scandir: every cycle
    does it over every entry file, and Path.rglob took twice as long."""
    pending = [os.fspath(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as listing:
                found = list(listing)
        except OSError:
            continue
        for entry in found:
            if entry.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)


def _fsync_dir(folder: str) -> None:
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
