"""Plain frozen data passed between the stages: fetched bytes, parsed feeds, converted posts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Fetched:
    """The outcome of fetching one feed: a body to parse, or a reason there is none.
    `moved_to` is where permanent redirects led; `fresh_for` the seconds the server's cache
    headers say the answer stays fresh."""

    feed: str
    body: bytes | None = None
    url: str = ""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    moved_to: str | None = None
    fresh_for: float | None = None


@dataclass(frozen=True)
class EntryData:
    """One entry as the feed gave it, before any conversion."""

    guid: str | None
    link: str | None
    title: str
    content_html: str
    published: datetime | None
    updated: datetime | None
    base_url: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    language: str | None = None
    title_html: bool = False
    enclosures: tuple[str, ...] = ()  # URLs of media that is not an image (a podcast's audio)


@dataclass(frozen=True)
class FeedData:
    """A parsed feed: its own metadata and its entries."""

    title: str
    link: str | None
    language: str | None
    entries: tuple[EntryData, ...]
    ttl_minutes: int | None = None
    cut_off: bool = False  # the document ended before it was complete (only whole entries kept)
    url: str | None = None  # the http(s) URL it was fetched from, after redirects


@dataclass(frozen=True)
class Post:
    """One converted entry: the Markdown file to write and the facts publishing needs."""

    source: str
    entry_id: str
    identity: str
    link_key: str | None
    title: str
    link: str
    date: datetime
    summary: str
    lang: str
    tags: tuple[str, ...]
    authors: tuple[str, ...]
    text: str = field(repr=False)
    html: str = field(default="", repr=False)
    alias: str | None = None  # without a guid: its link, title and date (entry_alias)
