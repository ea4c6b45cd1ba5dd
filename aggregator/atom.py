"""Atom 1.0 (RFC 4287) documents: feedgen's FeedGenerator makes the head of the feed, and each
`<entry>` is written directly as the text lxml gives for what feedgen's FeedEntry makes
(tests/feedgen_entry.py, the reference), once per item and publish, whatever the number of feeds
that carry it: in a fraction of the time of building, copying and serializing elements. It says
what feedgen cannot: the `<source>`'s id, self link and updated, type="html" for text that looks
like markup, `updated` with its nanosecond tie-breaker, RFC 3339 `Z` times and an entry's own
xml:lang. The bytes are deterministic: every time in the document is set from the items, never
from the clock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeAlias

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.feeditems import Item, escape_text, rfc3339, urn

ATOM_TYPE = "application/atom+xml"
# lxml writes its declaration with single quotes; feeds carry the usual double-quoted one.
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# Text that a validator may read as undeclared markup in a type="text" construct: a tag, or an
# ampersand before a word (it takes `&copy 2026` for an entity even without the semicolon).
_LOOKS_LIKE_HTML = re.compile(r"</?[A-Za-z][^<>]*>|&#?\w")

Element: TypeAlias = Any  # an lxml element (lxml ships no type information)
_FEED_END = b"</feed>\n"
_ENTRY_START = "  <entry>"


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


def _text_construct(element: Element, text: str) -> None:
    """A title feedgen wrote as plain text: text that looks like markup is sent as escaped HTML
    instead (what _text() writes), so that it reads back as the same characters and is never
    taken for undeclared HTML."""
    if _LOOKS_LIKE_HTML.search(text):
        element.set("type", "html")
        element.text = escape_text(text)


@lru_cache(maxsize=4096)
def _source_id(name: str) -> str:
    return urn("source", name)


def entry_xml(item: Item) -> str:
    """The `<entry>` of one item (without xml:lang, which depends on the feed) as lxml writes
    feedgen's FeedEntry, completed, at the depth of a feed's entries; a test holds the two equal
    (tests/feedgen_entry.py). Used through `Item.atom_entry`, written once per item."""
    lines = [
        _ENTRY_START,
        f"    <id>{_escape(item.atom_id)}</id>",
        _text("    ", "title", item.title),
        f"    <updated>{item.updated_text}</updated>",
    ]
    for name in item.authors:
        lines += ["    <author>", f"      <name>{_escape(name)}</name>", "    </author>"]
    lines.append(f'    <content type="html">{_carriage_returns(item.html_escaped)}</content>')
    if item.link:
        lines.append(f'    <link href="{_attr(item.link)}" rel="alternate" type="text/html"/>')
    if item.summary:
        lines.append(_text("    ", "summary", item.summary))
    lines += [f'    <category term="{_attr(term)}"/>' for term in item.tags]
    if item.published is not None:
        lines.append(f"    <published>{rfc3339(item.published)}</published>")
    source = item.source
    lines += ["    <source>", f"      <id>{_source_id(source.name)}</id>"]
    lines.append(_text("      ", "title", source.title))
    if source.feed_url:
        lines.append(f'      <link rel="self" href="{_attr(source.feed_url)}"/>')
    if source.site_url:
        lines.append(
            f'      <link href="{_attr(source.site_url)}" rel="alternate" type="text/html"/>'
        )
    lines += [f"      <updated>{item.updated_text}</updated>", "    </source>", "  </entry>", ""]
    return "\n".join(lines)


def _text(indent: str, tag: str, text: str) -> str:
    """A text construct, sent as escaped HTML when it looks like markup (see _text_construct)."""
    if ("<" in text or "&" in text) and _LOOKS_LIKE_HTML.search(text):
        return f'{indent}<{tag} type="html">{_escape(escape_text(text))}</{tag}>'
    return f"{indent}<{tag}>{_escape(text)}</{tag}>"


def _escape(text: str) -> str:
    """Text as libxml2 writes it: `escape_text()`, and a carriage return as a reference."""
    return _carriage_returns(escape_text(text))


def _carriage_returns(escaped: str) -> str:
    """Escaped text with each carriage return as a reference, as libxml2 writes it."""
    return escaped.replace("\r", "&#13;") if "\r" in escaped else escaped


def _attr(value: str) -> str:
    """An attribute value as libxml2 writes it: what _escape() does, and a quote, a newline or a
    tab as a reference (the characters XML forbids are never there: every text of an item went
    through clean_text())."""
    value = _escape(value)
    if '"' in value or "\n" in value or "\t" in value:
        value = value.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    return value


def atom_entry(item: Item, feed_lang: str | None) -> str:
    """The item's `<entry>` for a feed whose xml:lang is `feed_lang`."""
    if item.lang and item.lang != feed_lang:
        return (
            f'{_ENTRY_START[:-1]} xml:lang="{_attr(item.lang)}">'
            + item.atom_entry[len(_ENTRY_START) :]
        )
    return item.atom_entry


def atom_feed(meta: FeedMeta, entries: Sequence[str]) -> bytes:
    """The feed document around `<entry>` texts from `atom_entry`."""
    fg = FeedGenerator()
    fg.id(meta.feed_id)
    fg.title(meta.title)
    fg.updated(datetime.strptime(meta.updated_text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC))
    fg.link(href=meta.self_url, rel="self", type=ATOM_TYPE)
    fg.link(href=meta.site_url, rel="alternate", type="text/html")
    if meta.hub:
        fg.link(href=meta.hub, rel="hub")
    fg.author({"name": meta.site_title, "uri": meta.site_url})
    fg.generator("aggregator", version=__version__)
    if meta.lang:
        fg.language(meta.lang)
    feed, _ = fg._create_atom(extensions=False)
    _text_construct(feed.find("title"), meta.title)
    feed.find("updated").text = meta.updated_text
    head: bytes = etree.tostring(feed, encoding="utf-8", pretty_print=True)
    assert head.endswith(_FEED_END)
    body = "".join(entries).encode("utf-8")
    return b"".join((XML_DECLARATION, head[: -len(_FEED_END)], body, _FEED_END))
