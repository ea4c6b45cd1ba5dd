"""sanitize()'s one attribute pass and hold_emphasis()'s table pass give what the general
passes they stand for give: a callback per tag and per attribute, a `^`-led table regex."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import emphasis
from aggregator.emphasis import CLOSE, OPEN
from aggregator.markdown import _CLEANER, _rewritten, _rewritten_tag_by_tag

_VALUES = [
    *("", "x", "/a b", "../c", "?q=1&amp;r=<2>", "#f", "https://h.example/p", "//cdn.example/i"),
    *("javascript:alert(1)", "data:image/png;base64,AA", "mailto:a@b.example", "ftp://x/y"),
    *(" class=", " src=", " href=", "a class=", "x src=", " start=", "language-py", "lang-c x"),
    *("12", "1234567890", "-3", "中文", "&quot;", "'", ">", "<", "&lt;p&gt;", "  ", "\t"),
]
_NAMES = [
    *("href", "src", "cite", "longdesc", "poster", "class", "start", "title", "alt"),
    *("data-src", "srcset", "data-href", "type", "lang", "width"),
]
_TAGS = ["a", "img", "code", "pre", "ol", "q", "blockquote", "video", "source", "iframe", "p"]


@st.composite
def _fragments(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_TAGS))
    attributes = draw(
        st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), max_size=4)
    )
    quote = draw(st.sampled_from(['"', "'"]))
    written = "".join(f" {key}={quote}{value}{quote}" for key, value in attributes)
    text = draw(st.sampled_from(["", "t", ' href="x" ', "a > b", "中", "&amp;"]))
    return f"<{name}{written}>{text}</{name}>"


@settings(max_examples=800, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(_fragments(), st.sampled_from(["<p>", "</p>", " ", "<br>"])), max_size=8),
    st.sampled_from([None, "https://news.example/2024/story.html", "https://a.example/x/../y"]),
)
def test_one_attribute_pass_is_the_pass_per_tag(pieces: list[str], base: str | None) -> None:
    clean = _CLEANER.clean("".join(pieces))
    if "<iframe" not in clean:  # which sanitize() gives to the pass per tag
        assert _rewritten(clean, base) == _rewritten_tag_by_tag(clean, base)


_TABLE = re.compile(r"^\|.*(?:\n\|.*)*", re.MULTILINE)
_LINES = ["| a | b |", "| --- | --- |", f"| {OPEN}x{CLOSE} | y |", "|x", "text", "", "|", " |"]


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_LINES), max_size=8))
def test_tables_are_found_as_the_line_start_regex_finds_them(lines: list[str]) -> None:
    text = "\n".join(lines)
    expected = _TABLE.sub(lambda table: emphasis._align(table.group()), text)
    assert emphasis._aligned_tables(text) == expected
