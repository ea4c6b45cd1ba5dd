"""Bring the state index in line with entry files a person edited or deleted by hand: a deleted
file takes its entry out of the feeds (and no fetch writes it again), an edited one is read
again (its front matter) and counts as updated (and a fetch leaves it be while its source does
not change the article). Files are compared by size and mtime first, so only changed ones are
read."""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from aggregator.config import Config
from aggregator.feeditems import urn
from aggregator.frontmatter import read
from aggregator.identity import ENTRY_ID_LENGTH, link_key
from aggregator.state import FEEDS_INDEXED, State, StoredEntry
from aggregator.store import entry_folder, text_hash
from aggregator.text import summary_plain

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class ReconcileResult:
    edited: int = 0
    deleted: int = 0  # by hand, file by file
    dropped: int = 0  # with their folder, deleted whole (starting over)
    indexed: int = 0
    problems: list[str] = field(default_factory=list)


# the file name the store gives an entry (entry_id()): only such files are indexed when found
_ENTRY_NAME = re.compile(rf"[0-9a-f]{{{ENTRY_ID_LENGTH}}}\.md")
# the body's last line: the source link, `[name](link)` or `[name](<link>)` (convert.source_link)
_SOURCE_LINK = re.compile(r"\n\[(?:\\.|[^\]\\\n])*\]\((?:<([^>\n]*)>|(\S+))\)\n*\Z")


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
    # the date unchanged: the same instant, also in the hour that the end of DST repeats
    if entry.date and _local_second(entry.date, tz) == date:
        stamp = entry.date
    summary = meta.get("summary")
    langs = meta.get("lang")
    lang = langs[0] if isinstance(langs, list) and langs else langs
    tags = meta.get("tags")
    return replace(
        entry,
        title=title.strip(),
        date=stamp,
        updated=now,
        summary=summary_plain(summary) if isinstance(summary, str) else "",
        lang=lang if isinstance(lang, str) else entry.lang,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else entry.tags,
        hash=text_hash(text),
    )


def _local_second(stamp: float, tz: ZoneInfo) -> datetime:
    """A time as the front matter writes it: local, naive, whole seconds."""
    return datetime.fromtimestamp(stamp, tz).replace(tzinfo=None, microsecond=0)


def reconcile(config: Config, state: State, now: float) -> ReconcileResult:
    """Drop entries whose file is gone, re-read entries whose file changed by hand, index entry
    files the state does not know (its database was lost). Only the folders whose listing
    (names, sizes, mtimes) changed since the last reconcile are looked at entry by entry."""
    tz = ZoneInfo(config.site.timezone)
    result = ReconcileResult()
    feeds_dir = config.site.feeds_dir
    owners = {entry_folder(f.name): f.name for f in config.feeds}
    listings = {name: _listing(path) for name, path in _folders(feeds_dir)}
    digests = {name: _digest(listing) for name, listing in listings.items()}
    known = state.folder_digests()
    changed = {f for f, d in digests.items() if known.get(f) != d}
    changed |= (state.entry_folders() | known.keys()) - digests.keys()

    @cache
    def published() -> dict[str, int]:  # read only when a file is indexed again
        return _published_updates(config.site.output_dir)

    with state.transaction():
        for folder in sorted(changed):
            problems = len(result.problems)
            files = {name: (size, mtime) for name, size, mtime in listings.get(folder, [])}
            gone = folder not in listings  # deleted whole: its entries may come back
            indexed = _reconcile_folder(state, feeds_dir, folder, files, gone, tz, now, result)
            owner = owners.get(folder, folder)
            if gone:  # its next fetch reads the source whole, to write them again
                state.forget_validators([owner])
            for name in sorted(files.keys() - indexed):
                if _ENTRY_NAME.fullmatch(name):
                    rel = f"{folder}/{name}"
                    _index(state, feeds_dir, rel, owner, files[name], tz, published, result)
            clean = len(result.problems) == problems
            state.save_folder_digest(folder, digests.get(folder) if clean else None)
        if result.deleted or result.dropped:
            state.drop_orphans()
        state.set_meta(FEEDS_INDEXED, "yes")
    return result


