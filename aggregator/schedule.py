"""Schedules for the daemon: which APScheduler trigger fires each feed (its own interval or
crontab, else the global one), with jitter."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from apscheduler.triggers.base import BaseTrigger
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
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler 3 day names, which would
    otherwise read 0 as Monday."""
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
        days.update(day % 7 for day in range(low, high + 1, int(step or 1)))
    return ",".join(CRON_DAYS[day] for day in sorted(days))


def _cron_day(token: str) -> int:
    return CRON_DAYS.index(token[:3]) if token[:3] in CRON_DAYS else int(token)


def make_trigger(kind: str, spec: str, jitter: int) -> BaseTrigger:
    if kind == "interval":
        return IntervalTrigger(seconds=interval_seconds(spec), jitter=jitter or None)
    minute, hour, day, month, weekday = spec.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_days(weekday),
        jitter=jitter or None,
    )


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
