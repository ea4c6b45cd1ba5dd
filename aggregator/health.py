"""Feed health: when a feed may be requested again (Retry-After, Cache-Control, Expires, RSS
`<ttl>`, backoff with jitter after failures, weekly tries of gone feeds) and which URL to request
(a permanent redirect seen often enough). Pure functions of a FeedState and the time."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from aggregator import defaults
from aggregator.identity import shown_url
from aggregator.models import Fetched
from aggregator.state import FeedState

MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,12})", re.IGNORECASE)
NO_CACHE = re.compile(r"\bno-(?:cache|store)\b", re.IGNORECASE)
DELAY_SECONDS = re.compile(r"[0-9]{1,12}")
# the longest a feed is held back, with an hour to spare: a next due time further ahead was set
# by a clock that ran fast
LONGEST_HOLD = max(defaults.RETRY_AFTER_CAP, defaults.GONE_RETRY, defaults.BACKOFF_CAP) + 3600


def http_date(value: str | None) -> float | None:
    """An HTTP date (RFC 9110, or its obsolete forms) as a timestamp; None when unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def retry_at(value: str | None, now: float) -> float | None:
    """When a Retry-After header (seconds or an HTTP date) allows the next request, capped."""
    if not value:
        return None
    text = value.strip()
    if DELAY_SECONDS.fullmatch(text):
        delay = float(text)
    else:
        when = http_date(text)
        if when is None:
            return None
        delay = when - now
    return now + min(max(delay, 0.0), defaults.RETRY_AFTER_CAP)


def fresh_for(
    cache_control: str | None,
    expires: str | None,
    date: str | None,
    now: float,
    age: str | None = None,
) -> float | None:
    """Seconds the server says its answer stays fresh, capped: its lifetime (max-age, else
    Expires) less the age a cache in between gave it (RFC 9111, 4.2.3)."""
    directives = cache_control or ""
    if NO_CACHE.search(directives):
        return None
    match = MAX_AGE.search(directives)
    if match:
        seconds = float(match.group(1))
    else:
        until = http_date(expires)
        if until is None:
            return None
        seconds = until - (http_date(date) or now)
    if age and DELAY_SECONDS.fullmatch(age.strip()):
        seconds -= float(age)
    return min(seconds, defaults.FRESHNESS_CAP) if seconds > 0 else None


def min_interval(fresh: float | None, ttl_minutes: int | None) -> float | None:
    """The shortest time between two requests: the longer of cache lifetime and `<ttl>`."""
    seconds = max(fresh or 0.0, 60.0 * (ttl_minutes or 0))
    return min(seconds, defaults.FRESHNESS_CAP) if seconds > 0 else None


def backoff(failures: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` failures in a row: doubling, capped, half of it random."""
    ceiling = min(defaults.BACKOFF_CAP, defaults.BACKOFF_BASE * 2.0 ** min(failures - 1, 32))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def is_due(state: FeedState, now: float) -> bool:
    """Whether the fetcher allows the feed now: its next due time has come, or lies further
    ahead than any hold it sets (the clock ran fast when it was set, and was put right)."""
    if state.next_due is None or state.next_due <= now:
        return True
    return state.next_due - now > LONGEST_HOLD


def request_url(url: str, state: FeedState) -> str:
    """The configured URL, or where it permanently moved once that was seen often enough."""
    if state.moved_to and state.moved_count >= defaults.MOVED_CONFIRMATIONS:
        return state.moved_to
    return url


def for_url(state: FeedState, url: str) -> FeedState:
    """The state to use for `url`: a changed URL starts afresh (validators, health, moves)."""
    if state.url == url:
        return state
    if not state.url:
        return replace(state, url=url)
    return replace(
        state,
        url=url,
        etag=None,
        last_modified=None,
        body_hash=None,
        last_error=None,
        failures=0,
        next_due=None,
        moved_to=None,
        moved_count=0,
        gone=False,
        ttl_minutes=None,
    )


def succeeded(
    previous: FeedState,
    fetched: Fetched,
    now: float,
    ttl_minutes: int | None,
    polled: bool = True,
) -> FeedState:
    """The state after a good answer (200 or 304); `polled` is False for local files."""
    moved_to, moved_count = _track_move(previous, fetched.moved_to)
    interval = min_interval(fetched.fresh_for, ttl_minutes)
    return replace(
        previous,
        last_attempt=now,
        last_success=now,
        last_error=None,
        failures=0,
        next_due=now + interval if polled and interval else None,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        moved_to=moved_to,
        moved_count=moved_count,
        gone=False,
        ttl_minutes=ttl_minutes,
    )


def failed(
    previous: FeedState,
    reason: str,
    now: float,
    *,
    retry_after: float | None = None,
    gone: bool = False,
    polled: bool = True,
    rng: random.Random | None = None,
) -> FeedState:
    """The state after a failure: one more in a row, and when to try again."""
    failures = previous.failures + 1
    due: float | None = None
    if polled and gone:
        due = now + defaults.GONE_RETRY
    elif polled:
        due = max(now + backoff(failures, rng), retry_after or 0.0)
    return replace(
        previous, last_attempt=now, last_error=reason, failures=failures, next_due=due, gone=gone
    )


def _track_move(previous: FeedState, seen: str | None) -> tuple[str | None, int]:
    if seen is None:
        if previous.moved_to and previous.moved_count >= defaults.MOVED_CONFIRMATIONS:
            return previous.moved_to, previous.moved_count
        return None, 0
    if seen == previous.moved_to:
        return seen, previous.moved_count + 1
    return seen, 1


def moved_notice(state: FeedState) -> str | None:
    """What to tell the operator about a permanent redirect, if one was seen."""
    if not state.moved_to:
        return None
    moved_to = shown_url(state.moved_to)
    if state.moved_count >= defaults.MOVED_CONFIRMATIONS:
        return f"moved to {moved_to}, update the config (the new URL is used from now on)"
    return (
        f"moved to {moved_to}, update the config "
        f"(seen {state.moved_count} of {defaults.MOVED_CONFIRMATIONS} times before it is used)"
    )


def skip_reason(state: FeedState) -> str:
    """Why a feed is not requested in this cycle, and until when."""
    assert state.next_due is not None
    until = f"skipped until {describe_time(state.next_due)}"
    if state.gone:
        return f"{until}: {state.last_error}"
    if state.failures:
        times = "1 failure" if state.failures == 1 else f"{state.failures} failures in a row"
        return f"{until}, after {times}: {state.last_error}"
    return f"{until}: still fresh (the server's cache lifetime or the feed's ttl)"


def describe_time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_duration(seconds: float) -> str:
    """`90 s`, `5 min`, `2 h`, `7 days`: the largest unit a person would say."""
    value, unit = round(seconds), "s"
    for size, larger in ((60, "min"), (60, "h"), (24, "day")):
        if value < 2 * size and (value < size or value % size):
            break
        value, unit = round(value / size), larger
    return f"{value} days" if unit == "day" and value > 1 else f"{value} {unit}"
