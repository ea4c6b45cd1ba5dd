"""Hostile documents at the parser: entity bombs and external entities neither expand nor leak,
a body naming a local file is not opened, and broken or non-feed bodies are named for what they
are while recoverable feeds are salvaged."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from aggregator.defuse import UnsafeDocument, defuse
from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from tests.helpers import CORPORA, rss
from tests.test_fetch import HTML_PAGE, ILLFORMED, LAUGHS, NO_ENTRIES, QUADRATIC, WRONG_ENCODING

ITEM = (
    b'<rss version="2.0"><channel><title>t</title><item><guid>1</guid><title>x</title>'
    b"<description>%s</description></item></channel></rss>"
)
EXTERNAL = [
    b'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n',
    b'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b"<!DOCTYPE rss [<!ENTITY xxe SYSTEM 'file:///etc/passwd' >]>",
    b'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    b'<!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//x//y" "file:///etc/passwd">]>',
    b'<!-- c --><!DOCTYPE rss SYSTEM "file:///etc/passwd" [<!ENTITY xxe SYSTEM "/etc/hosts">]>',
]


@pytest.mark.parametrize("doctype", EXTERNAL)
def test_external_entities_never_load(doctype: bytes) -> None:
    feed = parse_feed(b'<?xml version="1.0"?>' + doctype + ITEM % b"A &xxe; B")
    text = feed.entries[0].content_html
    assert "root:" not in text and "localhost" not in text
    assert text.startswith("A ") and text.endswith(" B")


def test_billion_laughs_does_not_expand() -> None:
    for document in (LAUGHS, LAUGHS.replace(b"<!ENTITY", b"\n<!ENTITY")):
        started = time.perf_counter()
        feed = parse_feed(document)
        assert time.perf_counter() - started < 1
        assert "lollol" not in feed.entries[0].content_html


def test_a_quadratic_blowup_is_refused_and_small_entities_still_work() -> None:
    with pytest.raises(ParseError, match="entity bomb refused"):
        parse_feed(QUADRATIC)
    sample = CORPORA / "feedparser" / "wellformed" / "rss" / "entity_in_doctype.xml"
    feed = parse_feed(sample.read_bytes())
    assert feed.entries[0].guid == "tag:example.com,2006-05-04:/blog/"
    assert defuse(ITEM) is ITEM
    with pytest.raises(UnsafeDocument, match="unreadable DOCTYPE"):
        defuse(b'<!DOCTYPE rss [<!ENTITY a "unterminated>' + ITEM)


def test_a_doctype_comment_that_never_closes_is_refused_fast() -> None:
    """Each unclosed `<!--` once searched the rest of the body for its end (a minute for this)."""
    started = time.perf_counter()
    with pytest.raises(UnsafeDocument, match="unreadable DOCTYPE"):
        defuse(b'<?xml version="1.0"?><!DOCTYPE rss [' + b"<!--" * 25_000 + b"]>" + ITEM)
    assert time.perf_counter() - started < 5
    with pytest.raises(UnsafeDocument, match="unreadable DOCTYPE"):
        defuse(b"<!DOCTYPE rss [<!-- ]>" + ITEM)
    closed = b'<!DOCTYPE rss [<!-- ]> --><!ENTITY a "b">]>' + ITEM
    assert defuse(closed).startswith(b'<!DOCTYPE rss [\n<!ENTITY a "b">\n]><rss')


def test_an_attribute_flood_is_refused_fast() -> None:
    flood = b" ".join(b'a%d="1"' % i for i in range(100_000))
    started = time.perf_counter()
    with pytest.raises(ParseError, match="an element with more than 256 attributes"):
        parse_feed(ITEM.replace(b"<item>", b"<item " + flood + b">"))
    assert time.perf_counter() - started < 1
    data_uri = b'<img src="data:image/png;base64,' + b"QUFB" * 5000 + b'=="/>'
    wide = ITEM.replace(b"<title>x</title>", b"<title>x</title>" + data_uri)
    assert parse_feed(wide).entries[0].title == "x"


def test_a_body_naming_a_local_file_is_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss("Secret", [("s1", "SECRET")]))
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(str(secret).encode())


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (HTML_PAGE, "text/html", "not a feed (an HTML page)"),
        (b"", "", "empty body"),
        (b" \n\t ", "", "empty body"),
        (NO_ENTRIES, "application/rss+xml", "feed has no entries"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "not a feed"),
    ],
)
def test_non_feeds_are_named(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse_feed(body, content_type)
    assert str(raised.value).startswith(reason)


def test_wrong_encodings_and_broken_markup_are_salvaged() -> None:
    latin = parse_feed(WRONG_ENCODING, "application/rss+xml; charset=utf-8")
    assert latin.entries[0].title == "Café crème brûlée"
    gb = '<?xml version="1.0" encoding="gb2312"?>' + (ITEM % "科技新闻".encode("gb2312")).decode(
        "latin-1"
    )
    assert parse_feed(gb.encode("latin-1"), "text/xml").entries[0].content_html == "科技新闻"
    broken = parse_feed(ILLFORMED)
    assert broken.entries[0].title == "Salvaged & saved"
    assert "readable" in broken.entries[0].content_html


CUT_RSS = (
    '<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>t</title>'
    + "".join(
        f"<item><guid>{n}</guid><title>Title {n} é</title><link>https://e.example/{n}</link>"
        f"<description>&lt;p&gt;Text of {n}, long enough to be cut&lt;/p&gt;</description></item>"
        for n in range(3)
    )
    + "</channel></rss>"
)
CUT_ATOM = (
    '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id>'
    "<updated>2026-11-02T10:00:00Z</updated>"
    + "".join(
        f"<entry><id>urn:{n}</id><title>Title {n}</title><updated>2026-11-02T10:00:00Z</updated>"
        f'<content type="html">&lt;p&gt;Text of {n}&lt;/p&gt;</content></entry>'
        for n in range(3)
    )
    + "</feed>"
)


@pytest.mark.parametrize(
    ("document", "encoding"),
    [(CUT_RSS, "utf-8"), (CUT_RSS, "utf-16"), (CUT_ATOM, "utf-8")],
)
def test_a_document_cut_off_keeps_only_its_whole_entries(document: str, encoding: str) -> None:
    """Wherever a body stops short (a broken connection with no length to tell), the entries
    read from it are whole, as read from the full document: never one cut in the middle."""
    whole = document.format(encoding=encoding).encode(encoding)
    full = parse_feed(whole)
    assert len(full.entries) == 3 and not full.cut_off
    step = 4 if encoding == "utf-16" else 2
    for end in range(len(whole) - step, len(whole) // 2, -step):
        try:
            cut = parse_feed(whole[:end])
        except ParseError as error:
            assert str(error) == "the document ends before its first entry does", end
            continue
        assert cut.cut_off, end
        assert cut.entries == full.entries[: len(cut.entries)], end
    closing = "</channel></rss>" if "<rss" in document else "</feed>"
    unclosed = parse_feed(whole[: len(whole) - len(closing) * (2 if encoding == "utf-16" else 1)])
    assert unclosed.cut_off and unclosed.entries == full.entries


ATOM_XHTML_JA = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>X</title><id>urn:x</id>
<updated>2026-11-02T10:00:00Z</updated>
<entry xml:lang="ja"><title>Poem</title><id>urn:x:1</id><updated>2026-11-02T10:00:00Z</updated>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>one<br/>two<hr/></p></div>
</content></entry>
<entry><title>Plain</title><id>urn:x:2</id><updated>2026-11-02T10:00:00Z</updated>
<summary>text</summary></entry></feed>"""


