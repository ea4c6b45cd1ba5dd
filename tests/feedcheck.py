"""An offline feed checker for the rules the Atom schema cannot express: RFC 4287's MUSTs and the
W3C feed validator's errors and warnings, written as checks (stricter where that is simpler).

`check_atom(data, url)` lists every problem in one published feed served from `url`; the Atom
schema itself is checked by `tests.helpers.validate_atom` (jing)."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from calendar import timegm
from email.utils import parsedate_tz
from urllib.parse import urlsplit

import html5lib
import langcodes

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")
URI_CHARS = re.compile(r"^[a-zA-Z][0-9a-zA-Z+\-.]*:(//)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+$")
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LANG_SHAPE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
REGISTERED_RELS = {"alternate", "related", "self", "enclosure", "via", "hub", "license", "replies"}
# Markup the validator reads into a type="text" construct (a stricter superset of its checks).
UNDECLARED_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|&#?\w")
# HTML the validator accepts without a security warning, narrowed to what we can ever emit.
SAFE_ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)
SAFE_ATTRIBUTES = frozenset(
    [
        "abbr",
        "align",
        "alt",
        "char",
        "charoff",
        "cite",
        "class",
        "colspan",
        "datetime",
        "dir",
        "headers",
        "height",
        "href",
        "hreflang",
        "lang",
        "rowspan",
        "scope",
        "span",
        "src",
        "start",
        "summary",
        "title",
        "width",
    ]
)
REF = re.compile(r"<(?:a\s+[^>]*?href|img\s+[^>]*?src)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.I)
IMPLAUSIBLE_BEFORE = 631152000  # 1990-01-01
FUTURE_SLACK = 600


def bad_characters(text: str) -> bool:
    """C1 controls and U+FFFD: the validator's BadCharacters."""
    return any(0x80 <= ord(c) <= 0x9F or c == "\ufffd" for c in text)


def absolute(uri: str) -> bool:
    parts = urlsplit(uri)
    return bool(parts.scheme) and (parts.scheme in ("urn", "tag", "mailto") or bool(parts.netloc))


def canonical_uri(uri: str) -> bool:
    """Lower-case scheme and host, no default port, no dot segments: what the validator's
    NonCanonicalURI asks of ids."""
    if UUID_URN.match(uri):
        return True
    parts = urlsplit(uri)
    if parts.scheme != parts.scheme.lower() or parts.netloc != parts.netloc.lower():
        return False
    default = {"http": ":80", "https": ":443"}.get(parts.scheme)
    if default and parts.netloc.endswith(default):
        return False
    return "/./" not in parts.path and "/../" not in parts.path


def plausible_date(text: str, now: float) -> str | None:
    match = RFC3339.match(text)
    if not match:
        return f"not an RFC 3339 date with an offset: {text!r}"
    y, mo, d, h, mi, s = (int(g) for g in match.groups()[:6])
    stamp = timegm((y, mo, d, h, mi, s, 0, 0, 0))
    offset = match.group(8)
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        stamp -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    if stamp < IMPLAUSIBLE_BEFORE or stamp > now + FUTURE_SLACK:
        return f"implausible date {text}"
    return None


