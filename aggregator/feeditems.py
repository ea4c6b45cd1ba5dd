"""What the published feeds are made of: one Item per stored entry, with its text cleaned for XML,
its times settled, its URIs absolute and its language tag valid."""

from __future__ import annotations

import hashlib
import html
import math
import re
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, urlsplit, urlunsplit

from aggregator.state import StoredEntry
from aggregator.text import fold

# 1990-01-01T00:00:00Z: feed validators call earlier dates implausible.
PLAUSIBLE_SINCE = 631152000.0
_ID_NAMESPACE = uuid.UUID("6f1c7e0e-4d0b-4c36-9a52-3a8f1d2b9e10")
_NAMESPACE_BYTES = _ID_NAMESPACE.bytes
_PLANE_NONCHARACTERS = "".join(
    chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(1, 17)
)
# What XML 1.0 forbids, plus C1 controls, noncharacters and U+FFFD, which validators flag; the
# noncharacters beyond the BMP apart, as a class with them scans ten times slower
_UNWANTED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd-\uffff]"
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_UNWANTED_ASTRAL = re.compile(f"[{_PLANE_NONCHARACTERS}]")
_LANG_SHAPE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URI_SAFE = ";/:@&=+$,-_.!~*'()%"
# an http(s) URI that encode_uri() gives back as it is: lower-case host, no port or user, a
# path, nothing to percent-encode, no empty query or fragment
_PLAIN_URI = re.compile(
    r"https?://[a-z0-9.-]+/[\w.~;/:@&=+$,!*'()-]*"
    r"(?:\?[\w.~;/:@&=+$,!*'()?-]+)?(?:#[\w.~;/:@&=+$,!*'()?-]+)?",
    re.ASCII,
)


@dataclass(frozen=True)
class SourceInfo:
    """The feed an entry was copied from."""

    name: str
    title: str
    feed_url: str | None
    site_url: str | None


@dataclass(frozen=True)
class Item:
    """One entry as every output format needs it."""

    atom_id: str
    title: str
    link: str | None
    published: float | None
    updated: float
    updated_text: str
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    summary: str
    html: str
    lang: str | None
    source: SourceInfo

    @cached_property
    def html_escaped(self) -> str:
        """The HTML content escaped for XML, once for every feed (Atom or RSS) that carries it."""
        return escape_text(self.html)

    @cached_property
    def atom_entry(self) -> str:
        """The item's Atom `<entry>`, once for every feed that carries it."""
        from aggregator.atom import entry_xml  # the Atom writer uses these items

        return entry_xml(self)


def urn(kind: str, key: str) -> str:
    """A stable `urn:uuid:` for a feed, an entry or a source: `uuid.uuid5(_ID_NAMESPACE, ...)`
    without the UUID object (a publish makes one for every entry of every feed it builds)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}:{key}".encode()).digest())
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def clean_text(text: str) -> str:
    """`text` without the characters XML forbids or validators flag."""
    if "\ufffd" not in text and (text.isprintable() or text.replace("\n", "").isprintable()):
        return text  # all it drops is unprintable (U+FFFD apart): most text has none of it
    return _clean_text(text)


def _clean_text(text: str) -> str:
    """clean_text() the long way."""
    text = _UNWANTED.sub("", text)
    return _UNWANTED_ASTRAL.sub("", text) if _ASTRAL.search(text) else text


def clean_line(text: str) -> str:
    """`clean_text(fold(text))`: one line of text that XML can carry."""
    if (
        "\ufffd" not in text
        and text.isprintable()
        and "  " not in text
        and not text.startswith(" ")
        and not text.endswith(" ")
    ):
        # printable text holds no control character, and no white space but the plain space
        return text
    return clean_text(fold(text))


def escape_text(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return html.escape(text, quote=False)
    return text


def escape_attr(text: str) -> str:
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text, quote=True)
    return text


def absolute_uri(url: str | None) -> str | None:
    """An absolute http(s) URI with every character outside RFC 3986 percent-encoded (IRIs
    become URIs, hosts become IDNA), without credentials; None when that is not possible."""
    if not url:
        return None
    url = url.strip()
    if _PLAIN_URI.fullmatch(url):
        return url  # what encode_uri() gives back unchanged
    return encode_uri(url)


def encode_uri(url: str) -> str | None:
    """absolute_uri() the long way, for any stripped URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host

    def encode(part: str, extra: str) -> str:
        return quote(_STRAY_PERCENT.sub("%25", part), safe=_URI_SAFE + extra)

    return urlunsplit(
        (
            scheme,
            netloc,
            encode(parts.path or "/", ""),
            encode(parts.query, "?"),
            encode(parts.fragment, "?"),
        )
    )


class LanguageTags:
    """Which language tags are registered (BCP 47), remembered across runs by the caller: the
    registry (langcodes) takes a fifth of a second to load, so only a new tag loads it."""

    def __init__(self, known: dict[str, bool] | None = None) -> None:
        self.known = dict(known or {})
        self.learned = False

    def valid(self, tag: str | None) -> str | None:
        """`tag` when it is a well-formed, registered language tag, else None."""
        if not tag or not _LANG_SHAPE.fullmatch(tag):
            return None
        registered = self.known.get(tag)
        if registered is None:
            import langcodes

            registered = self.known[tag] = langcodes.tag_is_valid(tag)
            self.learned = True
        return tag if registered else None


def rfc3339(stamp: float, nanos: int | None = None) -> str:
    """An RFC 3339 UTC time, whole seconds, with `nanos` nanoseconds when given."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(math.floor(stamp)))
    return f"{text}.{nanos:09d}Z" if nanos is not None else f"{text}Z"


def tie_breaker(key: str) -> int:
    """Nanoseconds derived from an entry's id: entries updated within the same second still
    carry distinct, stable `updated` values (validators flag two entries with the same one)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 1_000_000_000


def settle_times(entry: StoredEntry) -> tuple[float | None, float]:
    """(published, updated) as published: never after the entry was first seen, `updated` never
    before `published`, implausibly old times dropped (published) or replaced (updated)."""
    published = min(entry.date, entry.first_seen)
    updated = published if entry.updated == entry.date else max(entry.updated, published)
    if updated < PLAUSIBLE_SINCE:
        updated = max(entry.first_seen, updated)
    return (published if published >= PLAUSIBLE_SINCE else None), updated


def make_item(
    entry: StoredEntry, content_html: str, source: SourceInfo, langs: LanguageTags
) -> Item:
    published, updated = settle_times(entry)
    link = absolute_uri(entry.link)
    title = clean_line(entry.title) or link or source.title
    return Item(
        atom_id=urn("entry", entry.id),
        title=title,
        link=link,
        published=published,
        updated=updated,
        updated_text=rfc3339(updated, tie_breaker(entry.id)),
        authors=tuple(a for a in map(clean_line, entry.authors) if a),
        tags=tuple(t for t in map(clean_line, entry.tags) if t),
        summary=clean_line(entry.summary),
        html=clean_text(content_html) or f"<p>{escape_text(title)}</p>",
        lang=langs.valid(entry.lang),
        source=source,
    )
