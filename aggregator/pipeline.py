"""One fetch cycle: fetch the due feeds, parse and convert the changed ones (in worker
processes, as their fetches complete), store, then publish what changed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import heapq
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from aggregator import defaults, eventloop, health, tls
from aggregator.atomic import blamed_path, discard, remove_stale_temps
from aggregator.config import Config, FeedConfig
from aggregator.errors import FeedError, ParseError, StateError
from aggregator.fetch import FetchError, default_user_agent, fetch_all
from aggregator.models import Fetched
from aggregator.pool import worker_pool
from aggregator.publish import PublishResult, publish
from aggregator.rename import Renamed, follow_renames
from aggregator.state import FEEDS_INDEXED, FeedState, State
from aggregator.store import entry_folder, store_posts
from aggregator.text import one_line

if TYPE_CHECKING:  # parsing and converting load only in a cycle where a feed changed
    from aggregator.reconcile import ReconcileResult
    from aggregator.workers import Prepared

# meta row: CLEAN once a cycle ended with every temp file it made in feeds/ installed or removed;
# any other value (a cycle still running, killed, or stopped) has the next cycle look for them
TEMPS_KEY = "entry_temps"
CLEAN = "clean"
CUT_OFF_NOTICE = "the document was cut off before its end: only its whole entries were read"
SETTINGS_DIGITS = 16  # hex digits of the settings' fingerprint in a body hash


@dataclass(frozen=True)
class FeedOutcome:
    """How one feed fared in a cycle: `reason` is set when it failed, `skipped` when it was not
    due (until when, and why), `notice` for news the operator should act on (a moved feed, a
    document cut off); `seconds`: its fetch (once it had a connection slot) and its storing."""

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
    reindexed: ReconcileResult | None = None  # a new state database found entry files
    renamed: list[Renamed] = field(default_factory=list)  # feeds that took their old name's

    @property
    def failed(self) -> list[FeedOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def skipped(self) -> list[FeedOutcome]:
        return [o for o in self.outcomes if o.skipped]


Progress = Callable[[FeedOutcome], None]


def select_feeds(config: Config, names: Sequence[str]) -> list[FeedConfig]:
    """The feeds named (all when none); unknown names raise FeedError."""
    if not names:
        return list(config.feeds)
    unknown = [n for n in names if config.feed(n) is None]
    if unknown:
        raise FeedError(", ".join(unknown), "no such feed in the config")
    return [f for f in config.feeds if f.name in names]


def settings_hash(source: FeedConfig, config: Config) -> str:
    """A fingerprint of every setting that shapes a feed's entries (its schedule does not)."""
    return _settings_hash(source, config.site.timezone, config.fetch.max_entries)


