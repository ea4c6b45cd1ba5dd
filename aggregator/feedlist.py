"""The feed list as operators change it: names for new feeds, duplicates, and the mapping
between config feeds and OPML outlines (folder names and categories become tags)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.config_edit import NewFeed
from aggregator.identity import canonical_link, slug, usable_tag
from aggregator.opml import Outline
from aggregator.text import fold

NAME_LENGTH = 60


def url_key(url: str) -> str:
    """What makes two feed URLs the same subscription."""
    return canonical_link(url) or url.strip()


def name_from_title(title: str, url: str) -> str:
    """A short name for a feed: the title itself (folded) when it is non-Latin text that can be
    a tag, else a slug of it, else the URL's host."""
    title = fold(title)[:NAME_LENGTH].strip()
    if title and not title.isascii() and usable_tag(title):
        return title
    if title:
        return slug(title)
    host = urlsplit(url).hostname or ""
    return slug(host.removeprefix("www."), "feed")


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, else `wanted-2`, `-3`…: a name whose feeds/ folder no taken name has."""
    folders = {slug(name) for name in taken}
    name, number = wanted, 2
    while slug(name) in folders:
        name, number = f"{wanted}-{number}", number + 1
    taken.add(name)
    return name


def name_taken(name: str, taken: set[str]) -> str | None:
    """The taken name whose feeds/ folder `name` would share, if any."""
    return next((other for other in taken if slug(other) == slug(name)), None)


@dataclass
class Import:
    """What an OPML import adds, and what it leaves out with the reason: feeds, and folder or
    category names that cannot be tags (see usable_tag())."""

    feeds: list[NewFeed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    tags_left_out: list[str] = field(default_factory=list)


def from_outlines(config: Config, outlines: Iterable[Outline]) -> Import:
    """New feeds for the outlines whose URL the config does not have yet."""
    result = Import()
    known = {url_key(f.url): f.name for f in config.feeds}
    names = {f.name for f in config.feeds}
    for outline in outlines:
        key = url_key(outline.xml_url)
        if key in known:
            result.skipped.append(f"{outline.xml_url}: already in the config as {known[key]!r}")
            continue
        if not re.match(r"^https?://[^/\s]+", outline.xml_url, re.IGNORECASE):
            result.skipped.append(f"{outline.xml_url}: not an http(s) URL")
            continue
        name = unique_name(name_from_title(outline.title, outline.xml_url), names)
        known[key] = name
        tags = dict.fromkeys((*outline.folders, *outline.categories))
        tags.pop(name, None)
        for tag in [t for t in tags if not usable_tag(t)]:
            del tags[tag]
            result.tags_left_out.append(f"{outline.xml_url}: {tag!r} cannot be a tag")
        result.feeds.append(NewFeed(name, outline.xml_url, tuple(tags), outline.language))
    return result


def to_outlines(config: Config) -> list[Outline]:
    """One outline per feed, in the folder of its first tag, with all its tags as categories."""
    return [
        Outline(
            title=feed.name,
            xml_url=feed.url,
            folders=feed.tags[:1],
            categories=feed.tags,
            language=feed.lang,
        )
        for feed in config.feeds
    ]


def describe(feeds: Sequence[NewFeed]) -> list[str]:
    return [
        f"added {f.name}: {f.url}" + (f" [{', '.join(f.tags)}]" if f.tags else "") for f in feeds
    ]
