"""The CPU-bound stage (parse, filter, convert) of each feed, run in worker processes so a cycle
uses every core while the main process fetches and writes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.atomic import write_temps
from aggregator.config import FeedConfig
from aggregator.convert import Identity, convert_entry, entry_date, identify_entries
from aggregator.filters import newest, select_entries
from aggregator.models import EntryData, FeedData, Fetched, Post
from aggregator.parse import parse_feed
from aggregator.state import State
from aggregator.store import entry_path, text_hash
from aggregator.text import one_line


@dataclass(frozen=True)
class Prewrite:
    """Where the entry files go, and the text hash of each one the feed's folder has: the
    posts whose text differs get their file written ahead, in a temp file beside it."""

    feeds_dir: Path
    hashes: dict[str, str]


@dataclass(frozen=True)
class Prepared:
    """One feed parsed and converted, every entry dated as if first seen at `now`; `temps`:
    durable temp files holding some posts' text (by entry id), for the store to install or
    discard."""

    feed: FeedData
    entries: tuple[EntryData, ...]
    identities: tuple[Identity, ...]
    posts: tuple[Post, ...]
    now: datetime
    temps: dict[str, str] = field(default_factory=dict)
    failed: tuple[str, ...] = ()  # entries left out, each named with why it failed to convert
    unread: int = 0  # entries past the newest `limit` of a longer document, not read


def prepare(
    fetched: Fetched,
    source: FeedConfig,
    timezone: str,
    now: datetime,
    limit: int,
    prewrite: Prewrite | None = None,
) -> Prepared:
    """Parse a body and convert the newest `limit` entries its filters let through; raises
    ParseError. An entry whose conversion fails (a bug its content meets) is left out and named
    in `failed`: it costs that entry, not its feed."""
    assert fetched.body is not None
    feed = parse_feed(fetched.body, fetched.content_type, fetched.url)
    selected = select_entries(feed.entries, source)
    found = identify_entries(selected, feed, source)  # over all: links shared with older ones
    taken = newest(selected, limit)
    tz = ZoneInfo(timezone)
    entries: list[EntryData] = []
    identities: list[Identity] = []
    posts: list[Post] = []
    failed: list[str] = []
    for entry, identity in ((selected[i], found[i]) for i in taken):
        try:
            posts.append(convert_entry(entry, feed, source, tz, now, identity))
        except Exception as exc:
            failed.append(f"{_entry_label(entry)}: {type(exc).__name__}: {one_line(str(exc))}")
            continue
        entries.append(entry)
        identities.append(identity)
    temps = _prewrite(posts, prewrite) if prewrite else {}
    return Prepared(
        feed,
        tuple(entries),
        tuple(identities),
        tuple(posts),
        now,
        temps,
        tuple(failed),
        len(selected) - len(taken),
    )


def _entry_label(entry: EntryData) -> str:
    """How a report names an entry: its link, else its guid, else its title."""
    return one_line(entry.link or entry.guid or repr(entry.title), 120)


def _prewrite(posts: Sequence[Post], prewrite: Prewrite) -> dict[str, str]:
    """Write the files of new and changed posts to temp files, off the main process (it
    installs them when the text is final, as it nearly always is). Writing ahead is only a
    head start: when it fails, the main process writes the files itself and reports."""
    files: dict[str, tuple[Path, bytes]] = {}
    listed = Counter(post.entry_id for post in posts)
    for post in posts:
        if listed[post.entry_id] > 1:  # which one the store keeps is its to say
            continue
        if prewrite.hashes.get(post.entry_id) != text_hash(post.text):
            target = prewrite.feeds_dir / entry_path(post.source, post.entry_id)
            files[post.entry_id] = (target, post.text.encode("utf-8"))
    try:
        temps = write_temps(list(files.values()))
    except OSError:
        return {}
    return {entry_id: tmp for entry_id, (tmp, _) in zip(files, temps, strict=True)}


def settle_dates(prepared: Prepared, source: FeedConfig, timezone: str, state: State) -> list[Post]:
    """The posts, with entries seen in an earlier cycle whose date depends on when they were
    first seen (no usable date of their own) converted again with that time, kept forever;
    every other entry keeps the worker's conversion."""
    seen = state.first_seen((i.key, i.alias, i.link_key) for i in prepared.identities)
    posts = list(prepared.posts)
    tz = ZoneInfo(timezone)
    for index, identity in enumerate(prepared.identities):
        stamp = seen.get(identity.key)
        if stamp is None:
            continue
        first_seen = datetime.fromtimestamp(stamp, UTC)
        entry = prepared.entries[index]
        if entry_date(entry, first_seen) != entry_date(entry, prepared.now):
            posts[index] = convert_entry(entry, prepared.feed, source, tz, first_seen, identity)
    return posts
