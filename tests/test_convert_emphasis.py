"""Emphasis next to punctuation: what the converter writes renders as emphasis in CommonMark
(as Hugo's goldmark reads it), never as literal asterisks or tildes, and says the same text."""

from __future__ import annotations

import html
import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from aggregator.emphasis import hold_emphasis
from aggregator.markdown import sanitize, to_markdown

_RENDER = MarkdownIt("commonmark").enable("strikethrough")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def rendered(markdown: str) -> str:
    return str(_RENDER.render(markdown))


def shown_text(rendered_html: str) -> str:
    return _SPACE.sub("", html.unescape(_TAG.sub("", rendered_html)))


@pytest.mark.parametrize(
    ("source", "markdown", "shown"),
    [
        ("<p><strong>记者：</strong>正文</p>", "**记者**：正文", "<strong>记者</strong>：正文"),
        (
            "<p>正文<strong>“引用”</strong>正文</p>",
            "正文“**引用**”正文",
            "正文“<strong>引用</strong>”正文",
        ),
        ("<p><b>Note:</b>text</p>", "**Note**:text", "<strong>Note</strong>:text"),
        ("<p>a<em>(b)</em>c</p>", "a(*b*)c", "a(<em>b</em>)c"),
        ("<p>a<del>b:</del>c</p>", "a~~b~~:c", "a<s>b</s>:c"),
        ("<p><strong>：</strong>正文</p>", "：正文", "：正文"),
        (
            '<p>据<strong><a href="https://x.example/">新华社</a></strong>报道</p>',
            "据[**新华社**](https://x.example/)报道",
            '据<a href="https://x.example/"><strong>新华社</strong></a>报道',
        ),
        ("<p><b>&lt;b&gt;</b>x</p>", "**&lt;b**&gt;x", "<strong>&lt;b</strong>&gt;x"),
        # emphasis that holds as written is left as it is
        ("<p><strong>记者：</strong> 正文</p>", "**记者：** 正文", "<strong>记者：</strong> 正文"),
        ("<p>你好<b>“好”</b>。</p>", "你好“**好”**。", "你好“<strong>好”</strong>。"),
    ],
)
def test_emphasis_beside_punctuation_renders_as_emphasis(
    source: str, markdown: str, shown: str
) -> None:
    written = to_markdown(sanitize(source, None))
    assert written == markdown
    assert rendered(written) == f"<p>{shown}</p>\n"


def test_code_and_links_are_not_read_as_emphasis() -> None:
    text = "```\n**记者：**正文\n```\n\n`**a：**b` [x](https://x.example/*a：*b)"
    assert hold_emphasis(text) == text


_WORDS = st.sampled_from(["记者", "正文", "word", "引用", "3", "é", "x"])
_MARKS = st.sampled_from(
    ["：", "“", "”", "。", "(", ")", ":", "!", "«", "$", "&amp;", "&lt;", "*", "_", "~", "`", "\\"]
)
_PIECE = st.one_of(_WORDS, _MARKS, st.just(" "))
_TEXT = st.lists(_PIECE, min_size=1, max_size=5).map("".join)
_ELEMENT = st.sampled_from(["strong", "em", "b", "i", "del"])


@st.composite
def _inline(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kinds = ["text", "element", "link", "code", "break"] if depth < 2 else ["text"]
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            parts.append(draw(_TEXT))
        elif kind == "code":
            parts.append(f"<code>{draw(_TEXT)}</code>")
        elif kind == "break":
            parts.append("<br>")
        elif kind == "element":
            tag = draw(_ELEMENT)
            parts.append(f"<{tag}>{draw(_inline(depth + 1))}</{tag}>")
        else:
            text = draw(_WORDS) + draw(_inline(depth + 1))  # an empty link shows its URL
            parts.append(f'<a href="https://x.example/">{text}</a>')
    return "".join(parts)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(body=_inline())
# an emphasis dropped next to one already read: that one's closer then meets an opener
@example(body="<strong><em>记者</em>记者</strong><del><strong>记者</strong></del>记者")
def test_any_emphasis_renders_without_literal_delimiters(body: str) -> None:
    source = f"<p>{body}</p>"
    shown = rendered(to_markdown(sanitize(source, None)))
    assert shown_text(shown) == shown_text(source)


def test_table_columns_stay_aligned_around_mended_emphasis() -> None:
    source = (
        "<table><tr><th>who</th><th>said</th></tr>"
        "<tr><td><strong>记者：</strong>正文</td><td><em>yes</em></td></tr></table>"
    )
    assert to_markdown(sanitize(source, None)).split("\n") == [
        "| who       | said  |",
        "| --------- | ----- |",
        "| **记者**：正文 | *yes* |",
    ]


@pytest.mark.parametrize(
    "source",
    [
        "<b>Heading <h2>Inside</h2> tail</b>",
        "<em>Quote: <blockquote>quoted</blockquote> end</em>",
        "<strong>Intro<table><tr><td>cell</td></tr></table>after</strong>",
    ],
)
def test_emphasis_around_blocks_shows_no_delimiters(source: str) -> None:
    shown = _RENDER.enable("table").render(to_markdown(sanitize(source, None)))
    assert shown_text(shown) == shown_text(source)


def test_many_emphases_beside_punctuation_convert_quickly() -> None:
    # each mended pair is replaced in place: a pass that started over after each took minutes
    source = "<p>" + "<b>记者：</b>正文" * 3000 + "</p>"
    started = time.perf_counter()
    written = to_markdown(sanitize(source, None))
    assert time.perf_counter() - started < 5
    assert written == "**记者**：正文" * 3000
