"""The CPU-bound stage (parse, filter, convert) of each feed, run in worker processes so a cycle
uses every core while the main process fetches and writes."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aggregator import defaults
from aggregator.config import FeedConfig
from aggregator.convert import Identity, convert_entry, entry_date, identify_entries
from aggregator.filters import select_entries
from aggregator.models import EntryData, FeedData, Fetched, Post
from aggregator.parse import parse_feed
from aggregator.state import State


@dataclass(frozen=True)
class Prepared:
    """One feed parsed and converted, every entry dated as if first seen at `now`."""

    feed: FeedData
    entries: tuple[EntryData, ...]
    identities: tuple[Identity, ...]
    posts: tuple[Post, ...]
    now: datetime


def prepare(fetched: Fetched, source: FeedConfig, timezone: str, now: datetime) -> Prepared:
    """Parse a body and convert the entries its filters let through; raises ParseError."""
    assert fetched.body is not None
    feed = parse_feed(fetched.body, fetched.content_type, fetched.url)
    entries = tuple(select_entries(feed.entries, source))
    identities = tuple(identify_entries(entries, feed, source))
    tz = ZoneInfo(timezone)
    posts = tuple(
        convert_entry(entry, feed, source, tz, now, identity)
        for entry, identity in zip(entries, identities, strict=True)
    )
    return Prepared(feed, entries, identities, posts, now)


def settle_dates(prepared: Prepared, source: FeedConfig, timezone: str, state: State) -> list[Post]:
    """The posts, with entries seen in an earlier cycle whose date depends on when they were
    first seen (no usable date of their own) converted again with that time, kept forever;
    every other entry keeps the worker's conversion."""
    seen = state.first_seen((i.key, i.link_key) for i in prepared.identities)
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


def executor(jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes for up to `jobs` feeds to prepare; None when too few to pay for them
    (the caller prepares inline). Workers come from a fork server that preloaded this module,
    so they start fast and are safe to start from the daemon's threads."""
    workers = min(os.cpu_count() or 1, jobs)
    if jobs < defaults.PARALLEL_MIN_FEEDS or workers < 2:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aggregator.workers"])
    return ProcessPoolExecutor(workers, mp_context=context)
