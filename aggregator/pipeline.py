"""One fetch cycle: fetch the due feeds, parse and convert the changed ones (in worker
processes, as their fetches complete), store, then publish what changed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from aggregator import defaults, health
from aggregator.atomic import discard, remove_stale_temps
from aggregator.config import Config, FeedConfig
from aggregator.errors import FeedError, ParseError
from aggregator.fetch import FetchError, default_user_agent, fetch_all
from aggregator.models import Fetched
from aggregator.pool import worker_pool
from aggregator.publish import PublishResult, publish
from aggregator.state import FeedState, State
from aggregator.store import StoreResult, entry_folder, store_posts

if TYPE_CHECKING:  # parsing and converting load only in a cycle where a feed changed
    from aggregator.workers import Prepared


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
        now = datetime.now(UTC).replace(microsecond=0)
        with Preparing(config, state, states, now, due) as preparing:
            fetching = fetch_all(due, config.fetch, states, user_agent, preparing.start)
            results = asyncio.run(_until_stopped(fetching, stop))
            if results is None:
                return report
            fetched = {f.name: result for f, result in zip(due, results, strict=True)}
            del results  # each body is let go once its feed is settled
            total = StoreResult()
            for source in feeds:
                if stop is not None and stop.is_set():
                    break
                previous = states[source.name]
                result = fetched.pop(source.name, None)
                if result is None:
                    outcome = FeedOutcome(source.name, skipped=health.skip_reason(previous))
                else:
                    outcome = _settle(config, state, source, result, preparing, clock, total)
                    outcome = replace(outcome, seconds=time.monotonic() - started)
                report.outcomes.append(outcome)
                if progress:
                    progress(outcome)
            report.published = publish(config, state, pool=preparing.pool)
    return report


class Preparing:
    """Parsing and converting the feeds whose bodies changed, started as each fetch completes:
    in worker processes when there are enough feeds, else inline when the result is wanted.
    A few feeds at a time are in the workers' hands, the next to be stored first: prepared
    feeds wait in memory for the store, and that must not grow with the number of feeds."""

    def __init__(
        self,
        config: Config,
        state: State,
        states: dict[str, FeedState],
        now: datetime,
        due: Sequence[FeedConfig],
    ) -> None:
        self.config = config
        self.state = state
        self.states = states
        self.now = now
        self.pool = worker_pool(len(due))
        self.rank = {source.name: rank for rank, source in enumerate(due)}
        self.waiting: list[tuple[int, str]] = []  # a heap of changed feeds not handed out yet
        self.bodies: dict[str, tuple[FeedConfig, Fetched]] = {}
        self.futures: dict[str, Future[Prepared]] = {}
        self.digests: dict[str, str] = {}

    def __enter__(self) -> Preparing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def start(self, source: FeedConfig, result: Fetched | FeedError) -> None:
        """Fingerprint a fetched body; when it changed, have it prepared."""
        if isinstance(result, FeedError) or result.not_modified or result.body is None:
            return
        digest = body_hash(result.body, source, self.config)
        self.digests[source.name] = digest
        if digest != self.states[source.name].body_hash and self.pool is not None:
            heapq.heappush(self.waiting, (self.rank[source.name], source.name))
            self.bodies[source.name] = (source, result)
            self._hand_out()

    def _hand_out(self, name: str | None = None) -> None:
        """Give the workers feed `name` now, then the next waiting ones while fewer than a few
        are in their hands."""
        assert self.pool is not None
        from aggregator import workers

        limit = defaults.PREPARED_PER_WORKER * self.pool.size
        while self.bodies and (name in self.bodies or len(self.futures) < limit):
            if name not in self.bodies:
                name = heapq.heappop(self.waiting)[1]
                if name not in self.bodies:
                    continue
            source, fetched = self.bodies.pop(name)
            hashes = self.state.file_hashes(entry_folder(name))
            prewrite = workers.Prewrite(self.config.site.feeds_dir, hashes)
            self.futures[name] = self.pool.executor.submit(
                workers.prepare, fetched, source, self.config.site.timezone, self.now, prewrite
            )
            name = None

    def digest(self, source: FeedConfig) -> str | None:
        return self.digests.get(source.name)

    def result(self, source: FeedConfig, fetched: Fetched) -> Prepared:
        """The prepared feed; raises ParseError, or any error the worker met."""
        from aggregator import workers

        if source.name in self.bodies:
            self._hand_out(source.name)
        future = self.futures.pop(source.name, None)
        if self.pool is not None:
            self._hand_out()
        if future is None:
            return workers.prepare(fetched, source, self.config.site.timezone, self.now)
        return future.result()


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
    preparing: Preparing,
    clock: float,
    total: StoreResult,
) -> FeedOutcome:
    """Store one feed's entries and its health; `clock` is when the cycle started."""
    previous = preparing.states[source.name]
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
    digest = preparing.digest(source)
    if digest is None or digest == previous.body_hash:
        unchanged = health.succeeded(previous, result, clock, previous.ttl_minutes, polled)
        _save(state, replace(unchanged, body_hash=digest or previous.body_hash))
        return FeedOutcome(source.name, not_modified=True, notice=health.moved_notice(unchanged))
    try:
        prepared = preparing.result(source, result)
    except ParseError as exc:
        _save(state, health.failed(previous, str(exc), clock, polled=polled))
        return FeedOutcome(source.name, reason=str(exc))
    except Exception as exc:  # a bug or a lost worker costs this feed, never the cycle
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
        _save(state, health.failed(previous, reason, clock, polled=polled))
        return FeedOutcome(source.name, reason=reason)
    from aggregator.workers import settle_dates

    feed = prepared.feed
    try:
        posts = settle_dates(prepared, source, config.site.timezone, state)
        success = health.succeeded(previous, result, clock, feed.ttl_minutes, polled)
        with state.transaction():
            stored = store_posts(state, config.site.feeds_dir, posts, preparing.now, prepared.temps)
            state.save_feed(
                replace(success, body_hash=digest, title=feed.title or None, site_url=feed.link)
            )
    finally:
        discard(prepared.temps.values())  # those the store did not install
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
