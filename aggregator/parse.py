"""Turn fetched bytes into FeedData with feedparser (always from bytes, never a URL)."""

from __future__ import annotations

import calendar
import io
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser
from lxml import etree

from aggregator import dates
from aggregator.authors import install_in_feedparser
from aggregator.defuse import UnsafeDocument, defuse
from aggregator.errors import ParseError
from aggregator.identity import without_credentials
from aggregator.jsonfeed import JsonFeedError, looks_like_json, parse_json_feed
from aggregator.markdown import plain_text
from aggregator.models import EntryData, FeedData
from aggregator.plainrss import read_plain_rss

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# feedparser writes an empty XHTML element as a pair: `<br></br>`, which HTML reads as two breaks
_VOID_END = re.compile(
    r"</(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)\s*>", re.I
)
# what expat says of a document that stops in a token or before its root element is closed
_CUT_OFF = ("no element found", "unclosed token")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg")
_ENTRY_END = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>")
# an `&` that starts no character or entity reference; with CDATA sections and comments, where
# it is text (one that does not close reads on to the end, so that each is read once)
_BARE_AMP = re.compile(rb"&(?!#[0-9]+;|#x[0-9a-fA-F]+;|[A-Za-z_:][\w.:-]*;)")
_BARE_AMP_IN_MARKUP = re.compile(
    rb"<!\[CDATA\[(?:.*?\]\]>|.*)|<!--(?:.*?-->|.*)|" + _BARE_AMP.pattern, re.DOTALL
)
_STRICT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

install_in_feedparser()
dates.install_in_feedparser()


def parse_feed(
    body: bytes, content_type: str = "", url: str = "", plain_rss: bool = True
) -> FeedData:
    """Parse RSS/Atom/JSON Feed bytes; raises ParseError for an empty body, a non-feed, or no
    entries. Plain RSS 2.0 is read with lxml to the same result (`plain_rss=False`: all by
    feedparser). The http(s) `url` the bytes came from is the base of the document's relative
    links (RFC 3986, 5.1.3): the feed's own link is resolved against it, and it is kept
    (without credentials, which must not reach the links made from it)."""
    feed = _parse(body, content_type, plain_rss)
    if not url.startswith(("http://", "https://")):  # a local file's path, or no URL
        return feed
    url = without_credentials(url)
    return replace(feed, link=_resolved(feed.link, url), url=url)


def _resolved(link: str | None, base: str) -> str | None:
    try:
        return urljoin(base, link) if link and not urlsplit(link).scheme else link
    except ValueError:
        return link


def _parse(body: bytes, content_type: str, plain_rss: bool) -> FeedData:
    if not body.strip():
        raise ParseError("empty body")
    if looks_like_json(body, content_type):
        try:
            return parse_json_feed(body)
        except JsonFeedError as error:
            raise ParseError(str(error)) from None
    try:
        document = defuse(body)
    except UnsafeDocument as refused:
        raise ParseError(str(refused)) from None
    plain = read_plain_rss(document, content_type) if plain_rss else None
    feed, entries, cut_off = (
        (*plain, False) if plain is not None else _feedparser(document, content_type, body)
    )
    return FeedData(
        title=_title(feed),
        link=feed.get("link") or None,
        language=feed.get("language") or None,
        entries=tuple(_entry(e, feed) for e in entries),
        ttl_minutes=_int(feed.get("ttl")),
        cut_off=cut_off,
    )