class _AtomChecker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.now = time.time()
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def text_construct(self, where: str, element: ET.Element) -> None:
        kind = element.get("type", "text")
        value = element.text or ""
        if not value.strip():
            self.problem(where, "blank")
        if bad_characters(value):
            self.problem(where, "C1 control or U+FFFD characters")
        if kind == "text" and UNDECLARED_MARKUP.search(value):
            self.problem(where, f"markup in a type=text construct: {value[:60]!r}")
        elif kind == "html":
            self.html(where, value)
        elif kind != "text":
            self.problem(where, f"unexpected type {kind!r}")

    def html(self, where: str, markup: str) -> None:
        try:
            fragment = html5lib.HTMLParser(strict=True).parseFragment(markup)
        except html5lib.html5parser.ParseError as exc:
            self.problem(where, f"not HTML ({exc})")
            return
        for node in fragment.iter():
            if not isinstance(node.tag, str) or node.tag == "DOCUMENT_FRAGMENT":
                continue
            tag = node.tag.split("}")[-1]
            if tag not in SAFE_ELEMENTS:
                self.problem(where, f"unsafe or unknown element <{tag}>")
            for name in node.attrib:
                if name not in SAFE_ATTRIBUTES:
                    self.problem(where, f"unsafe attribute {name!r} on <{tag}>")
        for match in REF.finditer(markup):
            ref = (match.group(1) or match.group(2) or "").strip()
            if not re.match(r"\w+:", ref):
                self.problem(where, f"relative reference {ref!r}")

    def uri(self, where: str, value: str | None) -> None:
        if not value or not absolute(value):
            self.problem(where, f"not an absolute URI: {value!r}")
        elif not URI_CHARS.match(value):
            self.problem(where, f"characters outside RFC 3986: {value!r}")

    def date(self, where: str, element: ET.Element | None) -> None:
        if element is None:
            self.problem(where, "missing")
            return
        text = element.text or ""
        issue = plausible_date(text, self.now)
        if issue:
            self.problem(where, issue)

    def langs(self, root: ET.Element) -> None:
        for element in root.iter():
            lang = element.get(XML_LANG)
            if lang is not None and not (LANG_SHAPE.match(lang) and langcodes.tag_is_valid(lang)):
                self.problem(element.tag, f"invalid language tag {lang!r}")

    def links(self, where: str, parent: ET.Element) -> list[ET.Element]:
        links = parent.findall(f"{ATOM}link")
        alternates: set[tuple[str, str]] = set()
        for link in links:
            rel = link.get("rel", "alternate")
            if rel not in REGISTERED_RELS:
                self.problem(where, f"unregistered link rel {rel!r}")
            self.uri(f"{where} link[{rel}]", link.get("href"))
            if rel == "alternate":
                key = (link.get("type", ""), link.get("hreflang", ""))
                if key in alternates:
                    self.problem(where, f"two alternate links of type {key[0]!r}")
                alternates.add(key)
        return links

    def one(self, where: str, parent: ET.Element, name: str) -> ET.Element | None:
        found = parent.findall(f"{ATOM}{name}")
        if len(found) != 1:
            self.problem(where, f"{len(found)} <{name}> elements, expected one")
        return found[0] if found else None

    def identifier(self, where: str, element: ET.Element | None) -> str:
        value = element.text or "" if element is not None else ""
        if value != value.strip() or not value:
            self.problem(where, f"blank or padded id {value!r}")
        self.uri(where, value)
        if value and not canonical_uri(value):
            self.problem(where, f"non-canonical id {value!r}")
        return value

    def feed(self, root: ET.Element) -> None:
        if root.tag != f"{ATOM}feed":
            self.problem("document", f"root is {root.tag}, not atom:feed")
            return
        self.langs(root)
        self.identifier("feed id", self.one("feed", root, "id"))
        title = self.one("feed", root, "title")
        if title is not None:
            self.text_construct("feed title", title)
        self.date("feed updated", self.one("feed", root, "updated"))
        selfs = [x for x in self.links("feed", root) if x.get("rel") == "self"]
        if len(selfs) != 1:
            self.problem("feed", f"{len(selfs)} rel=self links, expected one")
        elif selfs[0].get("href") != self.url:
            self.problem("feed", f"rel=self {selfs[0].get('href')!r} is not {self.url!r}")
        elif selfs[0].get("type") != "application/atom+xml":
            self.problem("feed", "rel=self link without type application/atom+xml")
        for generator in root.findall(f"{ATOM}generator"):
            if not (generator.text or "").strip():
                self.problem("feed generator", "blank")
        feed_author = self.authors("feed", root)
        ids: set[str] = set()
        updated: set[str] = set()
        for number, entry in enumerate(root.findall(f"{ATOM}entry"), 1):
            self.entry(f"entry {number}", entry, feed_author, ids, updated)

    def authors(self, where: str, parent: ET.Element) -> bool:
        authors = parent.findall(f"{ATOM}author")
        for author in authors:
            name = author.find(f"{ATOM}name")
            if name is None or not (name.text or "").strip():
                self.problem(where, "author without a name")
            uri = author.find(f"{ATOM}uri")
            if uri is not None:
                self.uri(f"{where} author uri", uri.text)
        return bool(authors)

    def entry(
        self, where: str, entry: ET.Element, feed_author: bool, ids: set[str], updated: set[str]
    ) -> None:
        entry_id = self.identifier(f"{where} id", self.one(where, entry, "id"))
        if entry_id in ids:
            self.problem(where, f"duplicate entry id {entry_id}")
        ids.add(entry_id)
        title = self.one(where, entry, "title")
        if title is not None:
            self.text_construct(f"{where} title", title)
        stamp = self.one(where, entry, "updated")
        self.date(f"{where} updated", stamp)
        if stamp is not None:
            if stamp.text in updated:
                self.problem(where, f"two entries updated at {stamp.text}")
            updated.add(stamp.text or "")
        for published in entry.findall(f"{ATOM}published"):
            self.date(f"{where} published", published)
        links = self.links(where, entry)
        content = entry.find(f"{ATOM}content")
        summary = entry.find(f"{ATOM}summary")
        for element, name in ((content, "content"), (summary, "summary")):
            if element is not None:
                self.text_construct(f"{where} {name}", element)
        if content is None:
            if summary is None:
                self.problem(where, "neither content nor summary")
            if not any(x.get("rel", "alternate") == "alternate" for x in links):
                self.problem(where, "no content and no alternate link")
        for category in entry.findall(f"{ATOM}category"):
            if not (category.get("term") or "").strip():
                self.problem(where, "category without a term")
        source = entry.find(f"{ATOM}source")
        source_author = False
        if source is not None:
            for name in ("id", "title", "updated"):
                if source.find(f"{ATOM}{name}") is None:
                    self.problem(f"{where} source", f"no <{name}>")
            self.links(f"{where} source", source)
            source_author = self.authors(f"{where} source", source)
        if not (feed_author or source_author or self.authors(where, entry)):
            self.problem(where, "no author on the entry, its source or the feed")

    def characters(self, root: ET.Element) -> None:
        for element in root.iter():
            values = [element.text or "", element.tail or "", *element.attrib.values()]
            if any(bad_characters(v) for v in values):
                self.problem(element.tag, "C1 control or U+FFFD characters")


