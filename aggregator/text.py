"""Plain-text helpers: strip markup, drop control characters, fold space, cut on graphemes."""

from __future__ import annotations

import html
import re

import regex

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|blockquote|pre|table|tr|td|th|figure|figcaption|dd|dt|dl|"
    r"hr|section|article|header|footer|aside|details|summary)\b[^>]*>",
    re.IGNORECASE,
)
_GRAPHEME = regex.compile(r"\X")


def drop_controls(text: str) -> str:
    """Remove characters that XML and YAML cannot carry (C0/C1 controls, surrogates)."""
    return _CONTROL.sub("", text)


def fold(text: str) -> str:
    """One line: controls dropped, every run of white space made one space, ends trimmed."""
    return _SPACE.sub(" ", drop_controls(text)).strip()


def html_to_text(markup: str) -> str:
    """The readable text of an HTML fragment, blocks separated by a space, entities decoded."""
    spaced = _BLOCK_TAG.sub(" ", markup)
    return fold(html.unescape(_TAG.sub("", spaced)))


def truncate(text: str, length: int, ellipsis: str = "...") -> str:
    """The first `length` user-perceived characters, then `ellipsis` when anything was cut."""
    if len(text) <= length:
        return text
    graphemes = _GRAPHEME.findall(text, endpos=len(text))
    if len(graphemes) <= length:
        return text
    return "".join(graphemes[:length]).rstrip() + ellipsis