def _reconcile_folder(
    state: State,
    feeds_dir: Path,
    folder: str,
    files: dict[str, tuple[int, int]],
    gone: bool,
    tz: ZoneInfo,
    now: float,
    result: ReconcileResult,
) -> set[str]:
    """Check the folder's indexed entries against their files; the names of those files. The
    deletion of a file is remembered, not that of the whole folder (a person starting over)."""
    known: set[str] = set()
    for entry_id, rel, digest, checked, size, mtime in state.entry_files(folder):
        name = rel[len(folder) + 1 :]
        known.add(name)
        stat = files.get(name)
        if stat is not None and checked == digest and stat == (size, mtime):
            continue
        path = feeds_dir / rel
        if stat is None:
            try:
                found = path.stat()
            except FileNotFoundError:
                state.delete_entry(entry_id, None if gone else now)
                if gone:
                    result.dropped += 1
                else:
                    result.deleted += 1
                continue
            except OSError as exc:
                result.problems.append(f"{path}: cannot read the entry ({exc.strerror})")
                continue
            stat = (found.st_size, found.st_mtime_ns)
        fresh = _check(state, entry_id, path, digest, tz, now, result)
        if fresh is not None:
            state.save_entry_files([(entry_id, fresh, *stat)])
    return known


def _index(
    state: State,
    feeds_dir: Path,
    rel: str,
    source: str,
    stat: tuple[int, int],
    tz: ZoneInfo,
    published: Callable[[], dict[str, int]],
    result: ReconcileResult,
) -> None:
    """Index an entry file the state does not know, as its front matter and source link say
    (first seen when its date says, as the store indexes a new entry; last updated then too,
    unless the published feeds say it changed later); a file put back after it was deleted by
    hand makes its article no longer deleted."""
    path = feeds_dir / rel
    entry_id = rel.rsplit("/", 1)[1][: -len(".md")]
    other = state.entry(entry_id)
    if other is not None:
        result.problems.append(f"{path}: a copy of the entry in {feeds_dir / other.path}")
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(f"{path}: cannot read the entry ({exc})")
        return
    found = _SOURCE_LINK.search(text)
    link = (found.group(1) or found.group(2)) if found else ""
    written = stat[1] / 1e9
    blank = StoredEntry(
        id=entry_id,
        source=source,
        path=rel,
        link_key=link_key(link),
        title="",
        link=link,
        date=0,
        updated=0,
        first_seen=0,
        summary="",
        lang="en",
        authors=(),
        tags=(),
        hash="",
    )
    try:  # the title, date, summary, lang, tags and hash: what the file says
        entry = reread(blank, text, tz, written)
    except ValueError as exc:
        result.problems.append(f"{path}: {exc}; the entry is not indexed")
        return
    changed = published().get(urn("entry", entry_id), 0)
    updated = changed if changed > entry.date else entry.date
    entry = replace(entry, updated=updated, first_seen=min(entry.date, written))
    state.save_entry(entry, f"file\0{rel}")
    state.forget_deleted_entry(entry.id)
    state.save_source_tags(entry.id, source, entry.tags, written)
    state.save_entry_files([(entry.id, entry.hash, *stat)])
    result.indexed += 1


def _published_updates(output_dir: Path) -> dict[str, int]:
    """The `updated` second of each entry in the published Atom feeds, by Atom id: what an entry
    indexed again was last published with (the time it last changed, when not its date)."""
    found: dict[str, int] = {}
    for path in sorted(output_dir.rglob("*.xml")):
        try:
            for _, node in ET.iterparse(path):
                if node.tag != f"{_ATOM}entry":
                    continue
                key, text = node.findtext(f"{_ATOM}id"), node.findtext(f"{_ATOM}updated") or ""
                node.clear()
                try:
                    second = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
                except ValueError:
                    continue
                if key:
                    found[key] = max(found.get(key, 0), second)
        except (OSError, ET.ParseError):
            continue
    return found


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
        revised = reread(entry, text, tz, now)
    except ValueError as exc:
        result.problems.append(f"{path}: {exc}; the entry stays as it was")
        return None
    state.note_hand_edit(entry_id, entry.hash)
    state.revise_entry(revised)
    result.edited += 1
    return fresh
