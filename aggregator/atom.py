"""Atom 1.0 (RFC 4287) serialization: one `<entry>` fragment per item, reused by every feed that
carries it, and the feed document around them. Written by hand rather than through an XML
library so that the bytes are deterministic and a feed of fifty entries costs one join."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from aggregator import __version__
from aggregator.feeditems import Item, SourceInfo, escape_attr, escape_text, rfc3339, urn

ATOM_TYPE = "application/atom+xml"
# Text that a validator may read as undeclared markup in a type="text" construct: a tag, or an
# ampersand before a word (it takes `&copy 2026` for an entity even without the semicolon).
_LOOKS_LIKE_HTML = re.compile(r"</?[A-Za-z][^<>]*>|&#?\w")


@dataclass(frozen=True)
class FeedMeta:
    """Everything about one published feed except its entries."""

    feed_id: str
    title: str
    self_url: str
    site_url: str
    site_title: str
    hub: str | None
    lang: str | None
    updated_text: str


def text_construct(name: str, text: str) -> str:
    """A title or summary; text that looks like markup is sent as escaped HTML so that it reads
    back as the same characters and is never taken for undeclared HTML."""
    if _LOOKS_LIKE_HTML.search(text):
        return f'<{name} type="html">{escape_text(escape_text(text))}</{name}>'
    return f"<{name}>{escape_text(text)}</{name}>"


@lru_cache(maxsize=4096)
def _source_head(source: SourceInfo) -> str:
    """The `<source>` element up to its `<updated>`, the same for every entry of a source."""
    lines = [
        "    <source>",
        f"      <id>{urn('source', source.name)}</id>",
        f"      {text_construct('title', source.title)}",
    ]
    if source.feed_url:
        lines.append(f'      <link rel="self" href="{escape_attr(source.feed_url)}"/>')
    if source.site_url:
        lines.append(
            f'      <link rel="alternate" type="text/html" href="{escape_attr(source.site_url)}"/>'
        )
    return "\n".join(lines)


def _source(source: SourceInfo, updated_text: str) -> str:
    return f"{_source_head(source)}\n      <updated>{updated_text}</updated>\n    </source>"


def atom_entry(item: Item, feed_lang: str | None) -> str:
    """The `<entry>` element of one item, indented for a feed whose xml:lang is `feed_lang`."""
    lang = f' xml:lang="{item.lang}"' if item.lang and item.lang != feed_lang else ""
    lines = [
        f"  <entry{lang}>",
        f"    <id>{item.atom_id}</id>",
        f"    {text_construct('title', item.title)}",
    ]
    if item.link:
        href = escape_attr(item.link)
        lines.append(f'    <link rel="alternate" type="text/html" href="{href}"/>')
    if item.published is not None:
        lines.append(f"    <published>{rfc3339(item.published)}</published>")
    lines.append(f"    <updated>{item.updated_text}</updated>")
    lines.extend(f"    <author><name>{escape_text(a)}</name></author>" for a in item.authors)
    lines.extend(f'    <category term="{escape_attr(t)}"/>' for t in item.tags)
    if item.summary:
        lines.append(f"    {text_construct('summary', item.summary)}")
    lines.append(f'    <content type="html">{item.html_escaped}</content>')
    lines.append(_source(item.source, item.updated_text))
    lines.append("  </entry>")
    return "\n".join(lines)


def atom_feed(meta: FeedMeta, entries: Sequence[str]) -> bytes:
    """The feed document around already rendered `<entry>` fragments."""
    lang = f' xml:lang="{meta.lang}"' if meta.lang else ""
    head = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom"{lang}>',
        f"  <id>{meta.feed_id}</id>",
        f"  {text_construct('title', meta.title)}",
        f"  <updated>{meta.updated_text}</updated>",
        f'  <link rel="self" type="{ATOM_TYPE}" href="{escape_attr(meta.self_url)}"/>',
        f'  <link rel="alternate" type="text/html" href="{escape_attr(meta.site_url)}"/>',
    ]
    if meta.hub:
        head.append(f'  <link rel="hub" href="{escape_attr(meta.hub)}"/>')
    head.append(
        f"  <author><name>{escape_text(meta.site_title)}</name>"
        f"<uri>{escape_text(meta.site_url)}</uri></author>"
    )
    head.append(f'  <generator version="{__version__}">aggregator</generator>')
    return "\n".join([*head, *entries, "</feed>", ""]).encode("utf-8")
