"""The fast paths of the Markdown glue give what the plain regex passes they stand for give, on
tricky input: tags in any case, code, definitions, entities, stray `<`, placeholders."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import markdown
from aggregator.emphasis import CLOSE, EMPHASIS_TAGS, OPEN
from aggregator.markdown import (
    _ATTRIBUTE,
    _BANG,
    _DEFINITION,
    _DEFINITION_START,
    _DIGIT_DOT,
    _GT,
    _INLINE,
    _LBRACE,
    _LT,
    _MARKED_TAGS,
    _NBSP,
    _NOSCRIPT,
    _PLACEHOLDERS,
    _RESTORED,
    _RESTORED_UTF8,
    _WORD_HYPHEN,
    _WORD_UNDER,
    CODE_TAGS,
    _definition_part,
    _mark,
    _mark_attribute,
    _may_hold_placeholders,
    _tags_end,
    _without_noscript_tags,
)

_TEXT_MARKS = {
    "&lt;": _LT,
    "&gt;": _GT,
    "{": _LBRACE,
    "&nbsp;": _NBSP,
    "\xa0": _NBSP,
    "-": _WORD_HYPHEN,
    "_": _WORD_UNDER,
    ".": _DIGIT_DOT,
    "!": _BANG,
}
_MARK_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>|&lt;|&gt;|&nbsp;|\{|\xa0|!(?=<)"
    r"|-(?<=\w-)(?=\w)|_(?<=[^\W_]_)(?=[^\W_])|\.(?<=\d\.)(?=\d)"
)


def reference_mark(clean: str) -> str:
    """_mark() as one regex pass with a callback for each tag and each character to mark."""
    code = inline = 0
    pres: list[bool] = []
    emphasis = dict.fromkeys(EMPHASIS_TAGS.values(), 0)
    terms: list[bool] = []
    definitions: list[bool] = []

    def token(match: re.Match[str]) -> str:
        nonlocal code, inline
        closing, name, attributes = match.groups()
        if name is None:
            text = match.group()
            if code:
                return _NBSP if text == "&nbsp;" else text
            return _TEXT_MARKS[text]
        name = name.lower()
        if name == "pre":
            if closing:
                name = "code" if pres and pres.pop() else name
            else:
                pres.append(bool(inline or code))
                name = "code" if pres[-1] else name
        elif name in _INLINE:
            inline = max(0, inline - 1) if closing else inline + 1
        if name in ("dl", "dt", "dd"):
            name = _definition_part(name, bool(closing), terms, definitions)
        if name in CODE_TAGS:
            code = max(0, code - 1) if closing else code + 1
        elif name == "a" and code:
            return ""
        elif name in EMPHASIS_TAGS and not code:
            kind = EMPHASIS_TAGS[name]
            emphasis[kind] += -1 if closing else 1
            if emphasis[kind] > (0 if closing else 1):
                return ""
            return f"{CLOSE}</{name}>" if closing else f"<{name}{attributes}>{OPEN}"
        if attributes and ("alt=" in attributes or "title=" in attributes):
            attributes = _ATTRIBUTE.sub(_mark_attribute, attributes)
        return f"<{closing}{name}{attributes}>"

    marked = _MARK_TOKEN.sub(token, clean)
    return _DEFINITION_START.sub(rf"\g<0>{_DEFINITION}", marked) if "<dd>" in marked else marked


_PIECES = [
    *("<p>", "</p>", "<P>", "<li>", "</ul>", "<div>", "<tr>", "<br>", "<p title='a-b'>"),
    *("<pre>", "</pre>", "<PRE>", '<code class="language-py">', "</code>", "<kbd>", "</Kbd>"),
    *("<b>", "</b>", "<strong>", "</strong>", "<em>", "</em>", "<i>", "<del>", "</s>", "<mark>"),
    *('<a href="x-y.z">', "</a>", "<A>", "<span>", "</span>", "<h2>", "</h2>", "<td>"),
    *("<dl>", "</dl>", "<dt>", "</dt>", "<dd>", "</dd>", "<figcaption>", "</figcaption>"),
    *('<img alt="a_b*c[&lt;]" title="x{y&amp;">', '<p title="a-b">', "<p >", "<p\n>"),
    *("&lt;", "&gt;", "&nbsp;", "&amp;", "{", "\xa0", "!", "-", "_", ".", "a", "Z", "1", "9"),
    *("中", " ", "\n", "<", ">", "&", "<1", ";", "!<", "<x", "é", "\ufdd0", "\u2003", "lt"),
    *("a_b", "x-y", "1.5", "a_", "_é", "中-", "-1", "9.", "a!", "&lt;-a", "&nbsp;_"),
    *("<h3>", "</td>", "<th>", "</Th>", "<sub>", "</caption>", "<q>", "<u >", "<tt>", "<DD>"),
    *("<Pre >", "<samp>", "<dt>", "<codes>", "<kbd\n>", "<ab>", "<a title='x_y'>", "</A>"),
]


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_mark_is_the_one_pass_marking(pieces: list[str]) -> None:
    clean = "".join(pieces)
    assert _mark(clean) == reference_mark(clean)


def test_the_tags_mark_leaves_as_they_are_need_nothing_marked() -> None:
    plain = re.findall(r"[a-z]+", "p li ul ol tr table tbody thead div figure blockquote br hr")
    assert not _MARKED_TAGS & set(plain)
    for name in plain:
        for tag in (f"<{name}>", f"</{name}>"):
            assert markdown._TAG.match(tag) is None
            assert _mark(f"a!{tag}b") == reference_mark(f"a!{tag}b")


_NONCHARACTERS = st.characters(min_codepoint=0xFDC0, max_codepoint=0xFDFF)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.text(max_size=5), _NONCHARACTERS), max_size=12))
def test_placeholder_checks_find_what_the_regexes_find(pieces: list[str]) -> None:
    text = "".join(pieces)
    if _PLACEHOLDERS.search(text):
        assert _may_hold_placeholders(text)
    found = _RESTORED_UTF8.search(text.encode("utf-8", "surrogatepass"))
    assert bool(found) == bool(_RESTORED.search(text))


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(["<", "/", "n", "N", "oScript", "noscript", ">", " ", "x"])))
def test_noscript_tags_go_as_the_regex_takes_them(pieces: list[str]) -> None:
    markup = "".join(pieces)
    end = _tags_end(markup)
    assert _without_noscript_tags(markup) == _NOSCRIPT.sub("", markup[:end]) + markup[end:]
