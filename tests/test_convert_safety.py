"""Sanitizing and Markdown escaping: only safe URLs survive, no raw HTML and nothing executable
reaches the body, and text that looks like Markdown or Hugo syntax stays text."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import html_to_markdown
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import FeedConfig, FrontMatterDefaults
from aggregator.convert import convert_entry
from aggregator.defaults import MAX_HTML_NESTING, MAX_TEXT_PIECES
from aggregator.frontmatter import read
from aggregator.htmldepth import nesting
from aggregator.markdown import (
    IMAGE_SCHEMES,
    LINK_SCHEMES,
    WORD_JOINER,
    absolute_url,
    defuse_hugo,
    hugo_shown,
    resolve_url,
    sanitize,
    to_markdown,
)
from aggregator.models import EntryData, FeedData
from tests.entrycheck import hugo_calls, raw_html, unsafe_in
from tests.helpers import run_cli

BASE = "https://site.example/dir/page.html"


def markdown_of(html: str) -> str:
    return to_markdown(sanitize(html, BASE))


@pytest.mark.parametrize(
    ("url", "schemes", "expected"),
    [
        ("/a", LINK_SCHEMES, "https://site.example/a"),
        ("b?x=1#f", LINK_SCHEMES, "https://site.example/dir/b?x=1#f"),
        ("//cdn.example/c", IMAGE_SCHEMES, "https://cdn.example/c"),
        ("mailto:me@example.org", LINK_SCHEMES, "mailto:me@example.org"),
        ("mailto:me@example.org", IMAGE_SCHEMES, None),
        ("javascript:alert(1)", LINK_SCHEMES, None),
        (" JaVaScRiPt:alert(1)", LINK_SCHEMES, None),
        ("java\nscript:alert(1)", LINK_SCHEMES, None),
        ("vbscript:msgbox", LINK_SCHEMES, None),
        ("data:image/png;base64,AAAA", IMAGE_SCHEMES, None),
        ("https://x.example/?u=javascript:alert(1)", LINK_SCHEMES, None),
        ("https://x.example/?u=javascript%3Aalert(1)", LINK_SCHEMES, None),
        ("ftp://x.example/f", LINK_SCHEMES, None),
        ("file:///etc/passwd", LINK_SCHEMES, None),
        ("http://[bad", LINK_SCHEMES, None),
        (
            "https://x.example/a b{c}<d>|e",
            LINK_SCHEMES,
            "https://x.example/a%20b%7Bc%7D%3Cd%3E%7Ce",
        ),
        ("https://x.example/metadata:1", LINK_SCHEMES, "https://x.example/metadata:1"),
    ],
)
def test_only_safe_absolute_urls(url: str, schemes: frozenset[str], expected: str | None) -> None:
    assert absolute_url(url, BASE, schemes) == expected


_URL_CHARS = st.sampled_from(
    [
        *"/a;?# <=&@:_~'(*\\{`[-!+,.",
        "%2F",
        "..",
        "DaTa:",
        "javascript:",
        "JaVaScript:",
        "javascript%3A",
        "ü",
        "b/c",
        "x.y",
    ]
)
_URL_PART = st.lists(_URL_CHARS, max_size=6).map("".join)
_URL = st.tuples(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "//", "", "mailto:"]),
    st.sampled_from(["x.example", "x.example:80", "", "a-b.example", "[::1]", "h_st"]),
    st.sampled_from(["", "/"]),
    _URL_PART,
    st.sampled_from(["", "?", "?q=1", "#", "#f"]),
    _URL_PART,
).map("".join)


_BASE = st.tuples(
    st.sampled_from(["http://", "https://", "HTTP://"]),
    st.sampled_from(["x.example", "x.example:8080", "a-b.example"]),
    st.lists(st.sampled_from(["/", "/a", "/b.html", "/.", "/..", "//", "/x:y"]), max_size=4),
    st.sampled_from(["", "?q=/a/b", "?", "#f/g", "?q#f"]),
).map(lambda parts: "".join([*parts[:2], *parts[2], parts[3]]))


@settings(max_examples=3000, deadline=None)
@given(
    url=_URL,
    base=st.one_of(
        st.sampled_from([BASE, "http://other.example/", None, "mailto:x@y.example"]), _BASE
    ),
    schemes=st.sampled_from([LINK_SCHEMES, IMAGE_SCHEMES, frozenset({"https"})]),
)
def test_the_plain_url_shortcut_changes_nothing(
    url: str, base: str | None, schemes: frozenset[str]
) -> None:
    stripped = url.strip()
    if stripped:
        assert absolute_url(url, base, schemes) == resolve_url(stripped, base, schemes)


_PATH = st.tuples(
    st.sampled_from(["", "/", "//", "?", "#"]),
    st.lists(
        st.sampled_from(["a", "b.png", ".", "..", "", "x:y", "m_1", "%20", "é", "vbScript:x"]),
        max_size=4,
    ),
    st.sampled_from(["", "?q=/a", "#f", "?", "?q#f/."]),
).map(lambda parts: parts[0] + "/".join(parts[1]) + parts[2])


@settings(max_examples=3000, deadline=None)
@given(url=_PATH, base=_BASE)
def test_the_plain_relative_path_shortcut_changes_nothing(url: str, base: str) -> None:
    stripped = url.strip()
    if stripped:
        assert absolute_url(url, base, LINK_SCHEMES) == resolve_url(stripped, base, LINK_SCHEMES)


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ("<p>a<br>b</p>", "a\\\nb"),
        ('<pre><code class="language-rust">fn x() {}</code></pre>', "```rust\nfn x() {}\n```"),
        ('<pre class="lang-js"><code>x</code></pre>', "```js\nx\n```"),
        ('<pre class="brush: python">y</pre>', "```python\ny\n```"),
        ('<pre><code class="language-`evil`">z</code></pre>', "```\nz\n```"),
        ("<dl><dt>Term</dt><dd>Meaning</dd></dl>", "Term\n\n: Meaning"),
        # a definition needs a term above it (else Hugo makes a term of the paragraph before),
        # and an empty one is no line of `:`
        ("<p>Intro</p><dl><dd>Orphan</dd></dl>", "Intro\n\nOrphan"),
        ("<dl><dt>T</dt><dd></dd><dd><p></p></dd><dd> x</dd></dl>", "T\n\n: x"),
        (
            '<figure><img src="f.png" alt="Fig"><figcaption>Cap</figcaption></figure>',
            "![Fig](https://site.example/dir/f.png)\n\n*Cap*",
        ),
        ('<video src="v.mp4"></video>', "[video](https://site.example/dir/v.mp4)"),
        ('<audio><source src="a.ogg"></audio>', "[audio](https://site.example/dir/a.ogg)"),
        (
            '<iframe src="https://player.example/e/1"><p>x</p></iframe>',
            "[https://player.example/e/1](https://player.example/e/1)",
        ),
        ('<img src="ftp://x/y.png" alt="gone">text', "text"),
        ('<img alt="no source">text', "text"),
        (
            '<img src="i.png" alt="a*b_c [d] `e` <f>">',
            "![a\\*b\\_c \\[d\\] \\`e\\` &lt;f&gt;](https://site.example/dir/i.png)",
        ),
        (
            '<a href="/x" title="say &quot;hi&quot; <b>">t</a>',
            '[t](https://site.example/x "say \\"hi\\" &lt;b&gt;")',
        ),
        ("<p>a &lt;b&gt; c</p>", "a &lt;b&gt; c"),
        ("<p>x&nbsp;&nbsp;y</p>", "x\xa0\xa0y"),
        # an ideographic indent, French spacing: spaces with a meaning stay what they are
        ("<p>\u3000\u3000北京消息</p>", "\u3000\u3000北京消息"),
        ("<p>Bonjour\u202f! 5\u202f% a\u2009b</p>", "Bonjour\u202f! 5\u202f% a\u2009b"),
        ("<noscript><p>fallback</p></noscript>", "fallback"),
        ("<h2>T {.cls onclick=x}</h2>", "## T \\{.cls onclick\\=x}"),
        ("<p>snake_case well-known 3.14 *star*</p>", "snake_case well-known 3.14 \\*star\\*"),
        # an underscore next to another is no word's inside: `__init__` would read as emphasis
        ("<p>__init__ x__y</p>", "\\_\\_init\\_\\_ x\\_\\_y"),
        # Markdown has no link inside code, and no list number of more than 9 digits
        ('<pre>see <a href="https://x.org/d">the docs</a></pre>', "```\nsee the docs\n```"),
        ('<ol start="1234567890"><li>big</li></ol>', "1. big"),
        # `![` would make an image of the link
        ('<p>Wow!<a href="/x">link</a></p>', "Wow\\![link](https://site.example/x)"),
    ],
)
def test_html_becomes_markdown_that_says_the_same(html: str, markdown: str) -> None:
    assert markdown_of(html) == markdown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{< x >}}", "{{</* x */>}}"),
        ("{{% y %}}", "{{%/* y */%}}"),
        ("{{<x>}} {{% a %}}", "{{</*x*/>}} {{%/* a */%}}"),
        ("{{< a {{< b >}}", "{{</* a {{< b */>}}"),
        ("{{< open", f"{{{{{WORD_JOINER}< open"),
        ("{{% open %}", f"{{{{{WORD_JOINER}% open %}}"),
        ("{{</* already */>}}", "{{</*/* already */*/>}}"),
        ("<!--more-->", f"<!--more-{WORD_JOINER}->"),
        ("{{ .Title }} {< x >}", "{{ .Title }} {< x >}"),
    ],
)
def test_shortcode_syntax_never_reaches_hugo_as_a_call(text: str, expected: str) -> None:
    defused = defuse_hugo(text)
    assert defused == expected
    assert hugo_calls(defused) == []


@given(st.text(alphabet="{}<>%/*-! more\n`"))
def test_defused_text_calls_nothing_and_hugo_shows_it_as_written(text: str) -> None:
    defused = defuse_hugo(text)
    assert hugo_calls(defused) == []
    assert hugo_shown(defused) == text


def test_many_shortcode_openers_that_never_close_are_defused_quickly() -> None:
    """Each `{{<` once searched the rest of the text for its `>}}` (a minute for these)."""
    text = "{{<" * 200_000 + "{{% x %}}"
    started = time.monotonic()
    defused = defuse_hugo(text)
    assert time.monotonic() - started < 5
    assert defused == f"{{{{{WORD_JOINER}<" * 200_000 + "{{%/* x */%}}"


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">a</a>',
    '<a href="&#106;avascript:alert(1)">b</a>',
    '<a href="data:text/html,<script>alert(1)</script>">c</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe src="https://ok.example/"><script>alert(1)</script></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<form action="https://evil.example"><input></form>',
    '<svg onload="alert(1)"><circle/></svg>',
    '<math><a xlink:href="javascript:alert(1)">m</a></math>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">d</div>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<p>&lt;script&gt;text&lt;/script&gt;</p>",
    "<p>{{< shortcode >}} {{% other %}}</p>",
    "<code>{{< in code >}}</code>",
    "<pre>{{% unclosed\n&lt;!--more--&gt;</pre>",
    "<h1>Heading {onclick=alert(1)}</h1>",
    "<p>*a* _b_ [c](d) ![e](f) `g` # h &lt;i&gt; |j| ~k~</p>",
    "<ul><li>item<li>item two</ul>",
    "<table><tr><td>cell|pipe</td></tr></table>",
    "<blockquote>quote<p>para</blockquote>",
    "<noscript><img src=x onerror=alert(1)></noscript>",
    "<textarea><script>alert(1)</script></textarea>",
    "<p>unclosed <b>bold <i>it",
    "</p></div></code></pre>",
    "<!-- comment <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<xmp><script>alert(1)</script></xmp>",
    "<p>plain text</p>",
    "<b><pre>&lt;x&gt; {{< y >}}</pre></b>",
    "<a href='/x'><pre>&lt;!--more--&gt;</pre></a>",
    "<code><p>&lt;p&gt;</p>\n\n&lt;q&gt;</code>",
    "<h3><pre>&lt;h&gt;</pre></h3>",
    "<dl><dt>t<dd><pre>&lt;d&gt;</pre></dl>",
    "<table><tr><td><pre>a\n\nb &lt;c&gt;</pre>",
    "<figure><figcaption><pre>&lt;f&gt;</pre></figcaption></figure>",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=6))
def test_hostile_html_yields_safe_markdown_without_raw_html(parts: list[str]) -> None:
    markdown = markdown_of("".join(parts))
    assert raw_html(markdown) == []
    assert unsafe_in(markdown) == []
    assert hugo_calls(markdown) == []


@pytest.mark.parametrize("opening", ["<div>", "<ul><li>", "<b>", "<blockquote>", "<table><tr><td>"])
def test_absurdly_deep_html_is_kept_as_text_quickly(opening: str) -> None:
    started = time.monotonic()
    markdown = markdown_of(opening * 100_000 + "deep <script>alert(1)</script>&lt;text&gt;")
    assert time.monotonic() - started < 5
    assert markdown == "deep &lt;text&gt;"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<a " * 32_000, ""),
        ("<noscript " * 40_000, ""),
        ("Since a<b and b<c, we have a<c. " * 8_000, "Since a"),
    ],
)
def test_openers_that_never_close_are_read_quickly(html: str, expected: str) -> None:
    """Each `<x` without a `>` after it once made the nesting count and the `<noscript>`
    removal read on to the end of the text (a minute for these)."""
    started = time.monotonic()
    markdown = markdown_of(html)
    assert time.monotonic() - started < 5
    assert markdown == expected


def test_text_read_in_very_many_pieces_is_kept_quickly() -> None:
    """nh3's parser is quadratic in the pieces it reads one text node in, and each `&` and
    stray `<` ends one: 640 KB of `&` took 7.5 s (and 1.5 MB, 40 s)."""
    started = time.monotonic()
    markdown = markdown_of("<p>1 < 2 " + "&" * 1_500_000 + "</p>")
    assert time.monotonic() - started < 5
    assert markdown == "1 &lt; 2 " + "\\&" * 1_500_000


def test_a_long_listing_under_the_piece_limit_stays_code() -> None:
    listing = "&lt;a href=&quot;x&quot;&gt;\n" * (MAX_TEXT_PIECES // 5)
    markdown = markdown_of(f"<pre><code>{listing}</code></pre>")
    assert markdown == "```\n" + '<a href="x">\n' * (MAX_TEXT_PIECES // 5) + "```"


@pytest.mark.parametrize(
    "unit",
    [
        "<b><table><td></b>x</td></table>",  # the parser ignores </b> inside the cell
        "<div></span>",  # an end tag of nothing open
        "<div/>",  # a slash that does not close an HTML element
        "<div><!--</div>-->",
        '<div title="></div>">',
        "<div><textarea></div></textarea>",
    ],
)
def test_html_deeper_than_its_end_tags_say_is_kept_as_text_quickly(unit: str) -> None:
    """End tags that the parser ignores or never reads as tags once let the nesting count
    take each of these for flat HTML, which the parser nests 60,000 deep."""
    started = time.monotonic()
    markdown_of(unit * 60_000)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "unit",
    [
        "<svg><span><span></svg>",  # <span> ends the SVG: the parser ignores </svg>
        "<svg><![CDATA[></svg>]]>",
        "<form><div></form>",
        "<div><select></div></select>",
        "<h2><div><h1></h2>",  # </h2> closes the <h1>
        "<body><div></body>",
        "<div><script><!--<script></script></div>--></script>",
        "<div></3</div>>",
    ],
)
def test_nesting_counts_what_the_parser_keeps_open(unit: str) -> None:
    assert nesting(unit * (MAX_HTML_NESTING + 1)) > MAX_HTML_NESTING


def title_of(title: str, title_html: bool) -> str:
    entry = EntryData(
        guid="g",
        link="https://site.example/a",
        title=title,
        title_html=title_html,
        content_html="<p>x</p>",
        published=None,
        updated=None,
    )
    feed = FeedData(title="f", link="https://site.example/", language=None, entries=(entry,))
    source = FeedConfig(
        name="s", url="https://site.example/f", lang=None, tags=(), front=FrontMatterDefaults()
    )
    return convert_entry(
        entry, feed, source, ZoneInfo("UTC"), datetime(2024, 1, 1, tzinfo=UTC)
    ).title


def test_an_absurdly_deep_html_title_is_kept_as_text_quickly() -> None:
    started = time.monotonic()
    title = title_of("<div>" * 100_000 + "Deep <b>title</b>", title_html=True)
    assert time.monotonic() - started < 5
    assert title == "Deep title"


def test_a_title_of_spaces_after_a_less_than_sign_is_read_quickly() -> None:
    """The script-like check tried every split of the spaces around an optional `/` (40 s)."""
    started = time.monotonic()
    assert title_of("<" + " " * 10_000 + "x", title_html=False) == "< x"
    assert time.monotonic() - started < 5


def test_ordinary_nesting_keeps_its_structure() -> None:
    nested = "<ul><li>level" * 20 + "</li></ul>" * 20
    assert nesting(nested) == 20
    markdown = markdown_of(nested)
    assert markdown.startswith("- level\n  - level") and markdown.count("- level") == 20


def test_html_the_converter_gives_up_on_is_kept_as_escaped_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def give_up(**_: object) -> object:
        raise html_to_markdown.PanicError("converter failure")

    monkeypatch.setattr("html_to_markdown._html_to_markdown.convert", give_up)
    assert markdown_of("<p>Some *text*</p><p><b>bold</b> {{< x >}}</p>") == (
        "Some \\*text\\* bold \\{\\{&lt; x &gt;\\}\\}"
    )


ESCAPED_SCRIPT_TITLES = (
    "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;b&gt;bold&lt;/b&gt;",
    "Click &amp;lt;img src=x onerror=alert(1)&amp;gt; now",
    "&lt;a href=&quot;javascript:alert(1)&quot;&gt;link&lt;/a&gt;",
)


@pytest.mark.parametrize("escaped", ESCAPED_SCRIPT_TITLES)
@pytest.mark.parametrize("untitled", [False, True])
def test_script_in_an_escaped_title_never_reaches_the_front_matter(
    tmp_path: Path, escaped: str, untitled: bool
) -> None:
    """Neither from the title nor, for an untitled entry, from the words of its body that name
    it (escaped markup there is text, which reads as markup once it is a title)."""
    item = (
        f"<description>{escaped}</description>"
        if untitled
        else f"<title>{escaped}</title><description>body</description>"
    )
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://e.example/</link><item>{item}"
        "<link>https://e.example/1</link></item></channel></rss>"
    )
    (tmp_path / "f.xml").write_text(feed, encoding="utf-8")
    (tmp_path / "c.toml").write_text('[[feeds]]\nname = "t"\nurl = "f.xml"\n', encoding="utf-8")
    assert run_cli("fetch", "-c", str(tmp_path / "c.toml")).returncode == 0
    [entry] = (tmp_path / "feeds").rglob("*.md")
    meta, _ = read(entry.read_text(encoding="utf-8"))
    title = str(meta["title"])
    assert title.strip()
    for marker in ("<script", "onerror", "javascript:"):
        assert marker not in title.lower()


@pytest.mark.parametrize("reference", ["&#xfdd0;", "&#xfde7;", "&#xfdde;", "&#64991;", "\ufdd5"])
def test_noncharacters_the_converter_uses_inside_are_dropped_wherever_they_come_from(
    reference: str,
) -> None:
    """U+FDD0 to U+FDEF stand in for text inside the conversion: one the feed brings, as a
    character or as a reference nh3 decodes, or in an enclosure's file name, is dropped, never
    read as one of them (a KeyError took the whole feed down, or a no-break space came out)."""
    entry = EntryData(
        guid="g",
        link="https://site.example/a",
        title="t",
        content_html=f"<p>one {reference}two <img src='/i.png' alt='{reference}alt'></p>",
        published=None,
        updated=None,
        enclosures=("https://site.example/%EF%B7%A7ep.mp3",),
    )
    feed = FeedData(title="f", link="https://site.example/", language=None, entries=(entry,))
    source = FeedConfig(
        name="s", url="https://site.example/f", lang=None, tags=(), front=FrontMatterDefaults()
    )
    post = convert_entry(entry, feed, source, ZoneInfo("UTC"), datetime(2024, 1, 1, tzinfo=UTC))
    _, body = read(post.text)
    assert "one two ![alt](https://site.example/i.png)" in body
    assert "[ep.mp3](https://site.example/%EF%B7%A7ep.mp3)" in body
    assert not any(0xFDD0 <= ord(char) <= 0xFDEF for char in post.text + post.html)
