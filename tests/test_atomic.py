"""Atomic file replacement: many files at once (more than are held open together), unchanged
files left alone, no temp file left behind, and a failure that leaves every target as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aggregator import atomic
from aggregator.atomic import TEMP_PREFIX, write_many


def _files(root: Path, count: int, tag: str) -> list[tuple[Path, bytes]]:
    return [
        (root / f"folder{i % 3}" / f"{i}.md", f"{tag} {i}\n".encode() * (i + 1))
        for i in range(count)
    ]


def test_write_many_writes_every_file_in_chunks(tmp_path: Path) -> None:
    count = atomic.OPEN_AT_ONCE * 2 + 7
    files = _files(tmp_path, count, "first")
    written = write_many(files)
    assert sorted(written) == sorted(path for path, _ in files)
    for path, data in files:
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_write_many_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    files = _files(tmp_path, 10, "same")
    write_many(files)
    stamps = {path: path.stat().st_mtime_ns for path, _ in files}
    inode = files[0][0].stat().st_ino
    changed = [(files[0][0], b"new bytes\n"), *files[1:]]
    assert write_many(changed) == [files[0][0]]
    assert files[0][0].read_bytes() == b"new bytes\n"
    assert files[0][0].stat().st_ino != inode  # replaced, not rewritten in place
    assert all(path.stat().st_mtime_ns == stamps[path] for path, _ in files[1:])


def test_a_failed_write_changes_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(tmp_path, 20, "old")
    write_many(files)
    calls = 0
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_many(_files(tmp_path, 20, "new"))
    for path, data in files:
        assert path.read_bytes() == data
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_stale_temps_are_removed_at_any_depth_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    kept = [root / "a.md", root / "src" / "b.md", root / "src" / "deep" / "c.md"]
    stale = [
        root / f"{TEMP_PREFIX}top",
        root / "src" / f"{TEMP_PREFIX}x",
        root / "src" / "deep" / f"{TEMP_PREFIX}y",
    ]
    elsewhere = tmp_path / "elsewhere"
    outside = elsewhere / f"{TEMP_PREFIX}not-ours"
    for path in kept + stale + [outside]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    atomic.remove_stale_temps(root)
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in stale)
    assert outside.exists()  # a symbolic link is not followed out of the folder
    atomic.remove_stale_temps(tmp_path / "missing")  # no folder, nothing to do


def test_a_failed_write_blames_the_target_or_folder_not_the_temp(tmp_path: Path) -> None:
    """A temp file is gone once its write failed: what is named is the path in its way, or the
    folder it could not be made in."""
    target = tmp_path / "entry.md"
    target.mkdir()
    with pytest.raises(OSError) as failed:
        write_many([(target, b"text")])
    assert atomic.blamed_path(failed.value) == str(target)
    unmade = OSError(28, "No space left on device", str(tmp_path / f"{TEMP_PREFIX}x1"))
    assert atomic.blamed_path(unmade) == str(tmp_path)
    assert atomic.blamed_path(OSError(28, "No space left on device")) is None
    assert atomic.blamed_path(FileExistsError(17, "File exists", "feeds/a")) == "feeds/a"