def _feedparser(document: bytes, content_type: str, body: bytes) -> tuple[Any, Any, bool]:
    """(feed, entries, whether the document was cut off): of a cut-off document (a connection
    that broke, a server that ran out of something) only the entries it closes are kept, so
    an entry cut in the middle never replaces the whole one stored before."""
    headers = {"content-type": content_type} if content_type else {}
    document = _bare_ampersands_escaped(document)
    # feedparser opens a bytes argument that names a file: give it a stream instead
    parsed = feedparser.parse(
        io.BytesIO(document),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    feed = parsed.get("feed", {})
    entries = parsed.get("entries", [])
    exc = parsed.get("bozo_exception")
    if not parsed.get("version") and not entries:
        if parsed.get("bozo"):
            raise ParseError(f"not a feed ({_describe(exc, body)})")
        raise ParseError("not a feed")
    cut_off = isinstance(exc, SAXParseException) and exc.getMessage() in _CUT_OFF
    if cut_off:
        entries = entries[: _entries_closed(document, parsed.get("encoding"))]
    if not entries:
        raise ParseError(
            "the document ends before its first entry does" if cut_off else "feed has no entries"
        )
    return feed, entries, cut_off


def _bare_ampersands_escaped(document: bytes) -> bytes:
    """`document` with each bare `&` written `&amp;` when that alone makes it well-formed, else
    unchanged: feedparser's loose parser, which reads it otherwise, makes `Q&A` `Q&A;`."""
    if not _BARE_AMP.search(document) or _well_formed(document):
        return document
    escaped = _BARE_AMP_IN_MARKUP.sub(
        lambda m: b"&amp;" if m.group() == b"&" else m.group(), document
    )
    return escaped if _well_formed(escaped) else document


def _well_formed(document: bytes) -> bool:
    try:
        etree.fromstring(document, _STRICT)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return True


def _entries_closed(document: bytes, encoding: str | None) -> int:
    try:
        text = document.decode(encoding or "utf-8", "replace")
    except LookupError:
        text = document.decode("utf-8", "replace")
    return len(_ENTRY_END.findall(text))


def _describe(exc: Any, body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    return str(exc).splitlines()[0] if exc else "unreadable"


def _entry(entry: Any, feed: Any) -> EntryData:
    content, base, language = _content(entry)
    return EntryData(
        guid=_text(entry.get("id")) or None,
        link=_link(entry),
        title=_text(entry.get("title")),
        title_html=(entry.get("title_detail") or {}).get("type") in _HTML_TYPES,
        content_html=content,
        published=_date(entry.get("published_parsed")),
        updated=_date(dict.get(entry, "updated_parsed")),  # no fallback to published_parsed
        base_url=base or None,
        authors=_texts(entry.get("authors", []), "name"),
        categories=_texts(entry.get("tags", []), "term"),
        images=_images(entry),
        enclosures=_enclosures(entry),
        language=entry.get("language") or language or None,
    )


def _title(feed: Any) -> str:
    """The feed's title as plain text (an HTML one as the text it shows, as for entries)."""
    title = _text(feed.get("title"))
    html = (feed.get("title_detail") or {}).get("type") in _HTML_TYPES
    return plain_text(title) if html else title


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(items: Any, key: str) -> tuple[str, ...]:
    """The texts under `key` of a list of dicts, stripped, the empty ones left out."""
    return tuple([text for item in items or () if (text := _text(item.get(key)))])


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _link(entry: Any) -> str | None:
    link = entry.get("link")
    if isinstance(link, str) and link.strip():
        return link.strip()
    for candidate in entry.get("links", []) or []:
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            return str(candidate["href"]).strip()
    return None


def _content(entry: Any) -> tuple[str, str | None, str | None]:
    """The richest HTML body (the longest content element, else the summary), its base URL and
    its `xml:lang` (which an Atom entry inherits from the feed unless it sets its own)."""
    best: tuple[str, str | None, str | None] = ("", None, None)
    for item in entry.get("content", []) or []:
        value = item.get("value") or ""
        if len(value) > len(best[0]):
            best = (_as_html(value, item.get("type", "")), item.get("base"), item.get("language"))
    if not best[0]:
        detail = entry.get("summary_detail") or {}
        summary = entry.get("summary") or ""
        html = _as_html(summary, detail.get("type", ""))
        best = (html, detail.get("base"), detail.get("language"))
    return best


def _as_html(value: str, mime: str) -> str:
    if mime == "text/plain":
        from html import escape

        return "".join(f"<p>{escape(p)}</p>" for p in value.split("\n\n") if p.strip())
    if mime == "application/xhtml+xml" and "</" in value:
        return _VOID_END.sub("", value)
    return value


def _date(value: time.struct_time | None) -> datetime | None:
    if not value or value == dates.NO_DATE:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        try:
            return datetime(*value[:6], tzinfo=UTC)
        except (ValueError, TypeError):
            return None


def _images(entry: Any) -> tuple[str, ...]:
    """Thumbnail candidates in FORMAT.md's order (content images come later, from the body)."""
    found: list[str] = []
    for thumb in entry.get("media_thumbnail", []) or []:
        if thumb.get("url"):
            found.append(thumb["url"])
    for media in entry.get("media_content", []) or []:
        kind = media.get("medium") or ""
        mime = media.get("type") or ""
        if media.get("url") and (kind == "image" or mime.startswith("image/")):
            found.append(media["url"])
    for link in entry.get("links", []) or []:
        href = str(link.get("href") or "")
        if link.get("rel") == "enclosure" and href and _is_image(str(link.get("type", "")), href):
            found.append(href)
    return tuple(found)


def _enclosures(entry: Any) -> tuple[str, ...]:
    """The URLs of the entry's media that is not an image: enclosures, then media:content."""
    found: list[str] = []
    for link in entry.get("links", []) or []:
        href = str(link.get("href") or "")
        if link.get("rel") == "enclosure" and not _is_image(str(link.get("type", "")), href):
            found.append(href.strip())
    for media in entry.get("media_content", []) or []:
        mime = str(media.get("medium") or media.get("type") or "")
        if media.get("url") and mime.startswith(("audio", "video")):
            found.append(str(media["url"]).strip())
    return tuple(dict.fromkeys(url for url in found if url))


def _is_image(mime: str, url: str) -> bool:
    """Whether an enclosure is an image: its type says so, or it has none and its name does."""
    if mime:
        return mime.lower().startswith("image/")
    return urlsplit(url).path.lower().endswith(_IMAGE_SUFFIXES)