def test_xhtml_content_keeps_one_break_per_br_and_the_entry_s_own_language() -> None:
    first, second = parse_feed(ATOM_XHTML_JA).entries
    assert first.content_html.count("<br") == 1
    assert "</br>" not in first.content_html
    assert first.language == "ja"
    assert second.language == "en"  # inherited from the feed


def test_a_feed_title_in_html_is_read_as_the_text_it_shows() -> None:
    """As an entry's title: the published `<source><title>` showed `AT&amp;T &mdash; <b>`."""
    atom = CUT_ATOM.replace(
        "<title>t</title>",
        '<title type="html">AT&amp;amp;T &amp;mdash; &lt;b&gt;News&lt;/b&gt;</title>',
        1,
    )
    assert parse_feed(atom.encode()).title == "AT&T — News"
    assert parse_feed(CUT_ATOM.encode()).title == "t"
    rss_html = rss("Tom &amp; Jerry <i>daily</i>", [("1", "x")])
    for plain_rss in (True, False):
        assert parse_feed(rss_html, plain_rss=plain_rss).title == "Tom & Jerry daily"


BARE_AMPERSANDS = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>R&D News</title>'
    b"<link>https://rd.example/?a=1&b=2</link><item><title>Q&A: Ben & Jerry's R&D</title>"
    b"<guid>rd1</guid><description>AT&T &amp; T-Mobile &#38; &#x26; co</description>"
    b"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
    b"<![CDATA[<p>Fish &amp; chips & R&D;</p>]]></content:encoded><!-- a & b --></item>"
    b"</channel></rss>"
)


@pytest.mark.parametrize("plain_rss", [True, False])
def test_bare_ampersands_are_read_as_written(plain_rss: bool) -> None:
    """A document that is not well-formed only for its bare `&` is read with them escaped,
    not by feedparser's loose parser, which wrote `Q&A;`; CDATA and comments are left as
    they are, and a document broken otherwise is still salvaged."""
    feed = parse_feed(BARE_AMPERSANDS, plain_rss=plain_rss)
    assert (feed.title, feed.link) == ("R&D News", "https://rd.example/?a=1&b=2")
    [entry] = feed.entries
    assert entry.title == "Q&A: Ben & Jerry's R&D"
    assert entry.content_html == "<p>Fish &amp; chips & R&D;</p>"
    without_content = re.sub(rb"<content:encoded.*</content:encoded>", b"", BARE_AMPERSANDS)
    summary = parse_feed(without_content, plain_rss=plain_rss).entries[0].content_html
    assert summary == "AT&T & T-Mobile & & co"
    broken = parse_feed(BARE_AMPERSANDS.replace(b"</channel>", b"<b></channel>"))
    assert broken.entries[0].title == "Q&A;: Ben & Jerry's R&D;"  # feedparser's loose reading
