"""The HTML content of a published entry: its Markdown body rendered (markdown-it-py), sanitized
(nh3, every URL absolute), the thumbnail shown first when the body leaves it out."""

from __future__ import annotations

import json
import re

import yaml
from markdown_it import MarkdownIt

from aggregator.feeditems import clean_text, escape_attr
from aggregator.frontmatter import read
from aggregator.markdown import hugo_shown, sanitize

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")
_THUMBNAIL = re.compile(r'^thumbnail: (".*")$', re.MULTILINE)
_OPENING = "---\n"
_CLOSING = "\n---\n"


_LAST_PARAGRAPH_LINK = re.compile(r'\s*<p><a href="(?P<href>[^"]*)"[^>]*>[^<]*</a></p>\s*$')


def split_entry(text: str) -> tuple[str, str]:
    """(front matter, Markdown body) of an entry file, without a YAML parse when it has our own
    layout."""
    if text.startswith(_OPENING):
        end = text.find(_CLOSING, len(_OPENING) - 1)
        if end >= 0:
            return text[len(_OPENING) : end], text[end + len(_CLOSING) :]
    meta, body = read(text)
    thumbnail = meta.get("thumbnail")
    if not isinstance(thumbnail, str):
        return "", body
    return f"thumbnail: {json.dumps(thumbnail, ensure_ascii=False)}", body


def thumbnail_of(front: str) -> str | None:
    match = _THUMBNAIL.search(front)
    if not match:
        return None
    try:
        value = yaml.load(match.group(1), Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, str) and value else None


def render_entry_html(text: str, link: str | None) -> str:
    """Sanitized HTML for one entry file; relative URLs resolve against the entry's link."""
    front, body = split_entry(text)
    html = sanitize(_MARKDOWN.render(hugo_shown(body)), link)
    if link and (last := _LAST_PARAGRAPH_LINK.search(html)) and last["href"] == escape_attr(link):
        html = html[: last.start()]  # the source line convert adds for the Hugo page
    thumbnail = thumbnail_of(front)
    if thumbnail and escape_attr(thumbnail) not in html:
        figure = sanitize(f'<p><img src="{escape_attr(thumbnail)}" alt=""></p>', link)
        html = figure + "\n" + html
    return clean_text(html).strip()
