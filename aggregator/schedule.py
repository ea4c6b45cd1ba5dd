"""Schedules for the daemon: which APScheduler trigger fires each feed (its own interval or
crontab, else the global one), with jitter."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator import defaults
from aggregator.config import Config, FeedConfig, interval_seconds

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def feed_schedule(feed: FeedConfig, config: Config) -> tuple[str, str]:
    """`("interval", "30m")` or `("cron", "*/15 * * * *")`: the feed's own, else the global."""
    if feed.cron:
        return "cron", feed.cron
    if feed.interval:
        return "interval", feed.interval
    if config.schedule.cron:
        return "cron", config.schedule.cron
    return "interval", config.schedule.interval or defaults.SCHEDULE_INTERVAL


def crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday; a range may wrap, `sat-sun`) as
    APScheduler 3 day names, which would otherwise read 0 as Monday; ValueError when it names
    no day."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step = part.partition("/")
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _cron_day(first), _cron_day(last)
        else:
            low = _cron_day(base)
            high = 6 if step else low
        if not (0 <= low <= 7 and 0 <= high <= 7):
            raise ValueError(f"day of week {part!r} is not 0-7 or sun-sat")
        span = range(low, high + 1) if low <= high else [*range(low, 7), *range(0, high + 1)]
        days.update(day % 7 for day in span[:: int(step or 1)])
    if not days:
        raise ValueError(f"day of week {field!r} names no day")
    return ",".join(CRON_DAYS[day] for day in sorted(days))


def _cron_day(token: str) -> int:
    if token[:3] in CRON_DAYS:
        return CRON_DAYS.index(token[:3])
    if not token.isdigit():
        raise ValueError(f"day of week {token!r} is not 0-7 or sun-sat")
    return int(token)


def make_trigger(kind: str, spec: str, jitter: int) -> BaseTrigger:
    """The trigger of an interval or a crontab line, as crontab reads it: when both the day of
    the month and the day of the week are restricted, either one matching is enough (APScheduler
    alone would ask for both). ValueError for a line crontab would refuse."""
    if kind == "interval":
        return IntervalTrigger(seconds=interval_seconds(spec), jitter=jitter or None)
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, not 5")
    minute, hour, day, month, weekday = fields
    weekdays = crontab_days(weekday)

    def cron(day: str, weekdays: str, jitter: int | None) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, jitter=jitter
        )

    if day != "*" and weekday != "*":
        return OrTrigger([cron(day, "*", None), cron("*", weekdays, None)], jitter=jitter or None)
    return cron(day, weekdays, jitter or None)


def schedule_groups(config: Config) -> dict[str, tuple[Callable[[], BaseTrigger], list[str]]]:
    """Feeds that share a schedule, by a key naming it: a trigger factory and the feed names.
    Feeds in one group are due together and fetched in one cycle."""
    groups: dict[str, tuple[Callable[[], BaseTrigger], list[str]]] = {}
    jitter = config.schedule.jitter
    for feed in config.feeds:
        kind, spec = feed_schedule(feed, config)
        key = f"{kind} {spec} jitter={jitter}"
        if key not in groups:
            groups[key] = (partial(make_trigger, kind, spec, jitter), [])
        groups[key][1].append(feed.name)
    return groups
