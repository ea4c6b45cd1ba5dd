"""`aggregator run`: APScheduler triggers mark feeds due; one worker thread fetches every due
feed in one cycle (one client) under the writer lock; the main thread waits for signals.

SIGTERM/SIGINT stop after the current write; SIGHUP reloads config.toml (a broken one is
reported and the old one kept). Signals are blocked in every thread and taken with sigwait, so
no handler ever interrupts a write or a lock."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable
from datetime import UTC

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator import defaults, health
from aggregator.config import Config, FeedConfig, load_config
from aggregator.errors import ConfigError, LockFileError, StateDamagedError, StateError
from aggregator.lock import writer_lock, writer_lock_until
from aggregator.logs import LOGGER, log_outcome, log_publish
from aggregator.pipeline import run_cycle
from aggregator.schedule import schedule_groups
from aggregator.state import State

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
HANDLED_SIGNALS = STOP_SIGNALS | {signal.SIGHUP}
SIGNAL_POLL = 1.0  # seconds between the main thread's checks that the worker is alive


def due_feeds(config: Config, feeds: Iterable[FeedConfig], now: float) -> list[FeedConfig]:
    """The feeds the fetcher allows now (local files always; others once their next_due from
    Retry-After, backoff or cache lifetime has passed), so a tick logs no skipped feeds."""
    feeds = list(feeds)
    if not feeds or not config.state_path.exists():
        return feeds
    with State(config.state_path) as state:
        return [
            f
            for f in feeds
            if f.is_local or health.is_due(health.for_url(state.feed(f.name), f.url), now)
        ]


class Daemon:
    """The scheduler loop. `run()` blocks until SIGTERM or SIGINT and returns the exit code."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._pending: set[str] = set()
        self._republish = False  # the next cycle publishes even when no feed is due
        self._pending_lock = threading.Lock()
        # found by a cycle: it ends the daemon, since no later cycle can do better
        self._damaged: StateDamagedError | None = None
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": defaults.MISFIRE_GRACE,
            },
        )

    def mark_due(self, names: Iterable[str]) -> None:
        with self._pending_lock:
            self._pending.update(names)
        self._wake.set()

    def run(self) -> int:
        """LockHeldError when another daemon already runs on this config; StateError when the
        state database cannot be used at the start, or is found damaged later."""
        with writer_lock(self.config.root / defaults.DAEMON_LOCK_NAME, wait=0):
            State(self.config.state_path).close()  # here: a cycle logs most errors and goes on
            return self._run()

    def _run(self) -> int:
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            self._schedule(self.config)
            self._scheduler.start()
            worker = threading.Thread(target=self._work, name="aggregator-worker")
            worker.start()
            LOGGER.info("running: %d feeds, config %s", len(self.config.feeds), self.config.path)
            self.mark_due(f.name for f in self.config.feeds)
            self._wait_for_signals(worker)
            worker.join()
            self._scheduler.shutdown(wait=False)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        if self._damaged is not None:
            raise self._damaged
        if not self.stop.is_set():
            LOGGER.error("the worker thread ended unexpectedly")
            return 1
        LOGGER.info("stopped")
        return 0

    def _wait_for_signals(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            info = signal.sigtimedwait(HANDLED_SIGNALS, SIGNAL_POLL)
            if info is None:
                continue
            if info.si_signo in STOP_SIGNALS:
                LOGGER.info("stopping (%s)", signal.Signals(info.si_signo).name)
                self.stop.set()
                self._wake.set()
                return
            self._reload.set()
            self._wake.set()

    def _work(self) -> None:
        while not self.stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self.stop.is_set():
                return
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            if (self._pending or self._republish) and not self.stop.wait(defaults.BATCH_WINDOW):
                self._cycle()

    def reload(self) -> None:
        """Read config.toml again; feeds added or changed are fetched at once, and output/ is
        published at once when the site settings changed."""
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            LOGGER.error("config reload failed, keeping the previous config: %s", exc)
            return
        old = {f.name: f for f in self.config.feeds}
        fresh = [f.name for f in config.feeds if old.get(f.name) != f]
        removed = old.keys() - {f.name for f in config.feeds}
        self._schedule(config)
        self._republish = self._republish or config.site != self.config.site
        self.config = config
        LOGGER.info(
            "config reloaded: %d feeds, %d added or changed, %d removed",
            len(config.feeds),
            len(fresh),
            len(removed),
        )
        self.mark_due(fresh)

    def _schedule(self, config: Config) -> None:
        """One job per distinct schedule; a job whose schedule is unchanged keeps its timing."""
        groups = schedule_groups(config)
        current = {job.id for job in self._scheduler.get_jobs()}
        for job_id in current - groups.keys():
            self._scheduler.remove_job(job_id)
        for job_id, (trigger, names) in groups.items():
            if job_id in current:
                self._scheduler.modify_job(job_id, args=[names])
            else:
                self._scheduler.add_job(self.mark_due, trigger(), args=[names], id=job_id)

    def _cycle(self) -> None:
        with self._pending_lock:
            names, self._pending = self._pending, set()
        republish, self._republish = self._republish, False
        config = self.config
        try:
            with writer_lock_until(config.lock_path, self.stop) as held:
                if not held:
                    return
                feeds = due_feeds(config, (f for f in config.feeds if f.name in names), time.time())
                if not feeds and not republish:
                    return
                started = time.monotonic()
                report = run_cycle(config, feeds, progress=log_outcome, stop=self.stop)
        except StateDamagedError as exc:
            self._damaged = exc
            self.stop.set()
            return
        except (StateError, LockFileError) as exc:  # e.g. locked by another program, a full disk
            LOGGER.error("cycle failed: %s; its feeds are tried again at their next run", exc)
            return
        except Exception as exc:  # one bad cycle must not end a daemon meant to run for months
            LOGGER.error("cycle failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            return
        for renamed in report.renamed:
            LOGGER.info("%s", renamed)
        if report.reindexed is not None:
            for problem in report.reindexed.problems:
                LOGGER.warning("%s", problem)
            LOGGER.warning(
                "the state database was new: %d entry files in feeds/ indexed again",
                report.reindexed.indexed,
            )
        if report.published is not None:
            log_publish(report.published)
        LOGGER.debug(
            "cycle: %d feeds in %.2f s, next at %s",
            len(report.outcomes),
            time.monotonic() - started,
            self._next_run(),
        )

    def _next_run(self) -> str:
        times = [job.next_run_time for job in self._scheduler.get_jobs() if job.next_run_time]
        return min(times).astimezone(UTC).isoformat(timespec="seconds") if times else "never"
