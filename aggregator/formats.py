"""The other published formats beside Atom, from the same items: RSS 2.0 and JSON Feed 1.1."""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any

from aggregator import __version__
from aggregator.atom import FeedMeta
from aggregator.feeditems import Item, escape_attr, escape_text, rfc3339

RSS_TYPE = "application/rss+xml"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def _rss_item(item: Item) -> str:
    lines = ["    <item>", f"      <title>{escape_text(item.title)}</title>"]
    if item.link:
        lines.append(f"      <link>{escape_text(item.link)}</link>")
    lines.append(f"      <description>{item.html_escaped}</description>")
    lines.extend(f"      <dc:creator>{escape_text(a)}</dc:creator>" for a in item.authors)
    lines.extend(f"      <category>{escape_text(t)}</category>" for t in item.tags)
    lines.append(f'      <guid isPermaLink="false">{item.atom_id}</guid>')
    if item.published is not None:
        lines.append(f"      <pubDate>{formatdate(item.published, usegmt=True)}</pubDate>")
    if item.source.feed_url:
        lines.append(
            f'      <source url="{escape_attr(item.source.feed_url)}">'
            f"{escape_text(item.source.title)}</source>"
        )
    lines.append("    </item>")
    return "\n".join(lines)


def rss_feed(meta: FeedMeta, items: Sequence[Item], updated: float) -> bytes:
    """An RSS 2.0 channel with an atom:link to itself (and to the hub), as validators ask."""
    head = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "  <channel>",
        f"    <title>{escape_text(meta.title)}</title>",
        f"    <link>{escape_text(meta.site_url)}</link>",
        f"    <description>{escape_text(meta.title)}</description>",
    ]
    if meta.lang:
        head.append(f"    <language>{meta.lang}</language>")
    head.append(f"    <lastBuildDate>{formatdate(updated, usegmt=True)}</lastBuildDate>")
    head.append(f"    <generator>aggregator {__version__}</generator>")
    head.append(
        f'    <atom:link rel="self" type="{RSS_TYPE}" href="{escape_attr(meta.self_url)}"/>'
    )
    if meta.hub:
        head.append(f'    <atom:link rel="hub" href="{escape_attr(meta.hub)}"/>')
    body = [_rss_item(item) for item in items]
    return "\n".join([*head, *body, "  </channel>", "</rss>", ""]).encode("utf-8")


def _json_item(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.atom_id}
    if item.link:
        out["url"] = item.link
    out["title"] = item.title
    out["content_html"] = item.html
    if item.summary:
        out["summary"] = item.summary
    if item.published is not None:
        out["date_published"] = rfc3339(item.published)
    out["date_modified"] = item.updated_text
    if item.authors:
        out["authors"] = [{"name": a} for a in item.authors]
    if item.tags:
        out["tags"] = list(item.tags)
    if item.lang:
        out["language"] = item.lang
    return out


def json_feed(meta: FeedMeta, items: Sequence[Item]) -> bytes:
    """A JSON Feed 1.1 document."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.site_url,
        "feed_url": meta.self_url,
        "authors": [{"name": meta.site_title, "url": meta.site_url}],
    }
    if meta.lang:
        feed["language"] = meta.lang
    if meta.hub:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub}]
    feed["items"] = [_json_item(item) for item in items]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
