"""Regenerate the published Atom feeds in output/ (feedgen): one per tag plus one of all."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nh3
from feedgen.feed import FeedGenerator
from markdown_it import MarkdownIt

from aggregator import __version__
from aggregator.atomic import write_if_changed
from aggregator.config import Config
from aggregator.frontmatter import read
from aggregator.identity import slug
from aggregator.state import State, StoredEntry
from aggregator.text import drop_controls

ALL_FEED = "all.xml"
TAGS_DIR = "tags"
_ID_NAMESPACE = uuid.UUID("6f1c7e0e-4d0b-4c36-9a52-3a8f1d2b9e10")
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


@dataclass
class PublishResult:
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0


def feed_path(tag: str | None) -> str:
    """Where a feed is published, relative to output/ and to `[site] base_url`."""
    return ALL_FEED if tag is None else f"{TAGS_DIR}/{slug(tag, 'tag')}.xml"


def atom_id(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{kind}:{key}')}"


def render_html(markdown_text: str) -> str:
    return nh3.clean(_MARKDOWN.render(markdown_text), link_rel=None)


def _entry_html(config: Config, entry: StoredEntry) -> str:
    try:
        text = (config.site.feeds_dir / entry.path).read_text(encoding="utf-8")
        _, body = read(text)
    except (OSError, ValueError):
        return ""
    return drop_controls(render_html(body))


def build_feed(config: Config, tag: str | None, entries: list[StoredEntry]) -> bytes:
    site = config.site
    fg = FeedGenerator()
    fg.id(atom_id("feed", tag or ""))
    fg.title(f"{site.title} — {tag}" if tag else site.title)
    fg.link(href=site.base_url + feed_path(tag), rel="self", type="application/atom+xml")
    fg.link(href=site.base_url, rel="alternate", type="text/html")
    fg.author({"name": site.title})
    fg.generator("aggregator", version=__version__)
    newest = max((e.updated for e in entries), default=0.0)
    fg.updated(datetime.fromtimestamp(newest, UTC))
    langs = {e.lang for e in entries}
    if len(langs) == 1:
        fg.language(langs.pop())
    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.id(atom_id("entry", entry.id))
        fe.title(drop_controls(entry.title))
        if entry.link:
            fe.link(href=entry.link, rel="alternate", type="text/html")
        fe.published(datetime.fromtimestamp(entry.date, UTC))
        fe.updated(datetime.fromtimestamp(max(entry.updated, entry.date), UTC))
        for author in entry.authors:
            fe.author({"name": drop_controls(author)})
        for entry_tag in entry.tags:
            fe.category(term=entry_tag)
        if entry.summary:
            fe.summary(drop_controls(entry.summary))
        html = _entry_html(config, entry)
        if html:
            fe.content(html, type="html")
    return bytes(fg.atom_str(pretty=True))


def publish(config: Config, state: State, tags: Iterable[str] | None = None) -> PublishResult:
    """Regenerate the feed of every tag in `tags` (every tag when None) and the all-entries feed;
    a feed whose bytes did not change is not rewritten."""
    wanted: list[str | None] = [None]
    wanted.extend(sorted(state.tags() if tags is None else set(tags)))
    result = PublishResult()
    limit = config.site.entries_per_feed
    for tag in wanted:
        entries = state.newest(tag, limit)
        if not entries and tag is not None:
            continue
        target = config.site.output_dir / feed_path(tag)
        if write_if_changed(target, build_feed(config, tag, entries)):
            result.written.append(target)
        else:
            result.unchanged += 1
    return result
