"""feedparser's reading of an author string (an e-mail address taken out of the name), in
linear time, for the plain RSS reader and installed into feedparser itself: feedparser's own
pattern is tried from every position inside a run of address characters and reads the rest of
the run each time, so a 20 KB author took 10 s and 100 KB minutes."""

from __future__ import annotations

import re
from typing import Any

from feedparser.mixin import _FeedParserMixin
from feedparser.util import FeedParserDict

# feedparser's, tried only where a run of address characters starts (a search from within one
# finds the same `@` after it, and fails as the run's start did, after reading the whole run)
_EMAIL = re.compile(
    r"(?<![a-zA-Z0-9_.+-])(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
_feedparser_sync = _FeedParserMixin._sync_author_detail


def split_author(author: str) -> tuple[str, str | None]:
    """(name, e-mail address) as feedparser splits an author string; the name may be empty."""
    found = _EMAIL.search(author)
    if not found:
        return author, None
    email = found.group(0)
    author = author.replace(email, "").replace("()", "").replace("<>", "")
    author = author.replace("&lt;&gt;", "").strip()
    if author and author[0] == "(":
        author = author[1:]
    if author and author[-1] == ")":
        author = author[:-1]
    return author.strip(), email


def _sync_author_detail(parser: Any, key: str = "author") -> None:
    """feedparser's method, with the author string split by split_author (the other paths
    match no pattern and stay feedparser's)."""
    context = parser._get_context()
    detail = context.get(f"{key}s", [FeedParserDict()])[-1]
    if detail or not context.get(key):
        _feedparser_sync(parser, key)
        return
    name, email = split_author(context[key])
    if name or email:
        context.setdefault(f"{key}_detail", detail)
    if name:
        detail["name"] = name
    if email:
        detail["email"] = email


def install_in_feedparser() -> None:
    """Have feedparser split author strings in linear time."""
    _FeedParserMixin._sync_author_detail = _sync_author_detail