def check_atom(data: bytes, url: str) -> list[str]:
    """Every problem found in an Atom feed served from `url`; empty when it is clean."""
    checker = _AtomChecker(url)
    if not data.startswith(b'<?xml version="1.0" encoding="utf-8"?>'):
        checker.problem("document", "no UTF-8 XML declaration")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return [f"document: not well-formed ({exc})"]
    checker.characters(root)
    checker.feed(root)
    return checker.problems


def check_rss(data: bytes, url: str) -> list[str]:
    """The RSS 2.0 rules we publish by: channel basics, a self link, unique guids, valid dates."""
    problems: list[str] = []
    root = ET.fromstring(data)
    channel = root.find("channel")
    if root.tag != "rss" or root.get("version") != "2.0" or channel is None:
        return ["not an RSS 2.0 document"]
    for name in ("title", "link", "description"):
        if not (channel.findtext(name) or "").strip():
            problems.append(f"channel: no {name}")
    selfs = [x for x in channel.findall(f"{ATOM}link") if x.get("rel") == "self"]
    if [x.get("href") for x in selfs] != [url]:
        problems.append(f"channel: atom:link rel=self is not {url!r}")
    guids: set[str] = set()
    for number, item in enumerate(channel.findall("item"), 1):
        guid = item.findtext("guid") or ""
        if not guid or guid in guids:
            problems.append(f"item {number}: missing or duplicate guid {guid!r}")
        guids.add(guid)
        date = item.findtext("pubDate")
        if date is not None and parsedate_tz(date) is None:
            problems.append(f"item {number}: bad pubDate {date!r}")
    return problems


def check_json_feed(data: bytes, url: str) -> list[str]:
    """JSON Feed 1.1's required members, unique item ids, RFC 3339 dates."""
    feed = json.loads(data)
    problems: list[str] = []
    if feed.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append("not JSON Feed 1.1")
    if feed.get("feed_url") != url:
        problems.append(f"feed_url is not {url!r}")
    if not feed.get("title"):
        problems.append("no title")
    ids: set[str] = set()
    now = time.time()
    for number, item in enumerate(feed.get("items", []), 1):
        if not item.get("id") or item["id"] in ids:
            problems.append(f"item {number}: missing or duplicate id")
        ids.add(item.get("id"))
        for key in ("date_published", "date_modified"):
            if key in item and plausible_date(item[key], now):
                problems.append(f"item {number}: {key} {item[key]!r}")
    return problems
