"""Author strings split as feedparser splits them, in linear time, on both parsing paths."""

from __future__ import annotations

import random
import time

import pytest
from feedparser.mixin import _FeedParserMixin

from aggregator import authors
from aggregator.models import FeedData
from aggregator.parse import parse_feed
from tests.helpers import CORPORA

PIECES: tuple[str, ...] = (
    "Ann",
    "Bo Li",
    "a.b+c@example.com",
    "x@[10.0.0.",
    "1]",
    "(",
    ")",
    "<",
    ">",
    " ",
    "@",
)
PIECES += ("mailto:ann@ex.org?subject=Hi", "&lt;&gt;", "é", "ann@ex", ".org", "-", "_", "99")


def _feed(author: str, encoding: str = "utf-8") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>x</title>'
        f"<item><title>t</title><guid>g</guid><author>{author}</author>"
        f"<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>{author}</dc:creator>"
        "</item></channel></rss>"
    ).encode(encoding, "xmlcharrefreplace")


def _documents() -> list[bytes]:
    rng = random.Random(20261129)
    made = [_feed("".join(rng.choices(PIECES, k=rng.randint(1, 8)))) for _ in range(400)]
    corpus = sorted(
        p for p in (CORPORA / "feedparser").rglob("*.xml") if b"author" in p.read_bytes()
    )
    return made + [p.read_bytes() for p in corpus]


def _all_parsed(documents: list[bytes]) -> list[FeedData | str]:
    out: list[FeedData | str] = []
    for body in documents:
        try:
            out.append(parse_feed(body, plain_rss=False))
        except Exception as error:
            out.append(repr(error))
    return out


def test_feedparser_reads_the_same_authors_with_the_linear_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = _documents()
    assert len(documents) > 450
    linear = _all_parsed(documents)
    monkeypatch.setattr(_FeedParserMixin, "_sync_author_detail", authors._feedparser_sync)
    own = _all_parsed(documents)
    assert linear == own
    emails = sum(1 for body in documents[:400] if authors._EMAIL.search(body.decode()))
    assert emails > 100


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_a_long_author_without_an_address_is_read_quickly(encoding: str) -> None:
    """The address search read on from every letter of it: on the feedparser path (ISO-8859-1
    is not plain RSS to the fast reader) 20 KB took 10 s, and 200 KB would take 15 minutes."""
    author = "a" * 200_000
    started = time.perf_counter()
    assert parse_feed(_feed(author, encoding)).entries[0].authors == (author, author)
    assert time.perf_counter() - started < 5
