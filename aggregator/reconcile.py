"""Bring the state index in line with entry files a person edited or deleted by hand: a deleted
file takes its entry out of the feeds, an edited one is read again (its front matter) and counts
as updated. Files are compared by size and mtime first, so only changed ones are read."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from aggregator.config import Config
from aggregator.frontmatter import read
from aggregator.state import State, StoredEntry
from aggregator.store import text_hash

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class ReconcileResult:
    edited: int = 0
    deleted: int = 0
    problems: list[str] = field(default_factory=list)


def reread(entry: StoredEntry, text: str, tz: ZoneInfo, now: float) -> StoredEntry:
    """The entry as its edited file now says; ValueError naming what is wrong."""
    try:
        meta, _ = read(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"unreadable front matter ({str(exc).splitlines()[0]})") from None
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("front matter has no title")
    date = meta.get("date")
    if isinstance(date, str):
        try:
            date = datetime.strptime(date, DATE_FORMAT)
        except ValueError:
            raise ValueError(f'date {date!r} is not "YYYY-MM-DD HH:MM:SS"') from None
    if not isinstance(date, datetime):
        raise ValueError("front matter has no date")
    stamp = (date if date.tzinfo else date.replace(tzinfo=tz)).timestamp()
    summary = meta.get("summary")
    langs = meta.get("lang")
    lang = langs[0] if isinstance(langs, list) and langs else langs
    tags = meta.get("tags")
    return replace(
        entry,
        title=title.strip(),
        date=stamp,
        updated=now,
        summary=summary if isinstance(summary, str) else "",
        lang=lang if isinstance(lang, str) else entry.lang,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else entry.tags,
        hash=text_hash(text),
    )


def reconcile(config: Config, state: State, now: float) -> ReconcileResult:
    """Drop entries whose file is gone, re-read entries whose file changed by hand. Only the
    folders whose listing (names, sizes, mtimes) changed since the last reconcile are looked at
    entry by entry."""
    tz = ZoneInfo(config.site.timezone)
    result = ReconcileResult()
    feeds_dir = config.site.feeds_dir
    listings = {name: _listing(path) for name, path in _folders(feeds_dir)}
    digests = {name: _digest(listing) for name, listing in listings.items()}
    known = state.folder_digests()
    changed = {f for f, d in digests.items() if known.get(f) != d}
    changed |= (state.entry_folders() | known.keys()) - digests.keys()
    with state.transaction():
        for folder in sorted(changed):
            problems = len(result.problems)
            files = {name: (size, mtime) for name, size, mtime in listings.get(folder, [])}
            _reconcile_folder(state, feeds_dir, folder, files, tz, now, result)
            clean = len(result.problems) == problems
            state.save_folder_digest(folder, digests.get(folder) if clean else None)
        if result.deleted:
            state.drop_orphans()
    return result


def _reconcile_folder(
    state: State,
    feeds_dir: Path,
    folder: str,
    files: dict[str, tuple[int, int]],
    tz: ZoneInfo,
    now: float,
    result: ReconcileResult,
) -> None:
    for entry_id, rel, digest, checked, size, mtime in state.entry_files(folder):
        stat = files.get(rel[len(folder) + 1 :])
        if stat is not None and checked == digest and stat == (size, mtime):
            continue
        path = feeds_dir / rel
        if stat is None:
            try:
                found = path.stat()
            except FileNotFoundError:
                state.delete_entry(entry_id, now)
                result.deleted += 1
                continue
            except OSError as exc:
                result.problems.append(f"{path}: cannot read the entry ({exc.strerror})")
                continue
            stat = (found.st_size, found.st_mtime_ns)
        fresh = _check(state, entry_id, path, digest, tz, now, result)
        if fresh is not None:
            state.save_entry_files([(entry_id, fresh, *stat)])


def _folders(feeds_dir: Path) -> list[tuple[str, Path]]:
    """The entry folders under feeds/ (entries live in `<folder>/<name>.md`)."""
    try:
        with os.scandir(feeds_dir) as found:
            return [(f.name, Path(f.path)) for f in found if f.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of every `.md` file in a folder, from one directory scan."""
    out: list[tuple[str, int, int]] = []
    try:
        with os.scandir(folder) as entries:
            for file in entries:
                if file.name.endswith(".md"):
                    stat = file.stat(follow_symlinks=False)
                    out.append((file.name, stat.st_size, stat.st_mtime_ns))
    except FileNotFoundError:
        pass
    return out


def _digest(listing: list[tuple[str, int, int]]) -> str:
    lines = sorted(f"{name}\0{size}\0{mtime}" for name, size, mtime in listing)
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def _check(
    state: State,
    entry_id: str,
    path: Path,
    digest: str,
    tz: ZoneInfo,
    now: float,
    result: ReconcileResult,
) -> str | None:
    """The file's hash once the index agrees with it, None when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(f"{path}: cannot read the entry ({exc})")
        return None
    fresh = text_hash(text)
    if fresh == digest:
        return fresh
    entry = state.entry(entry_id)
    if entry is None:
        return None
    try:
        state.revise_entry(reread(entry, text, tz, now))
    except ValueError as exc:
        result.problems.append(f"{path}: {exc}; the entry stays as it was")
        return None
    result.edited += 1
    return fresh
