"""OPML 2.0: write a list of feed outlines, and read outlines back with folder names as tags."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from aggregator.errors import AggregatorError


class OpmlError(AggregatorError):
    """A file that is not readable OPML."""


@dataclass(frozen=True)
class Outline:
    """One subscription: its title, feed URL, web page, the folders it sits in, its categories
    (OPML's comma-separated `category`) and its language."""

    title: str
    xml_url: str
    html_url: str | None = None
    folders: tuple[str, ...] = ()
    kind: str = "rss"
    categories: tuple[str, ...] = ()
    language: str | None = None


def render_opml(title: str, outlines: Sequence[Outline], created: datetime | None = None) -> bytes:
    """OPML 2.0 bytes; outlines with folders are nested under one outline per folder."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    if created is not None:
        ET.SubElement(head, "dateCreated").text = format_datetime(created)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for outline in outlines:
        parent = body
        if outline.folders:
            folder = outline.folders[0]
            if folder not in folders:
                folders[folder] = ET.SubElement(body, "outline", text=folder, title=folder)
            parent = folders[folder]
        attrs = {
            "type": outline.kind,
            "text": outline.title,
            "title": outline.title,
            "xmlUrl": outline.xml_url,
        }
        if outline.html_url:
            attrs["htmlUrl"] = outline.html_url
        if outline.categories:
            attrs["category"] = ",".join(outline.categories)
        if outline.language:
            attrs["language"] = outline.language
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def parse_opml(data: bytes) -> list[Outline]:
    """Every outline with an xmlUrl, its enclosing folder titles as `folders` (outermost first).
    Entity declarations are refused, so a hostile file cannot expand or read anything."""
    if b"<!ENTITY" in data or b"<!entity" in data:
        raise OpmlError("OPML with entity declarations is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML ({exc})") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise OpmlError("not an OPML document (no <opml><body>)")
    return list(_walk(body, ()))


def _walk(element: ET.Element, folders: tuple[str, ...]) -> Iterator[Outline]:
    for child in element.findall("outline"):
        url = child.get("xmlUrl") or child.get("xmlurl")
        label = (child.get("title") or child.get("text") or "").strip()
        if url:
            yield Outline(
                title=label or url,
                xml_url=url.strip(),
                html_url=child.get("htmlUrl") or None,
                folders=folders,
                kind=child.get("type") or "rss",
                categories=_categories(child.get("category") or ""),
                language=(child.get("language") or "").strip() or None,
            )
        else:
            yield from _walk(child, (*folders, label) if label else folders)


def _categories(value: str) -> tuple[str, ...]:
    """OPML categories are comma-separated and slash-delimited: `/News/Tech` gives `Tech`."""
    parts = (part.strip().rstrip("/").rsplit("/", 1)[-1].strip() for part in value.split(","))
    return tuple(dict.fromkeys(part for part in parts if part))
