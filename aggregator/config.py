"""Load and validate config.toml into frozen dataclasses; every mistake is a ConfigError."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator import defaults
from aggregator.errors import ConfigError
from aggregator.identity import TAG_RULE, slug, usable_tag

INTERVAL_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMATS = ("atom", "rss", "json")
# upper bounds of the numbers: far beyond any real use, and within what SQLite, sockets and
# timers take (a larger value failed deep inside a fetch or a publish)
MAX_ENTRIES = 10_000  # entries_per_feed, summary_length
MAX_SECONDS = 3600  # timeout, connect_timeout
MAX_BYTES = 1024**3
MAX_ENTRIES_READ = 1_000_000  # max_entries
MAX_REQUESTS = 1000  # concurrency, per_host
MAX_JITTER = 86400
MAX_INTERVAL_DAYS = 365


@dataclass(frozen=True)
class FrontMatterDefaults:
    """Front-matter values every entry gets unless its feed overrides them."""

    lang: str = defaults.LANG
    summary_length: int = defaults.SUMMARY_LENGTH
    comments: bool = False
    authorbox: bool = False
    pager: bool = True
    toc: bool = False
    mathjax: bool = False
    sidebar: str = defaults.SIDEBAR
    widgets: tuple[str, ...] = defaults.WIDGETS


@dataclass(frozen=True)
class SiteConfig:
    title: str
    base_url: str
    timezone: str
    feeds_dir: Path
    output_dir: Path
    entries_per_feed: int
    formats: tuple[str, ...]
    hub: str | None


@dataclass(frozen=True)
class FetchConfig:
    timeout: float = defaults.FETCH_TIMEOUT
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    max_bytes: int = defaults.MAX_BYTES
    max_entries: int = defaults.MAX_ENTRIES_READ
    concurrency: int = defaults.CONCURRENCY
    per_host: int = defaults.PER_HOST
    allow_private_networks: bool = False
    user_agent: str | None = None


@dataclass(frozen=True)
class ScheduleConfig:
    interval: str | None = defaults.SCHEDULE_INTERVAL
    cron: str | None = None
    jitter: int = 0


@dataclass(frozen=True)
class FeedConfig:
    """One [[feeds]] table, with the [defaults] already merged in."""

    name: str
    url: str
    lang: str | None
    tags: tuple[str, ...]
    front: FrontMatterDefaults
    interval: str | None = None
    cron: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    entry_categories: bool = False
    local_path: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.local_path is not None


@dataclass(frozen=True)
class Config:
    path: Path
    site: SiteConfig
    defaults: FrontMatterDefaults
    fetch: FetchConfig
    schedule: ScheduleConfig
    feeds: tuple[FeedConfig, ...] = field(default_factory=tuple)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def state_path(self) -> Path:
        return self.root / defaults.STATE_DB_NAME

    @property
    def lock_path(self) -> Path:
        return self.root / defaults.LOCK_NAME

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.feeds if f.name == name), None)


def interval_seconds(text: str) -> int:
    """`"30s"`, `"15m"`, `"2h"`, `"1d"` as seconds, up to MAX_INTERVAL_DAYS; else ValueError."""
    match = INTERVAL_RE.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(text)
    seconds = int(match.group(1)) * INTERVAL_UNITS[match.group(2)]
    if seconds > MAX_INTERVAL_DAYS * INTERVAL_UNITS["d"]:
        raise ValueError(text)
    return seconds


T = TypeVar("T")


class _Table:
    """Reads typed keys out of one TOML table, rejecting unknown keys and wrong types."""

    def __init__(self, loader: _Loader, data: Any, prefix: str) -> None:
        self.loader = loader
        self.prefix = prefix
        if not isinstance(data, dict):
            raise loader.error(prefix, "a table")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def _get(self, key: str, check: Callable[[Any], bool], expected: str, default: T) -> T:
        self.seen.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not check(value):
            raise self.loader.error(f"{self.prefix}.{key}", f"expected {expected}, got {value!r}")
        return value  # type: ignore[no-any-return]

    def text(self, key: str, default: T) -> str | T:
        return self._get(
            key, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", default
        )

    def flag(self, key: str, default: bool) -> bool:
        return self._get(key, lambda v: isinstance(v, bool), "true or false", default)

    def whole(self, key: str, default: int, maximum: int, minimum: int = 1) -> int:
        return self._get(
            key,
            lambda v: isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= maximum,
            f"a whole number from {minimum} to {maximum}",
            default,
        )

    def number(self, key: str, default: float, maximum: float) -> float:
        value = self._get(
            key,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= maximum,
            f"a positive number up to {maximum}",
            default,
        )
        return float(value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(
            key,
            lambda v: isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v),
            "a list of non-empty strings",
            list(default),
        )
        return tuple(value)

    def tags(self, key: str) -> tuple[str, ...]:
        value: list[str] = self._get(
            key,
            lambda v: isinstance(v, list) and all(isinstance(x, str) and usable_tag(x) for x in v),
            f"a list of tags, each with {TAG_RULE}",
            [],
        )
        return tuple(value)

    def interval(self, key: str, default: str | None) -> str | None:
        value = self.text(key, default)
        if value is not None:
            try:
                interval_seconds(value)
            except ValueError:
                raise self.loader.error(
                    f"{self.prefix}.{key}",
                    f'expected an interval like "30s", "15m", "2h" or "1d", at most '
                    f'"{MAX_INTERVAL_DAYS}d", got {value!r}',
                ) from None
        return value

    def schedule(self, default_interval: str | None) -> tuple[str | None, str | None]:
        """The table's `interval` and `cron`, at most one of them (`default_interval` when it
        sets neither)."""
        cron = self.cron("cron")
        if cron is not None and "interval" in self.data:
            raise self.loader.error(
                f"{self.prefix}.interval", "either interval or cron, not both (cron is set too)"
            )
        return self.interval("interval", None if cron else default_interval), cron

    def cron(self, key: str) -> str | None:
        value = self.text(key, None)
        if value is not None:
            from aggregator.schedule import make_trigger  # the daemon's own reading of it

            try:
                make_trigger("cron", value, 0)
            except ValueError as exc:
                raise self.loader.error(
                    f"{self.prefix}.{key}", f"expected a 5-field crontab expression ({exc})"
                ) from None
        return value

    def regexes(self, key: str) -> tuple[str, ...]:
        patterns = self.strings(key, ())
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.loader.error(
                    f"{self.prefix}.{key}", f"expected regular expressions, {pattern!r}: {exc}"
                ) from None
        return patterns

    def done(self) -> None:
        for key in self.data:
            if key not in self.seen:
                raise self.loader.error(f"{self.prefix}.{key}", "unknown key")


class _Loader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, key: str, expected: str) -> ConfigError:
        return ConfigError(str(self.path), key, expected, self.line_of(key))

    def line_of(self, key: str) -> int | None:
        """Best-effort line number of a dotted key (`site.title`, `feeds[2] (name).url`): the
        line assigning it within its table, else that table's header (a missing key), else
        the first line assigning its last part."""
        last = key.rsplit(".", 1)[-1].split("[")[0]
        assigns = re.compile(rf"^\s*{re.escape(last)}\s*=|^\s*\[+\s*{re.escape(last)}\s*\]+")
        place = _TABLE_KEY.match(key)
        if place and (section := self._section(place["table"], place["index"])):
            header, end = section
            found = next(
                (n for n in range(header + 1, end) if assigns.match(self.lines[n - 1])), None
            )
            return found or header
        return next((n for n, line in enumerate(self.lines, 1) if assigns.match(line)), None)

    def _section(self, table: str, index: str | None) -> tuple[int, int] | None:
        """The header line of `[table]` (or of the index-th `[[table]]`) and the line after its
        last one."""
        count, header = -1, None
        for number, line in enumerate(self.lines, 1):
            opened = _HEADER.match(line)
            if not opened:
                continue
            if header is not None:
                return header, number
            if opened["name"] == table:
                count += 1
                if index is None or count == int(index):
                    header = number
        return (header, len(self.lines) + 1) if header is not None else None


# a key as errors name it, `table.key` or `table[index] (name).key`
_TABLE_KEY = re.compile(r"(?P<table>[a-z_]+)(?:\[(?P<index>\d+)\])?(?: \(.*\))?\.[a-z_]+$")
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<name>[A-Za-z0-9_.-]+)\s*\]")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError on any mistake."""
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"a readable config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "(file)", "UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(str(path), "(syntax)", f"valid TOML ({exc})", line) from None
    return parse_config(data, path, text)


