"""The reference that aggregator.atom's `entry_xml` is held to: an item's `<entry>` as
feedgen's FeedEntry writes it, completed with what feedgen cannot say (the `<source>`'s id, self
link and updated, type="html" for text that looks like markup, RFC 3339 times)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from feedgen.entry import FeedEntry
from lxml import etree

from aggregator.atom import Element, _source_id, _text_construct
from aggregator.feeditems import Item, SourceInfo, rfc3339


def _moment(stamp: float) -> datetime:
    """A whole-second UTC datetime, which is what feedgen takes."""
    return datetime.fromtimestamp(math.floor(stamp), UTC)


def feedgen_entry(item: Item) -> Element:
    """The `<entry>` of one item as feedgen's FeedEntry writes it, completed with what it cannot
    say."""
    entry = FeedEntry()
    entry.id(item.atom_id)
    entry.title(item.title)
    if item.link:
        entry.link(href=item.link, rel="alternate", type="text/html")
    if item.published is not None:
        entry.published(_moment(item.published))
    entry.updated(_moment(item.updated))
    if item.authors:
        entry.author([{"name": name} for name in item.authors])
    if item.tags:
        entry.category([{"term": term} for term in item.tags])
    if item.summary:
        entry.summary(item.summary)
    entry.content(item.html, type="html")
    entry.source(url=item.source.site_url or "", title=item.source.title)
    element = entry.atom_entry(extensions=False)
    children = {child.tag: child for child in element}  # one of each but author, category
    _text_construct(children["title"], item.title)
    if item.link:  # feedgen 1.0 drops an entry link's rel and type (FeedEntry.atom_entry)
        children["link"].set("rel", "alternate")
        children["link"].set("type", "text/html")
    children["updated"].text = item.updated_text
    if item.published is not None:
        children["published"].text = rfc3339(item.published)
    if item.summary:
        _text_construct(children["summary"], item.summary)
    _complete_source(children["source"], item.source, item.updated_text)
    return element


def _complete_source(source: Element, info: SourceInfo, updated_text: str) -> None:
    """feedgen writes `<source>` with a title and one link only: add the id, the rel=self link
    to the source's feed and `updated`, which RFC 4287 asks of a source."""
    title = source[0]  # feedgen writes the title, then the link to the site if there is one
    if len(source) > 1:
        source[1].set("rel", "alternate")
        source[1].set("type", "text/html")
    _text_construct(title, info.title)
    # Made in place and moved (a parentless element would cost a document of its own).
    ident = etree.SubElement(source, "id")
    ident.text = _source_id(info.name)
    source.insert(0, ident)
    if info.feed_url:
        title.addnext(etree.SubElement(source, "link", rel="self", href=info.feed_url))
    etree.SubElement(source, "updated").text = updated_text
