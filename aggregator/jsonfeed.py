"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org) read into the same FeedData as RSS and Atom;
every field is type-checked, so a hostile document yields a reason, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aggregator.errors import AggregatorError
from aggregator.models import EntryData, FeedData
from aggregator.text import drop_controls, plain_to_html

VERSION_PREFIX = "jsonfeed.org/version/1"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class JsonFeedError(AggregatorError):
    """The document is JSON but not a readable JSON Feed; the message says why."""


def looks_like_json(body: bytes, content_type: str = "") -> bool:
    """True for a body that opens with `{` (after a byte-order mark and white space), or that
    opens with neither `{` nor `<` and is served with a JSON media type."""
    head = body[:64]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    first = head.lstrip(b" \t\r\n\x00")[:1]
    if first in (b"{", b"<"):
        return first == b"{"
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/feed+json", "application/json") or media.endswith("+json")


def parse_json_feed(body: bytes) -> FeedData:
    """The feed and its items; JsonFeedError when it is not JSON or not a JSON Feed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise JsonFeedError(f"not a feed (invalid JSON: {str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise JsonFeedError("not a feed (JSON, but not a JSON Feed object)")
    version = data.get("version")
    if not isinstance(version, str) or VERSION_PREFIX not in version:
        raise JsonFeedError("not a feed (JSON without a jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise JsonFeedError("not a feed (JSON Feed without an items list)")
    feed_authors = _authors(data)
    entries = tuple(_item(item, feed_authors) for item in items if isinstance(item, dict))
    if not entries:
        raise JsonFeedError("feed has no entries")
    return FeedData(
        title=_text(data.get("title")),
        link=_text(data.get("home_page_url")) or None,
        language=_text(data.get("language")) or None,
        entries=entries,
    )


def _item(item: dict[str, Any], feed_authors: tuple[str, ...]) -> EntryData:
    html = _text(item.get("content_html"))
    if not html:
        html = plain_to_html(_text(item.get("content_text")) or _text(item.get("summary")))
    images = [_text(item.get("image")), _text(item.get("banner_image"))]
    attachments = item.get("attachments")
    media: list[str] = []
    for attachment in attachments if isinstance(attachments, list) else ():
        if not isinstance(attachment, dict):
            continue
        is_image = _text(attachment.get("mime_type")).lower().startswith("image/")
        (images if is_image else media).append(_text(attachment.get("url")))
    tags = item.get("tags")
    return EntryData(
        guid=_id(item.get("id")),
        link=_text(item.get("url")) or _text(item.get("external_url")) or None,
        title=_text(item.get("title")),
        content_html=html,
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
        authors=_authors(item) or feed_authors,
        categories=tuple(t for t in map(_text, tags) if t) if isinstance(tags, list) else (),
        images=tuple(i for i in images if i),
        language=_text(item.get("language")) or None,
        enclosures=tuple(dict.fromkeys(m for m in media if m)),
    )


def _text(value: Any) -> str:
    return drop_controls(value).strip() if isinstance(value, str) else ""


def _id(value: Any) -> str | None:
    """JSON Feed ids are strings, but 1.0 feeds in the wild use numbers: coerce those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return _text(value) or None


def _authors(obj: dict[str, Any]) -> tuple[str, ...]:
    """Names from 1.1's `authors` list, else 1.0's single `author` object."""
    found = obj.get("authors")
    people = found if isinstance(found, list) else [obj.get("author")]
    names = (_text(p.get("name")) for p in people if isinstance(p, dict))
    return tuple(n for n in names if n)


def _date(value: Any) -> datetime | None:
    """An RFC 3339 date (a missing zone read as UTC); None when absent or unreadable."""
    text = _text(value)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