def parse_config(data: dict[str, Any], path: Path, text: str = "") -> Config:
    loader = _Loader(path, text)
    root = path.parent
    top = _Table(loader, data, "")
    top.prefix = ""
    for key in ("site", "defaults", "fetch", "schedule", "feeds"):
        top.seen.add(key)
    for key in data:
        if key not in top.seen:
            raise loader.error(
                key, "unknown table (expected site, defaults, fetch, schedule, feeds)"
            )

    site_t = _Table(loader, data.get("site", {}), "site")
    timezone = site_t.text("timezone", defaults.SITE_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise loader.error(
            "site.timezone", f'an IANA time zone like "Asia/Shanghai", got {timezone!r}'
        ) from None
    base_url = site_t.text("base_url", defaults.SITE_BASE_URL)
    if not re.match(r"^https?://[^/\s]+", base_url) or not _port_valid(base_url):
        raise loader.error("site.base_url", f"an absolute http(s) URL, got {base_url!r}")
    formats = site_t.strings("formats", ("atom",))
    for fmt in formats:
        if fmt not in FORMATS:
            raise loader.error("site.formats", f"a list drawn from {list(FORMATS)}, got {fmt!r}")
    hub = site_t.text("hub", None)
    if hub is not None and not re.match(r"^https?://[^/\s]+", hub):
        raise loader.error("site.hub", f"an absolute http(s) URL of a WebSub hub, got {hub!r}")
    site = SiteConfig(
        title=site_t.text("title", defaults.SITE_TITLE),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timezone=timezone,
        feeds_dir=root / site_t.text("feeds_dir", defaults.FEEDS_DIR),
        output_dir=root / site_t.text("output_dir", defaults.OUTPUT_DIR),
        entries_per_feed=site_t.whole("entries_per_feed", defaults.ENTRIES_PER_FEED, MAX_ENTRIES),
        formats=formats,
        hub=hub,
    )
    site_t.done()

    defaults_t = _Table(loader, data.get("defaults", {}), "defaults")
    base = FrontMatterDefaults()
    front = _front_matter(defaults_t, base, defaults_t.text("lang", base.lang))
    defaults_t.done()

    fetch_t = _Table(loader, data.get("fetch", {}), "fetch")
    fetch = FetchConfig(
        timeout=fetch_t.number("timeout", defaults.FETCH_TIMEOUT, MAX_SECONDS),
        connect_timeout=fetch_t.number("connect_timeout", defaults.CONNECT_TIMEOUT, MAX_SECONDS),
        max_bytes=fetch_t.whole("max_bytes", defaults.MAX_BYTES, MAX_BYTES),
        max_entries=fetch_t.whole("max_entries", defaults.MAX_ENTRIES_READ, MAX_ENTRIES_READ),
        concurrency=fetch_t.whole("concurrency", defaults.CONCURRENCY, MAX_REQUESTS),
        per_host=fetch_t.whole("per_host", defaults.PER_HOST, MAX_REQUESTS),
        allow_private_networks=fetch_t.flag("allow_private_networks", False),
        user_agent=_user_agent(loader, fetch_t.text("user_agent", None)),
    )
    fetch_t.done()

    schedule_t = _Table(loader, data.get("schedule", {}), "schedule")
    interval, cron = schedule_t.schedule(defaults.SCHEDULE_INTERVAL)
    schedule = ScheduleConfig(
        interval=interval,
        cron=cron,
        jitter=schedule_t.whole("jitter", 0, MAX_JITTER, minimum=0),
    )
    schedule_t.done()

    raw_feeds = data.get("feeds", [])
    if not isinstance(raw_feeds, list):
        raise loader.error("feeds", "an array of tables written [[feeds]]")
    feeds: list[FeedConfig] = []
    folders: dict[str, str] = {}  # feeds/ folder (the name's slug) ⇒ the name
    for index, raw in enumerate(raw_feeds):
        feeds.append(_feed(loader, raw, index, front, root, folders))
    return Config(
        path=path, site=site, defaults=front, fetch=fetch, schedule=schedule, feeds=tuple(feeds)
    )


def _user_agent(loader: _Loader, value: str | None) -> str | None:
    """A User-Agent that can be sent as a header value: printable ASCII, no space at either end."""
    if value is not None and not (
        value.isascii() and value.isprintable() and value == value.strip()
    ):
        raise loader.error(
            "fetch.user_agent",
            f"printable ASCII without spaces at either end (a header value), got {value!r}",
        )
    return value


def _port_valid(url: str) -> bool:
    """Whether the URL's port, if any, is a number from 0 to MAX_PORT."""
    try:
        port = urlsplit(url).port  # raises ValueError when it is not
    except ValueError:
        return False
    return port is None or 0 <= port <= defaults.MAX_PORT


def _front_matter(table: _Table, base: FrontMatterDefaults, lang: str) -> FrontMatterDefaults:
    return FrontMatterDefaults(
        lang=lang,
        summary_length=table.whole("summary_length", base.summary_length, MAX_ENTRIES),
        comments=table.flag("comments", base.comments),
        authorbox=table.flag("authorbox", base.authorbox),
        pager=table.flag("pager", base.pager),
        toc=table.flag("toc", base.toc),
        mathjax=table.flag("mathjax", base.mathjax),
        sidebar=table.text("sidebar", base.sidebar),
        widgets=table.strings("widgets", base.widgets),
    )


def _feed(
    loader: _Loader,
    raw: Any,
    index: int,
    front: FrontMatterDefaults,
    root: Path,
    folders: dict[str, str],
) -> FeedConfig:
    table = _Table(loader, raw, f"feeds[{index}]")
    name = table.text("name", None)
    if name is None:
        raise loader.error(f"feeds[{index}].name", "a name for this feed (missing)")
    if not usable_tag(name):
        raise loader.error(
            f"feeds[{index}].name",
            f"a name with {TAG_RULE} (it is the entries' first category and tag), got {name!r}",
        )
    table.prefix = f"feeds[{index}] ({name})"
    folder = slug(name)
    if folder in folders:
        other = folders[folder]
        raise loader.error(
            f"feeds[{index}].name",
            f"a unique name; {name!r} is used twice"
            if other == name
            else f"a name of its own folder; {other!r} and {name!r} both write to feeds/{folder}/",
        )
    folders[folder] = name
    url = table.text("url", None)
    if url is None:
        raise loader.error(f"{table.prefix}.url", "an http(s) URL or a local path (missing)")
    local_path: Path | None = None
    if "://" in url:
        if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
            raise loader.error(
                f"{table.prefix}.url", f"an http(s) URL or a local path, got {url!r}"
            )
    else:
        local_path = (root / url).resolve()
    lang = table.text("lang", None)
    interval, cron = table.schedule(None)
    feed = FeedConfig(
        name=name,
        url=url,
        lang=lang,
        tags=table.tags("tags"),
        front=_front_matter(table, front, front.lang),
        interval=interval,
        cron=cron,
        include=table.regexes("include"),
        exclude=table.regexes("exclude"),
        entry_categories=table.flag("entry_categories", False),
        local_path=local_path,
    )
    table.done()
    return feed
