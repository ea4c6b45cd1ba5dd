"""How people and programs find the published feeds: output/feeds.opml (every feed, for import
into a reader) and output/index.html (a plain page listing them, with autodiscovery links)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.feeditems import escape_attr, escape_text
from aggregator.opml import Outline, render_opml

INDEX = "index.html"
OPML = "feeds.opml"
FORMAT_LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
FORMAT_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}


@dataclass(frozen=True)
class Listing:
    """One published feed: its title and its path under output/ in each format, in
    `[site] formats` order."""

    title: str
    urls: tuple[tuple[str, str], ...]


def feeds_opml(title: str, site_url: str, listings: Sequence[Listing]) -> bytes:
    """OPML with one outline per feed, in its first published format, URLs made absolute."""
    outlines = [
        Outline(title=listing.title, xml_url=site_url + listing.urls[0][1], html_url=site_url)
        for listing in listings
    ]
    return render_opml(title, outlines)


def index_html(title: str, lang: str | None, listings: Sequence[Listing]) -> bytes:
    """A plain HTML page listing every feed, the first one advertised for autodiscovery."""
    head_links = [
        f'<link rel="alternate" type="{FORMAT_TYPES[fmt]}" title="{escape_attr(title)}" '
        f'href="{escape_attr(url)}">'
        for fmt, url in (listings[0].urls if listings else ())
    ]
    rows = []
    for listing in listings:
        links = " · ".join(
            f'<a href="{escape_attr(url)}">{FORMAT_LABELS[fmt]}</a>' for fmt, url in listing.urls
        )
        rows.append(f"<li>{escape_text(listing.title)}: {links}</li>")
    lang_attr = f' lang="{lang}"' if lang else ""
    page = [
        "<!DOCTYPE html>",
        f"<html{lang_attr}>",
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape_text(title)}</title>",
        *head_links,
        "</head>",
        "<body>",
        f"<h1>{escape_text(title)}</h1>",
        "<ul>",
        *rows,
        "</ul>",
        f'<p>All feeds for a reader: <a href="{OPML}">{OPML}</a></p>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(page).encode("utf-8")
