"""One fetch cycle: fetch the due feeds, parse, convert, store, then publish what changed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from aggregator import defaults
from aggregator.atomic import remove_stale_temps
from aggregator.config import Config, FeedConfig
from aggregator.convert import convert_entry, identify_entries
from aggregator.errors import FeedError
from aggregator.fetch import default_user_agent, fetch_all
from aggregator.filters import select_entries
from aggregator.models import Fetched, Post
from aggregator.parse import ParseError, parse_feed
from aggregator.publish import ALL_FEED, PublishResult, publish
from aggregator.state import State
from aggregator.store import StoreResult, store_posts


@dataclass(frozen=True)
class FeedOutcome:
    """How one feed fared in a cycle; `reason` is set when it failed."""

    name: str
    reason: str | None = None
    new: int = 0
    updated: int = 0
    not_modified: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass
class CycleReport:
    outcomes: list[FeedOutcome] = field(default_factory=list)
    published: PublishResult | None = None

    @property
    def failed(self) -> list[FeedOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


Progress = Callable[[FeedOutcome], None]


def select_feeds(config: Config, names: Sequence[str]) -> list[FeedConfig]:
    """The feeds named (all when none); unknown names raise FeedError."""
    if not names:
        return list(config.feeds)
    unknown = [n for n in names if config.feed(n) is None]
    if unknown:
        raise FeedError(", ".join(unknown), "no such feed in the config")
    return [f for f in config.feeds if f.name in names]


def body_hash(body: bytes, source: FeedConfig, config: Config) -> str:
    """A fingerprint of the body and of every setting that shapes its entries."""
    digest = hashlib.sha256(body)
    digest.update(repr((source, config.site.timezone)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def convert_feed(
    fetched: Fetched, source: FeedConfig, config: Config, state: State, now: datetime
) -> list[Post]:
    """Parse the body and convert each entry the feed's filters let through; raises ParseError
    when nothing is readable. Entries keep the time they were first seen as their date when
    they give none, even across a guid change."""
    assert fetched.body is not None
    feed = parse_feed(fetched.body, fetched.content_type, fetched.url)
    tz = ZoneInfo(config.site.timezone)
    entries = select_entries(feed.entries, source)
    identities = identify_entries(entries, feed, source)
    seen = state.first_seen((i.key, i.link_key) for i in identities)
    posts = []
    for entry, identity in zip(entries, identities, strict=True):
        stamp = seen.get(identity.key)
        first_seen = datetime.fromtimestamp(stamp, UTC) if stamp is not None else now
        posts.append(convert_entry(entry, feed, source, tz, first_seen, identity))
    return posts


def run_cycle(
    config: Config,
    feeds: Sequence[FeedConfig],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> CycleReport:
    """Fetch, convert and store `feeds`, then publish (only the feeds whose entries changed are
    rewritten, and the ones a previous cycle left behind, e.g. when killed). Setting `stop`
    cancels the requests in flight (nothing is stored) or ends storing after the current feed,
    publishing what was stored."""
    report = CycleReport()
    config.site.feeds_dir.mkdir(parents=True, exist_ok=True)
    config.site.output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(config.site.feeds_dir)
    remove_stale_temps(config.site.output_dir)
    with State(config.state_path) as state:
        states = {f.name: state.feed(f.name) for f in feeds}
        user_agent = config.fetch.user_agent or default_user_agent(config.site.base_url)
        started = time.monotonic()
        results = asyncio.run(
            _until_stopped(fetch_all(feeds, config.fetch, states, user_agent), stop)
        )
        if results is None:
            return report
        total = StoreResult()
        now = datetime.now(UTC).replace(microsecond=0)
        for source, result in zip(feeds, results, strict=True):
            if stop is not None and stop.is_set():
                break
            outcome = _settle(config, state, source, result, now, total)
            outcome = replace(outcome, seconds=time.monotonic() - started)
            report.outcomes.append(outcome)
            if progress:
                progress(outcome)
        report.published = publish(config, state)
    return report


T = TypeVar("T")


async def _until_stopped(work: Awaitable[T], stop: threading.Event | None) -> T | None:
    """The result of `work`, or None when `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return await task
    while not stop.is_set():
        done, _ = await asyncio.wait({task}, timeout=defaults.STOP_POLL)
        if done:
            return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _settle(
    config: Config,
    state: State,
    source: FeedConfig,
    result: Fetched | FeedError,
    now: datetime,
    total: StoreResult,
) -> FeedOutcome:
    previous = state.feed(source.name)
    stamp = now.timestamp()
    if isinstance(result, FeedError):
        with state.transaction():
            state.save_feed(
                replace(
                    previous,
                    url=source.url,
                    last_attempt=stamp,
                    last_error=result.reason,
                    failures=previous.failures + 1,
                )
            )
        return FeedOutcome(source.name, reason=result.reason)
    success = replace(
        previous,
        url=source.url,
        last_attempt=stamp,
        last_success=stamp,
        last_error=None,
        failures=0,
        etag=result.etag,
        last_modified=result.last_modified,
    )
    if result.not_modified or result.body is None:
        with state.transaction():
            state.save_feed(success)
        return FeedOutcome(source.name, not_modified=True)
    digest = body_hash(result.body, source, config)
    if digest == previous.body_hash and (config.site.output_dir / ALL_FEED).exists():
        with state.transaction():
            state.save_feed(replace(success, body_hash=digest))
        return FeedOutcome(source.name, not_modified=True)
    try:
        posts = convert_feed(result, source, config, state, now)
    except ParseError as exc:
        with state.transaction():
            state.save_feed(
                replace(
                    previous,
                    url=source.url,
                    last_attempt=stamp,
                    last_error=str(exc),
                    failures=previous.failures + 1,
                )
            )
        return FeedOutcome(source.name, reason=str(exc))
    with state.transaction():
        stored = store_posts(state, config.site.feeds_dir, posts, now)
        state.save_feed(replace(success, body_hash=digest))
    total.merge(stored)
    return FeedOutcome(source.name, new=stored.new, updated=stored.updated)
