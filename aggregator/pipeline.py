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

from aggregator import defaults, health
from aggregator.atomic import remove_stale_temps
from aggregator.config import Config, FeedConfig
from aggregator.convert import convert_entry, identify_entries
from aggregator.errors import FeedError
from aggregator.fetch import FetchError, default_user_agent, fetch_all
from aggregator.filters import select_entries
from aggregator.models import FeedData, Fetched, Post
from aggregator.parse import ParseError, parse_feed
from aggregator.publish import ALL_FEED, PublishResult, publish
from aggregator.state import FeedState, State
from aggregator.store import StoreResult, store_posts


@dataclass(frozen=True)
class FeedOutcome:
    """How one feed fared in a cycle: `reason` is set when it failed, `skipped` when it was not
    due (until when, and why), `notice` for news the operator should act on (a moved feed)."""

    name: str
    reason: str | None = None
    new: int = 0
    updated: int = 0
    not_modified: bool = False
    seconds: float = 0.0
    skipped: str | None = None
    notice: str | None = None

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
    def skipped(self) -> list[FeedOutcome]:
        return [o for o in self.outcomes if o.skipped]

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
    feed: FeedData, source: FeedConfig, config: Config, state: State, now: datetime
) -> list[Post]:
    """Convert each entry of a parsed feed that the feed's filters let through. Entries keep the
    time they were first seen as their date when they give none, even across a guid change."""
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
    force: bool = False,
) -> CycleReport:
    """Fetch, convert and store `feeds`, then publish (only the feeds whose entries changed are
    rewritten, and the ones a previous cycle left behind, e.g. when killed). Setting `stop`
    cancels the requests in flight (nothing is stored) or ends storing after the current feed,
    publishing what was stored. Feeds not due yet (Retry-After, backoff after failures, cache
    lifetime, gone) are skipped and reported as such, unless `force`."""
    report = CycleReport()
    config.site.feeds_dir.mkdir(parents=True, exist_ok=True)
    config.site.output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(config.site.feeds_dir)
    remove_stale_temps(config.site.output_dir)
    with State(config.state_path) as state:
        clock = time.time()
        states = {f.name: health.for_url(state.feed(f.name), f.url) for f in feeds}
        due = [f for f in feeds if force or f.is_local or health.is_due(states[f.name], clock)]
        user_agent = config.fetch.user_agent or default_user_agent(config.site.base_url)
        started = time.monotonic()
        results = asyncio.run(
            _until_stopped(fetch_all(due, config.fetch, states, user_agent), stop)
        )
        if results is None:
            return report
        fetched = {f.name: result for f, result in zip(due, results, strict=True)}
        total = StoreResult()
        now = datetime.now(UTC).replace(microsecond=0)
        for source in feeds:
            if stop is not None and stop.is_set():
                break
            previous = states[source.name]
            result = fetched.get(source.name)
            if result is None:
                outcome = FeedOutcome(source.name, skipped=health.skip_reason(previous))
            else:
                outcome = _settle(config, state, source, previous, result, now, clock, total)
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
    previous: FeedState,
    result: Fetched | FeedError,
    now: datetime,
    clock: float,
    total: StoreResult,
) -> FeedOutcome:
    """Store one feed's entries and its health; `clock` is when the cycle started."""
    polled = not source.is_local
    if isinstance(result, FeedError):
        asked = result if isinstance(result, FetchError) else FetchError(source.name, "")
        failure = health.failed(
            previous,
            result.reason,
            clock,
            retry_after=asked.retry_after,
            gone=asked.gone,
            polled=polled,
        )
        _save(state, failure)
        return FeedOutcome(source.name, reason=result.reason)
    body = None if result.not_modified else result.body
    digest = None if body is None else body_hash(body, source, config)
    if body is None or (
        digest == previous.body_hash and (config.site.output_dir / ALL_FEED).exists()
    ):
        unchanged = health.succeeded(previous, result, clock, previous.ttl_minutes, polled)
        _save(state, replace(unchanged, body_hash=digest or previous.body_hash))
        return FeedOutcome(source.name, not_modified=True, notice=health.moved_notice(unchanged))
    try:
        feed = parse_feed(body, result.content_type, result.url)
    except ParseError as exc:
        _save(state, health.failed(previous, str(exc), clock, polled=polled))
        return FeedOutcome(source.name, reason=str(exc))
    posts = convert_feed(feed, source, config, state, now)
    success = health.succeeded(previous, result, clock, feed.ttl_minutes, polled)
    with state.transaction():
        stored = store_posts(state, config.site.feeds_dir, posts, now)
        state.save_feed(
            replace(success, body_hash=digest, title=feed.title or None, site_url=feed.link)
        )
    total.merge(stored)
    return FeedOutcome(
        source.name,
        new=stored.new,
        updated=stored.updated,
        notice=health.moved_notice(success),
    )


def _save(state: State, feed: FeedState) -> None:
    with state.transaction():
        state.save_feed(feed)
