"""Atom 1.0 (RFC 4287) documents: feedgen's FeedGenerator makes the feed, and each `<entry>` (once
per item and publish, then copied into every feed that carries it) is built directly with lxml to
what feedgen's FeedEntry makes (tests/feedgen_entry.py, the reference), in a fifth of the time,
with what feedgen cannot say: the `<source>`'s id, self link and updated, type="html" for text that
looks like markup, `updated` with its nanosecond tie-breaker, RFC 3339 `Z` times and an entry's
own xml:lang. The bytes are deterministic: every time in the document is set from the items,
never from the clock."""

from __future__ import annotations

import copy
import re
import weakref
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
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# lxml writes its declaration with single quotes; feeds carry the usual double-quoted one.
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# Text that a validator may read as undeclared markup in a type="text" construct: a tag, or an
# ampersand before a word (it takes `&copy 2026` for an entity even without the semicolon).
_LOOKS_LIKE_HTML = re.compile(r"</?[A-Za-z][^<>]*>|&#?\w")

Element: TypeAlias = Any  # an lxml element (lxml ships no type information)

# Each item's `<entry>` as feedgen built it, for as long as the publish keeps the item.
_ENTRIES: weakref.WeakKeyDictionary[Item, Element] = weakref.WeakKeyDictionary()


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
    """A title or summary feedgen wrote as plain text: text that looks like markup is sent as
    escaped HTML instead, so that it reads back as the same characters and is never taken for
    undeclared HTML."""
    if _LOOKS_LIKE_HTML.search(text):
        element.set("type", "html")
        element.text = escape_text(text)


@lru_cache(maxsize=4096)
def _source_id(name: str) -> str:
    return urn("source", name)


def _entry_element(item: Item) -> Element:
    """The `<entry>` of one item, without xml:lang (that depends on the feed): element for
    element what feedgen's FeedEntry makes, built directly (FeedEntry takes five times as long,
    the most of a publish); a test holds the two equal (tests/feedgen_entry.py)."""
    sub = etree.SubElement
    entry = etree.Element("entry")
    sub(entry, "id").text = item.atom_id
    _text_element(entry, "title", item.title)
    sub(entry, "updated").text = item.updated_text
    for name in item.authors:
        sub(sub(entry, "author"), "name").text = name
    content = sub(entry, "content")
    content.text = item.html
    content.set("type", "html")
    if item.link:
        sub(entry, "link", href=item.link, rel="alternate", type="text/html")
    if item.summary:
        _text_element(entry, "summary", item.summary)
    for term in item.tags:
        sub(entry, "category", term=term)
    if item.published is not None:
        sub(entry, "published").text = rfc3339(item.published)
    source = sub(entry, "source")
    sub(source, "id").text = _source_id(item.source.name)
    _text_element(source, "title", item.source.title)
    if item.source.feed_url:
        sub(source, "link", rel="self", href=item.source.feed_url)
    if item.source.site_url:
        sub(source, "link", href=item.source.site_url, rel="alternate", type="text/html")
    sub(source, "updated").text = item.updated_text
    return entry


def _text_element(parent: Element, tag: str, text: str) -> None:
    element = etree.SubElement(parent, tag)
    element.text = text
    _text_construct(element, text)


def atom_entry(item: Item, feed_lang: str | None) -> Element:
    """A copy of the item's `<entry>` for a feed whose xml:lang is `feed_lang`: the element is
    built once per publish, and each feed takes its own copy (an lxml element has one parent)."""
    template = _ENTRIES.get(item)
    if template is None:
        template = _ENTRIES[item] = _entry_element(item)
    entry = copy.deepcopy(template)
    if item.lang and item.lang != feed_lang:
        entry.set(XML_LANG, item.lang)
    return entry


def atom_feed(meta: FeedMeta, entries: Sequence[Element]) -> bytes:
    """The feed document around `<entry>` elements from `atom_entry`."""
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
    feed.extend(entries)
    body: bytes = etree.tostring(feed, encoding="utf-8", pretty_print=True)
    return XML_DECLARATION + body
