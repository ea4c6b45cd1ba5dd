"""`aggregator status`: each feed's health from the state database, read without the writer
lock (the database is in WAL mode, so it reads fine while the daemon writes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.config import Config, FeedConfig, interval_seconds
from aggregator.identity import shown_url
from aggregator.schedule import feed_schedule, make_trigger
from aggregator.state import FeedState, State


@dataclass(frozen=True)
class FeedStatus:
    name: str
    url: str
    health: str
    entries: int
    last_success: float | None
    last_attempt: float | None
    last_error: str | None
    failures: int
    next_due: float | None
    moved_to: str | None
    gone: bool


def _health(state: FeedState) -> str:
    if state.gone:
        return "gone"
    if state.last_attempt is None:
        return "never fetched"
    if state.failures:
        return "failing"
    if state.moved_to:
        return "moved"
    return "ok"


def next_scheduled(feed: FeedConfig, config: Config, after: float) -> float:
    """When the daemon's schedule next fetches the feed after a fetch at `after`."""
    kind, spec = feed_schedule(feed, config)
    if kind == "interval":
        return after + interval_seconds(spec)
    start = datetime.fromtimestamp(after, UTC)
    fire = make_trigger(kind, spec, 0).get_next_fire_time(None, start)
    return fire.timestamp() if fire else after


def collect(config: Config) -> list[FeedStatus]:
    """One row per configured feed, in config order."""
    states: dict[str, FeedState] = {}
    counts: dict[str, int] = {}
    if config.state_path.exists():
        with State(config.state_path, readonly=True) as db:
            states = {f.name: db.feed(f.name) for f in config.feeds}
            counts = db.entry_counts()
    rows = []
    for feed in config.feeds:
        state = states.get(feed.name, FeedState(feed.name))
        due = state.next_due
        if state.last_attempt is not None:
            due = max(due or 0.0, next_scheduled(feed, config, state.last_attempt))
        rows.append(
            FeedStatus(
                name=feed.name,
                url=shown_url(feed.url),
                health=_health(state),
                entries=counts.get(feed.name, 0),
                last_success=state.last_success,
                last_attempt=state.last_attempt,
                last_error=state.last_error,
                failures=state.failures,
                next_due=due,
                moved_to=state.moved_to and shown_url(state.moved_to),
                gone=state.gone,
            )
        )
    return rows


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


def as_json(rows: list[FeedStatus]) -> list[dict[str, Any]]:
    """Rows for `status --json`: times as ISO 8601 in UTC, null when never."""
    out = []
    for row in rows:
        data = asdict(row)
        for key in ("last_success", "last_attempt", "next_due"):
            data[key] = _iso(data[key])
        out.append(data)
    return out


def as_table(rows: list[FeedStatus], timezone: str) -> list[list[str]]:
    """Rows for people: times in the site's time zone."""
    zone = ZoneInfo(timezone)

    def when(stamp: float | None, never: str) -> str:
        if stamp is None:
            return never
        return datetime.fromtimestamp(stamp, zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    table = []
    for row in rows:
        health = row.health
        if row.failures:
            health += f" ({row.failures} in a row)"
        if row.moved_to:
            health += f", moved to {row.moved_to}: update the config"
        table.append(
            [
                row.name,
                health,
                str(row.entries),
                when(row.last_success, "never"),
                when(row.next_due, "now"),
                row.last_error or "",
            ]
        )
    return table


TABLE_HEADERS = ["feed", "health", "entries", "last success", "next due", "last error"]
