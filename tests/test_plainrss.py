"""The lxml reading of plain RSS gives exactly what feedparser gives: over every file of the
corpora and the bench's synthetic feeds, served with the usual content types, either it
declines or the parsed feeds are equal, entry by entry."""

from __future__ import annotations

import random

import pytest
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.defuse import UnsafeDocument, defuse
from aggregator.errors import ParseError
from aggregator.models import FeedData
from aggregator.parse import parse_feed
from aggregator.plainrss import read_plain_rss
from bench.synth import feed_xml
from tests.helpers import CORPORA

CONTENT_TYPES = ("", "application/rss+xml; charset=UTF-8", "text/xml")


def documents() -> list[tuple[str, bytes]]:
    files = sorted(p for p in (CORPORA / "feedparser").rglob("*.xml") if p.is_file())
    found = [(str(p.relative_to(CORPORA)), p.read_bytes()) for p in files]
    found += [(f"bench/{i}", feed_xml(i, entries=8)) for i in range(3)]
    return found


def parsed(body: bytes, content_type: str, plain_rss: bool) -> FeedData | str:
    try:
        return parse_feed(body, content_type, plain_rss=plain_rss)
    except ParseError as error:
        return f"ParseError: {error}"


def test_the_fast_path_reads_what_feedparser_reads() -> None:
    taken: set[str] = set()
    mismatches: list[str] = []
    for name, body in documents():
        for content_type in CONTENT_TYPES:
            try:
                plain = read_plain_rss(defuse(body), content_type)
            except UnsafeDocument:
                continue
            if plain is None:
                continue
            taken.add(name)
            fast = parsed(body, content_type, plain_rss=True)
            slow = parsed(body, content_type, plain_rss=False)
            if fast != slow:
                mismatches.append(f"{name} ({content_type or 'no type'}):\n  {fast}\n  {slow}")
    assert not mismatches, "\n".join(mismatches[:10]) + f"\n({len(mismatches)} in all)"
    # the fast path must actually be taken, or this test proves nothing
    assert len(taken) > 200
    assert {"bench/0", "bench/1", "bench/2"} <= taken


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (feed_xml(1, entries=3), "application/rss+xml; charset=iso-8859-1"),
        (feed_xml(1, entries=3).replace(b"UTF-8", b"windows-1252"), ""),
        (feed_xml(1, entries=3).replace(b"<item>", b'<item xml:base="http://x/">', 1), ""),
        (feed_xml(1, entries=3).replace(b"<title>", b"<dc:title>", 1), ""),
        (b"<rss><channel><title>t</title></channel></rss>", ""),
        (feed_xml(1, entries=3).replace(b"</guid>", b"</guid><guid>x</guid>", 1), ""),
        (b'<!DOCTYPE rss SYSTEM "x">' + feed_xml(1, entries=3).split(b"\n", 1)[1], ""),
    ],
    ids=["charset", "declared", "xml-base", "unknown-element", "no-items", "twice", "doctype"],
)
def test_anything_else_goes_to_feedparser(body: bytes, content_type: str) -> None:
    assert read_plain_rss(body, content_type) is None
    assert read_plain_rss(feed_xml(1, entries=3), "") is not None


TEXTS = (
    "plain words",
    "  padded  ",
    "a &amp; b",
    "&lt;b&gt;bold&lt;/b&gt; text",
    "<![CDATA[<p>para &amp; graph</p>]]>",
    "Ã©tÃ© mojibake",
    "\u0080\u0093 c1 controls",
    "café 中文",
    "",
    "&#233;t&#xE9;",
    "x &lt; y",
    "&amp;amp; &amp;nbsp;",
    "&lt;/unknown&gt;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
)
URLS = (
    "http://a.test/x?a=1&amp;b=2",
    "/relative/path",
    "",
    "  http://x.test/  ",
    "http://example.c[o.test/",
    "http:///x",
    "mailto:x@y.test",
    "http://x.test/?q=&amp;amp;c;",
)
DATES = ("Sat, 07 Sep 2002 00:00:01 GMT", "2002-09-07T00:00:01Z", "garbage", "", "31 Dec 1899")
MIMES = ("IMAGE/JPEG", "audio/mpeg")
AUTHORS = (
    *("x@y.test (Name)", "Name", "", "Name <x@y.test>", "(x@y.test)", "a.b@c.test"),
    *("Ann (a+b.c@d.test) (x@e.test)", "é.x@y.test a@b", "me@[10.0.0.1]", "x@y.test?subject=Hi z"),
)


