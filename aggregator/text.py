"""Plain-text helpers: strip markup, drop control characters, fold space, cut on graphemes,
escape a summary as the front matter shows it (and back), shorten text for a one-line report."""

from __future__ import annotations

import html
import re
from functools import cache
from itertools import islice
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")
_TAG = re.compile(r"<[^>]*>")
_ENTITY_TAIL = r"(?=#?\w+;)"  # after `&`: what would read as an entity
_ENTITY_LIKE = re.compile("&" + _ENTITY_TAIL)
_SUMMARY_ESCAPE = re.compile("&lt;|&amp;" + _ENTITY_TAIL)  # what summary_text() writes
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|blockquote|pre|table|tr|td|th|figure|figcaption|dd|dt|dl|"
    r"hr|section|article|header|footer|aside|details|summary)\b[^>]*>",
)


def drop_controls(text: str) -> str:
    """Remove characters that XML and YAML cannot carry (C0/C1 controls, surrogates)."""
    return _CONTROL.sub("", text)


def fold(text: str) -> str:
    """One line: controls dropped, every run of white space made one space, ends trimmed."""
    return " ".join(drop_controls(text).split())  # split() and regex `\s` agree on white space


def one_line(text: str, limit: int = 200) -> str:
    """Text for a one-line report: white space folded, cut to `limit` characters with `…`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def html_to_text(markup: str) -> str:
    """The readable text of a sanitized HTML fragment (tag names in lower case, as nh3 writes
    them), blocks separated by a space, entities decoded."""
    spaced = _BLOCK_TAG.sub(" ", markup)
    return fold(html.unescape(_TAG.sub("", spaced)))


def plain_to_html(text: str) -> str:
    """Plain text as HTML paragraphs: blank lines part paragraphs, single newlines break lines."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        "<p>" + "<br>".join(html.escape(line, quote=False) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p.strip()
    )


def truncate(text: str, length: int, ellipsis: str = "...") -> str:
    """The first `length` user-perceived characters, then `ellipsis` when anything was cut."""
    if len(text) <= length:
        return text
    head = _graphemes(text, length + 1)
    if len(head) <= length:
        return text
    return "".join(head[:length]).rstrip() + ellipsis


def truncate_words(text: str, length: int) -> str:
    """Like truncate(), but a cut inside a word moves back to the word's start when that is in
    the second half (text without spaces, like Chinese, is cut on graphemes)."""
    if len(text) <= length:
        return text
    head = _graphemes(text, length + 1)
    if len(head) <= length:
        return text
    cut = "".join(head[:length])
    if not head[length].isspace():
        space = cut.rfind(" ")
        cut = cut[:space] if space > len(cut) // 2 else cut
    return cut.rstrip() + "..."


def _graphemes(text: str, count: int) -> list[str]:
    """The first `count` grapheme clusters (fewer when the text is shorter)."""
    window = text[: count + 1]
    if window.isascii() and "\r" not in window:  # each ASCII character is a cluster but CR LF
        return list(text[:count])
    cluster, alone = _patterns()
    if alone.fullmatch(window):
        return list(text[:count])
    return [m.group() for m in islice(cluster.finditer(text), count)]


@cache
def _patterns() -> tuple[regex.Pattern[str], regex.Pattern[str]]:
    """The grapheme cluster pattern, and one for text whose every character is a cluster of its
    own: the rules join only a CR to an LF, and characters of the Extend, ZWJ, SpacingMark,
    Prepend, Hangul and regional indicator kinds to others, and most text (Latin, CJK, most
    emoji) has none. `regex` is loaded on first use, not by every run importing this module."""
    import regex

    return regex.compile(r"\X"), regex.compile(r"[\p{GCB=Other}\p{GCB=Control}\p{GCB=LF}]*")


def summary_text(plain: str) -> str:
    """Plain text as Hugo's Markdown rendering of a front-matter summary shows it: `<` and
    what would read as an entity escaped (Hugo omits raw HTML, and warns)."""
    return (
        _ENTITY_LIKE.sub("&amp;", plain).replace("<", "&lt;")
        if "<" in plain or "&" in plain
        else plain
    )


def summary_plain(shown: str) -> str:
    """The plain text that summary_text() was given, from what it gave (read from a file)."""
    if "&" not in shown:
        return shown
    return _SUMMARY_ESCAPE.sub(lambda m: "<" if m.group() == "&lt;" else "&", shown)