@lru_cache(maxsize=4096)  # asked for each feed at a cycle's start and for each body it reads
def _settings_hash(source: FeedConfig, timezone: str, max_entries: int) -> str:
    shaping = replace(source, interval=None, cron=None)
    # max_entries counts only when set: fingerprints stored before it existed stay the same
    limit = () if max_entries == defaults.MAX_ENTRIES_READ else (max_entries,)
    settings = repr((shaping, timezone, *limit)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(settings).hexdigest()[:SETTINGS_DIGITS]


def body_hash(body: bytes, source: FeedConfig, config: Config) -> str:
    """A fingerprint of the body and of every setting that shapes its entries: the settings'
    own first, so that a 304 can be told apart from a change of settings (stored_settings)."""
    return f"{settings_hash(source, config)}:{hashlib.sha256(body).hexdigest()}"


def stored_settings(stored: str | None) -> str | None:
    """The settings part of a stored body hash; None when there is none (no body stored, or
    one stored before the body hash began with its settings)."""
    settings, mark, _ = (stored or "").partition(":")
    return settings if mark else None


def run_cycle(
    config: Config,
    feeds: Sequence[FeedConfig],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
) -> CycleReport:
    """Fetch, convert and store `feeds`, then publish (only the feeds whose entries changed are
    rewritten, and the ones a previous cycle left behind, e.g. when killed). Each feed is stored
    once it and the feeds before it are fetched and prepared, while later ones are still being
    fetched. Setting `stop` cancels the requests in flight (what was stored by then is published
    by the next cycle) or ends storing after the current feed, publishing what was stored; the
    workers are ended either way, what they were preparing undone. Feeds not due yet
    (Retry-After, backoff after failures, cache lifetime, gone) are skipped and reported as
    such, unless `force`."""
    report = CycleReport()
    tls.preload()  # read while the cycle starts; any feed may be, or redirect to, https
    config.site.feeds_dir.mkdir(parents=True, exist_ok=True)
    config.site.output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(config.site.output_dir)
    with State(config.state_path) as state:
        if state.meta(TEMPS_KEY) != CLEAN:  # walking every entry folder is worth skipping
            remove_stale_temps(config.site.feeds_dir)
        if state.meta(FEEDS_INDEXED) is None:  # a new or lost database: the files are the record
            report.reindexed = _index_feeds(config, state)
        report.renamed = follow_renames(config, state)
        with state.transaction():
            state.set_meta(TEMPS_KEY, "cycle")
        clock = time.time()
        states = {
            f.name: _started_over(
                config,
                state,
                _resettled(health.for_url(state.feed(f.name), f.url), settings_hash(f, config)),
            )
            for f in feeds
        }
        due = [f for f in feeds if force or f.is_local or health.is_due(states[f.name], clock)]
        user_agent = config.fetch.user_agent or default_user_agent(config.site.base_url)
        now = datetime.now(UTC).replace(microsecond=0)
        with Preparing(config, state, states, now, due, stop) as preparing:
            settling = Settling(feeds, due, preparing, clock, report, progress, stop)
            fetching = fetch_all(due, config.fetch, states, user_agent, settling.arrived)
            if eventloop.run(_until_stopped(fetching, stop)) is None:
                return report
            settling.finish()
            report.published = publish(config, state, pool=preparing.pool)
        if not preparing.unsure and not (stop and stop.is_set()):
            with state.transaction():
                state.set_meta(TEMPS_KEY, CLEAN)
    return report


def _started_over(config: Config, state: State, feed: FeedState) -> FeedState:
    """The feed's state, without its validators and body hash when a person deleted its folder
    of feeds/ (starting over) while entries are indexed there: its fetch reads the source whole
    and writes them again."""
    folder = entry_folder(feed.name)
    if os.path.isdir(config.site.feeds_dir / folder) or not state.file_hashes(folder):
        return feed
    return replace(feed, etag=None, last_modified=None, body_hash=None)


def _resettled(feed: FeedState, settings: str) -> FeedState:
    """The feed's state, without its validators when the settings that shape its entries
    changed since its body was last stored: its fetch reads the source whole and makes its
    entries again, where a 304 would leave them as they were."""
    if stored_settings(feed.body_hash) in (None, settings):
        return feed
    return replace(feed, etag=None, last_modified=None)


def _index_feeds(config: Config, state: State) -> ReconcileResult | None:
    """Index the entry files of feeds/ into a state database that never did (reconcile); what
    it found, None when nothing."""
    with os.scandir(config.site.feeds_dir) as found:
        if not any(entry.is_dir(follow_symlinks=False) for entry in found):
            with state.transaction():
                state.set_meta(FEEDS_INDEXED, "yes")
            return None
    from aggregator.reconcile import reconcile  # and YAML: only when there are files to read

    result = reconcile(config, state, time.time())
    return result if result.indexed or result.problems else None


class Settling:
    """Storing the feeds in config order, each as soon as its fetch (and its parsing and
    converting) is done and the feeds before it are stored: while the later feeds are still
    being fetched, not after the slowest of them. Runs on the event loop's thread; a worker
    that finishes a feed wakes it through the loop."""

    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        due: Sequence[FeedConfig],
        preparing: Preparing,
        clock: float,
        report: CycleReport,
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> None:
        self.feeds = feeds
        self.due = {source.name for source in due}
        self.preparing = preparing
        self.clock = clock
        self.report = report
        self.progress = progress
        self.stop = stop
        # each fetch and its seconds, the body let go once the feed is settled
        self.fetched: dict[str, tuple[Fetched | FeedError, float]] = {}
        self.settled = 0  # feeds[:settled] are done
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: Exception | None = None

    def arrived(self, source: FeedConfig, result: Fetched | FeedError, seconds: float) -> None:
        """A fetch is done (on the event loop): start preparing it, store what is ready."""
        self.loop = asyncio.get_running_loop()
        self.preparing.start(source, result)
        self.fetched[source.name] = (result, seconds)
        self._advance()

    def finish(self) -> None:
        """Store the rest, waiting for the workers (every fetch is done); after a stop request,
        nothing more, and the workers are ended: what they prepare would be thrown away."""
        self.loop = None
        if self.error is not None:
            raise self.error
        self._settle_ready(wait=True)
        if self.stop is not None and self.stop.is_set():
            self.preparing.end()

    def _wake(self, _: object) -> None:
        """A worker finished a feed (called on another thread)."""
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: finish() goes on
                loop.call_soon_threadsafe(self._advance)

    def _advance(self) -> None:
        """Store what is ready; an error that would end the cycle is kept for finish()."""
        if self.error is not None:
            return
        try:
            self._settle_ready(wait=False)
        except Exception as exc:
            self.error = exc

    def _settle_ready(self, wait: bool) -> None:
        while self.settled < len(self.feeds):
            if self.stop is not None and self.stop.is_set():
                return
            source = self.feeds[self.settled]
            if source.name not in self.due:
                previous = self.preparing.states[source.name]
                outcome = FeedOutcome(source.name, skipped=health.skip_reason(previous))
            else:
                if source.name not in self.fetched:
                    return  # not fetched yet
                if wait and not self.preparing.wait(source):
                    return  # stopped
                if not wait and not self.preparing.ready(source, self._wake):
                    return  # still with a worker
                result, fetching = self.fetched.pop(source.name)
                started = time.monotonic()
                outcome = _settle(source, result, self.preparing, self.clock)
                outcome = replace(outcome, seconds=fetching + time.monotonic() - started)
            self.settled += 1
            self.report.outcomes.append(outcome)
            if self.progress:
                self.progress(outcome)


class Preparing:
    """Parsing and converting the feeds whose bodies changed, started as each fetch completes:
    in worker processes when there are enough feeds, else inline when the result is wanted.
    A few feeds at a time are in the workers' hands, the next to be stored first: prepared
    feeds wait in memory for the store, and that must not grow with the number of feeds. On a
    stop request (or an error that ends the cycle) the workers are ended at once: what they
    are preparing would be thrown away."""

    def __init__(
        self,
        config: Config,
        state: State,
        states: dict[str, FeedState],
        now: datetime,
        due: Sequence[FeedConfig],
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.states = states
        self.now = now
        self.stop = stop
        self.pool = worker_pool(len(due))
        if self.pool is not None and _new_feeds(due, states) >= defaults.PARALLEL_MIN_FEEDS:
            self.pool.start_server()  # their bodies are surely parsed: the workers get ready
        self.rank = {source.name: rank for rank, source in enumerate(due)}
        self.waiting: list[tuple[int, str]] = []  # a heap of changed feeds not handed out yet
        self.bodies: dict[str, tuple[FeedConfig, Fetched]] = {}
        self.futures: dict[str, Future[Prepared]] = {}
        self.digests: dict[str, str] = {}
        self.woken: set[str] = set()  # feeds whose worker wakes the store when done
        self.lost = False  # a worker died: no more feeds are handed out
        self.unsure = False  # a job failed: its worker may have left temp files behind

    def __enter__(self) -> Preparing:
        return self

    def __exit__(self, error: type[BaseException] | None, *exc: object) -> None:
        if error is not None or self._stopped():
            self.end()
        elif self.pool is not None:
            self.pool.shutdown()

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def end(self) -> None:
        """End the workers without waiting for their jobs; the temp files they wrote are left
        for the next cycle to remove (this one does not end clean)."""
        if self.pool is not None:
            self.unsure = True
            self.pool.end()

    def start(self, source: FeedConfig, result: Fetched | FeedError) -> None:
        """Fingerprint a fetched body; when it changed, have it prepared."""
        if isinstance(result, FeedError) or result.not_modified or result.body is None:
            return
        digest = body_hash(result.body, source, self.config)
        self.digests[source.name] = digest
        if self.changed(source) and self.pool is not None:
            heapq.heappush(self.waiting, (self.rank[source.name], source.name))
            self.bodies[source.name] = (source, result)
            self._hand_out()

    def _hand_out(self, name: str | None = None) -> None:
        """Give the workers feed `name` now, then the next waiting ones while fewer than a few
        are in their hands."""
        assert self.pool is not None
        from aggregator import workers

        limit = defaults.PREPARED_PER_WORKER * self.pool.size
        while not self.lost and self.bodies and (name in self.bodies or len(self.futures) < limit):
            if name not in self.bodies:
                name = heapq.heappop(self.waiting)[1]
                if name not in self.bodies:
                    continue
            source, fetched = self.bodies[name]
            hashes = self.state.file_hashes(entry_folder(name))
            prewrite = workers.Prewrite(self.config.site.feeds_dir, hashes)
            future = self.pool.submit(
                workers.prepare,
                fetched,
                source,
                self.config.site.timezone,
                self.now,
                self.config.fetch.max_entries,
                prewrite,
            )
            if future is None:  # a worker died: the feeds not handed out are prepared here
                self.lost = self.unsure = True
                return
            del self.bodies[name]
            self.futures[name] = future
            name = None

    def digest(self, source: FeedConfig) -> str | None:
        return self.digests.get(source.name)

    def changed(self, source: FeedConfig) -> bool:
        """Whether a body was fetched that differs from the one last stored: only such a feed
        is parsed and converted."""
        digest = self.digests.get(source.name)
        return digest is not None and digest != self.states[source.name].body_hash

    def ready(self, source: FeedConfig, wake: Callable[[object], None]) -> bool:
        """Whether result() would return at once; when not, the feed is with a worker, which
        calls `wake` when done (always False without workers: the caller prepares it)."""
        if not self.changed(source):
            return True  # nothing to prepare
        if self.pool is None:
            return False
        if source.name in self.bodies:
            self._hand_out(source.name)
        future = self.futures.get(source.name)
        if future is None:  # not handed out: the workers were lost
            return False
        if future.done():
            return True
        if source.name not in self.woken:
            self.woken.add(source.name)
            future.add_done_callback(wake)
        return False

    def wait(self, source: FeedConfig) -> bool:
        """Wait for the worker preparing the feed, if any; False when a stop request comes
        first (a feed not in the workers' hands is prepared by result())."""
        if source.name in self.bodies:
            self._hand_out(source.name)
        future = self.futures.get(source.name)
        while future is not None and not future.done():
            if self._stopped():
                return False
            concurrent.futures.wait([future], timeout=defaults.STOP_POLL)
        return True

    def result(self, source: FeedConfig, fetched: Fetched) -> Prepared:
        """The prepared feed; raises ParseError, or any error the worker met (a worker that
        died costs the feeds in its hands: the one that killed it may be among them)."""
        from aggregator import workers

        if source.name in self.bodies:
            self._hand_out(source.name)
        self.bodies.pop(source.name, None)  # still here when the workers were lost
        future = self.futures.pop(source.name, None)
        if self.pool is not None:
            self._hand_out()
        if future is None:
            return workers.prepare(
                fetched, source, self.config.site.timezone, self.now, self.config.fetch.max_entries
            )
        try:
            return future.result()
        except ParseError:  # raised before any file was written
            raise
        except BaseException:
            self.unsure = True
            raise


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
    source: FeedConfig, result: Fetched | FeedError, preparing: Preparing, clock: float
) -> FeedOutcome:
    """Store one feed's entries and its health; `clock` is when the cycle started."""
    config, state = preparing.config, preparing.state
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
    if not preparing.changed(source):
        unchanged = health.succeeded(previous, result, clock, previous.ttl_minutes, polled)
        _save(state, replace(unchanged, body_hash=digest or _adopted(previous, source, config)))
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
    # no validators kept: the next fetch reads it whole, not a 304 (a body that left entries
    # out, cut off or not converted, is not taken as stored either: they are tried again)
    if feed.cut_off or prepared.failed:
        result = replace(result, etag=None, last_modified=None)
    stored_hash = None if prepared.failed else digest
    try:
        posts = settle_dates(prepared, source, config.site.timezone, state)
        success = health.succeeded(previous, result, clock, feed.ttl_minutes, polled)
        with state.transaction():
            stored = store_posts(state, config.site.feeds_dir, posts, preparing.now, prepared.temps)
            title = feed.title or None
            state.save_feed(
                replace(success, body_hash=stored_hash, title=title, site_url=feed.link)
            )
    except OSError as exc:  # a full disk, a folder that cannot be written: this feed's alone
        path = blamed_path(exc)
        reason = f"cannot store its entries: {exc.strerror or exc}" + (f" ({path})" if path else "")
        _save(state, health.failed(previous, reason, clock, polled=polled))
        return FeedOutcome(source.name, reason=reason)
    except StateError:  # the database cannot be used: no feed can be stored
        raise
    except Exception as exc:  # a bug one feed's entries meet costs this feed, never the cycle
        reason = f"unexpected error while storing: {type(exc).__name__}: {one_line(str(exc))}"
        _save(state, health.failed(previous, reason, clock, polled=polled))
        return FeedOutcome(source.name, reason=reason)
    finally:
        discard(prepared.temps.values())  # those the store did not install
    notices = [
        health.moved_notice(success),
        CUT_OFF_NOTICE if feed.cut_off else None,
        _failed_notice(prepared.failed),
        _unread_notice(prepared, config.fetch.max_entries),
    ]
    return FeedOutcome(
        source.name,
        new=stored.new,
        updated=stored.updated,
        notice="; ".join(n for n in notices if n) or None,
    )


def _failed_notice(failed: Sequence[str]) -> str | None:
    """The entries a feed's conversion left out, for the operator (and a bug report)."""
    if not failed:
        return None
    count = "1 entry" if len(failed) == 1 else f"{len(failed)} entries"
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    return (
        f"{count} left out, the conversion failed ({failed[0]}{more});"
        " tried again at the next fetch"
    )


def _unread_notice(prepared: Prepared, limit: int) -> str | None:
    """The entries of a document longer than `[fetch] max_entries` that were not read."""
    if not prepared.unread:
        return None
    return (
        f"{prepared.unread + limit} entries, more than max_entries: only the newest {limit}"
        " were read"
    )


def _adopted(previous: FeedState, source: FeedConfig, config: Config) -> str | None:
    """The body hash kept after a 304, given the current settings when it had none (it was
    stored before body hashes began with theirs): they are taken for those of its entries."""
    if previous.body_hash is None or stored_settings(previous.body_hash) is not None:
        return previous.body_hash
    return f"{settings_hash(source, config)}:{previous.body_hash}"


def _save(state: State, feed: FeedState) -> None:
    with state.transaction():
        state.save_feed(feed)


def _new_feeds(due: Sequence[FeedConfig], states: dict[str, FeedState]) -> int:
    """How many of the feeds have never had a body stored (a new project's are all such)."""
    return sum(1 for source in due if states[source.name].body_hash is None)
