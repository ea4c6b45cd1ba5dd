"""Sanitize entry HTML (nh3 allowlist), make its URLs absolute, and turn it into Markdown."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import html_to_markdown
import nh3

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc"})

_NBSP_MARK = "\ufdd0"  # a noncharacter: never in real text, survives the converter
_OPTIONS = html_to_markdown.ConversionOptions(
    extract_metadata=False,
    bullets="-",
    heading_style="atx",
    code_block_style="backticks",
    autolinks=False,
)
_LEADING_IMAGE = re.compile(
    r'^\s*(?:<(?:p|div|figure|a|span)\b[^>]*>\s*)*<img\b[^>]*?\bsrc="([^"]*)"[^>]*>\s*'
    r"(?:</(?:a|span)>\s*)*(?:</(?:p|div|figure)>\s*)?",
)
_FIRST_IMAGE = re.compile(r'<img\b[^>]*?\bsrc="([^"]*)"')
_SHORTCODE = re.compile(r"\{\{(\s*)([<%])")


def absolute_url(url: str, base: str | None, schemes: frozenset[str]) -> str | None:
    """`url` made absolute against `base`, or None when it is not of an allowed scheme."""
    url = url.strip()
    if not url:
        return None
    resolved = urljoin(base, url) if base else url
    parts = urlsplit(resolved)
    if parts.scheme.lower() not in schemes:
        return None
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return None
    return resolved


def sanitize(markup: str, base_url: str | None) -> str:
    """Allowlisted HTML with absolute http(s)/mailto links and http(s) images only."""

    def keep(element: str, attribute: str, value: str) -> str | None:
        if attribute in URL_ATTRIBUTES:
            schemes = IMAGE_SCHEMES if element == "img" else LINK_SCHEMES
            return absolute_url(value, base_url, schemes)
        return value

    return nh3.clean(
        markup.replace(_NBSP_MARK, ""),
        url_schemes=set(LINK_SCHEMES),
        attribute_filter=keep,
        link_rel=None,
        strip_comments=True,
    )


def leading_image(clean: str) -> str | None:
    """The src of an image that stands before any text in sanitized HTML."""
    match = _LEADING_IMAGE.match(clean)
    return _unescape_attr(match.group(1)) if match else None


def drop_leading_image(clean: str) -> str:
    """Sanitized HTML without the image (and its empty wrapper) that stands first."""
    match = _LEADING_IMAGE.match(clean)
    return clean[match.end() :] if match else clean


def first_image(clean: str) -> str | None:
    match = _FIRST_IMAGE.search(clean)
    return _unescape_attr(match.group(1)) if match else None


def to_markdown(clean: str) -> str:
    """Markdown for sanitized HTML; non-breaking spaces kept, shortcode openers defused."""
    marked = clean.replace("&nbsp;", _NBSP_MARK).replace("\xa0", _NBSP_MARK)
    converted = html_to_markdown.convert(marked, _OPTIONS).content or ""
    text = converted.replace(_NBSP_MARK, "\xa0").strip()
    return _SHORTCODE.sub(
        lambda m: "{{" + m.group(1) + ("&lt;" if m.group(2) == "<" else "&#37;"), text
    )


def _unescape_attr(value: str) -> str:
    return (
        value.replace("&amp;", "&").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    )