def _random_item(rng: random.Random) -> str:
    parts = [
        f"<title>{rng.choice(TEXTS)}</title>",
        f"<link>{rng.choice(URLS)}</link>",
        f"<description>{rng.choice(TEXTS)}</description>",
        f"<content:encoded>{rng.choice(TEXTS)}</content:encoded>",
        f"<pubDate>{rng.choice(DATES)}</pubDate>",
        "<guid{}>{}</guid>".format(
            rng.choice(("", ' isPermaLink="true"', ' isPermaLink="false"', ' isPermaLink="TRUE"')),
            rng.choice((*URLS, "tag:x,2002:1")),
        ),
    ]
    parts = rng.sample(parts, k=rng.randrange(len(parts) + 1))
    for _ in range(rng.randrange(4)):
        parts.insert(
            rng.randrange(len(parts) + 1),
            rng.choice(
                (
                    f"<dc:creator>{rng.choice(AUTHORS)}</dc:creator>",
                    f"<author>{rng.choice(AUTHORS)}</author>",
                    f"<category>{rng.choice(TEXTS[:4])}</category>",
                    f'<category domain="http://d.test/">{rng.choice(("", "tag"))}</category>',
                    f'<enclosure url="{rng.choice(URLS[:2])}" type="{rng.choice(MIMES)}"/>',
                    '<enclosure href="http://e.test/i.png" type="image/png" length="1"/>',
                    f'<media:thumbnail url="{rng.choice(URLS[:3])}"/>',
                    f"<media:thumbnail>{rng.choice(URLS)}</media:thumbnail>",
                    f'<media:content url="http://m.test/{rng.randrange(9)}.jpg" medium="image"/>',
                    '<media:content url="http://m.test/v.mp4" type="Video/MP4"/>',
                    "<comments>http://c.test/</comments>",
                    "<!-- a comment -->",
                )
            ),
        )
    return "<item>" + "".join(parts) + "</item>"


def _random_feed(rng: random.Random) -> bytes:
    channel = [
        f"<title>{rng.choice(TEXTS)}</title>",
        f"<link>{rng.choice(URLS)}</link>",
        f"<language>{rng.choice(('en-us', ' fr ', '', 'zh_CN'))}</language>",
        f"<ttl>{rng.choice(('60', ' 5 ', 'x', ''))}</ttl>",
        f'<atom:link href="{rng.choice(URLS[:2])}" rel="{rng.choice(("self", "alternate"))}"/>',
        '<atom:link href="/by-href" url="/by-url" rel="alternate"/>',
        "<image><title>logo</title><url>http://i.test/l.png</url><link>/home</link></image>",
        "<description>about</description><generator>gen</generator>",
    ]
    channel = rng.sample(channel, k=rng.randrange(len(channel) + 1))
    items = "".join(_random_item(rng) for _ in range(rng.randrange(1, 4)))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/" '
        f'xmlns:atom="http://www.w3.org/2005/Atom"><channel>{"".join(channel)}{items}'
        "</channel></rss>"
    ).encode()


def test_random_feeds_read_the_same_both_ways() -> None:
    rng = random.Random(20261128)
    taken = 0
    for _ in range(600):
        body = _random_feed(rng)
        if read_plain_rss(body, "") is None:
            continue
        taken += 1
        fast, slow = parsed(body, "", plain_rss=True), parsed(body, "", plain_rss=False)
        assert fast == slow, body.decode()
    assert taken > 400


_URLISH = st.text(alphabet=st.sampled_from("htpsa:/.?&#[]%- é中\t"), max_size=20)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.one_of(_URLISH, st.text(max_size=20)))
def test_shortcuts_skip_only_what_changes_nothing(text: str) -> None:
    """A link is resolved only when it has `:///`, a title asked whether it looks like HTML
    only when it has `</` or `&`: feedparser's functions give the same for the rest."""
    if ":///" not in text:
        assert _urljoin("", text) == text
    if "</" not in text and "&" not in text:
        assert not _FeedParserMixin.looks_like_html(text)


@pytest.mark.parametrize(
    "tags",
    [
        ("TITLE", "Link", "PUBDATE", "Guid", "Description", "Category", "comments"),
        ("title", "link", "pubdate", "guid", "description", "category", "Comments"),
    ],
)
def test_tags_in_any_case_read_the_same_both_ways(tags: tuple[str, ...]) -> None:
    title, link, date, guid, description, category, comments = tags
    item = (
        f"<{title}>T</{title}><{link}>http://a.test/1</{link}>"
        f"<{date}>Tue, 02 Jan 2024 06:13:21 +0000</{date}><{guid}>g</{guid}>"
        f"<{description}>d</{description}><{category}>c</{category}>"
        f"<{comments}>http://c.test/</{comments}>"
    )
    body = f"<rss><channel><title>t</title><item>{item}</item></channel></rss>".encode()
    assert read_plain_rss(body, "") is not None
    assert parsed(body, "", plain_rss=True) == parsed(body, "", plain_rss=False)
