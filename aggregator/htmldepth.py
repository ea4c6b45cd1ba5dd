"""How deep nh3's parser (html5ever) would nest the elements of an HTML fragment, found in linear
time without building its tree: parsing is quadratic in that depth, so deeper markup is kept as
text. The count reads tags as the parser's tokenizer does (quoted attribute values, comments,
raw text) and follows the tree builder where it keeps elements open that the tags seem to
close (an end tag it ignores, formatting elements it opens again); elsewhere it errs high.
SVG and MathML are followed only roughly: markup that reads one way there and another in HTML
can still make the count low."""

from __future__ import annotations

import re
from functools import cache, lru_cache

from aggregator.defaults import MAX_HTML_NESTING

# from a `<`: a comment, a bogus comment (`<!DOCTYPE …>`, `<?…>`, `</3…>`), or a tag (end tag or
# name, attributes, the closing `>`); each reads on to the end of the text when it does not
# close, so that no `<` is read twice
_TOKEN = re.compile(
    r"<!--(?:-?>|.*?--!?>|.*)"
    r"|<(?:[!?]|/(?![a-zA-Z>]))[^>]*>?"
    r"|<(/?)([a-zA-Z][^\t\n\f\r />]*)"
    r"(?:[\t\n\f\r /]++|[^\t\n\f\r />][^\t\n\f\r />=]*+"
    r"""(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"[^"]*+"?|'[^']*+'?|[^\t\n\f\r >]*+))?+)*+(>?)""",
    re.DOTALL,
)
_CDATA_END = re.compile(r"\]\]>")
_SCRIPT_MARK = re.compile(r"<!--(-*>)?|--+>|<(/?)script(?=[\t\n\f\r />])", re.IGNORECASE)
# elements the count leaves out: void ones, those an opening sibling closes, those the parser
# of a fragment never opens
_NOT_NESTING = frozenset(
    {
        *("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"),
        *("track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot"),
        *("colgroup", "caption", "option", "optgroup", "rt", "rp", "html", "head", "body"),
        *("frameset", "frame"),
    }
)
# elements whose content is text to the parser (noscript too: nh3 parses with scripting on)
_RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"}
)
# the parser's "special" elements: an end tag of another element does not close past them
_SPECIAL = frozenset(
    {
        *("address", "applet", "article", "aside", "basefont", "bgsound", "blockquote", "button"),
        *("center", "details", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer"),
        *("form", "h1", "header", "hgroup", "iframe", "keygen", "listing", "main", "marquee"),
        *("menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "param", "plaintext"),
        *("pre", "script", "search", "section", "select", "style", "summary", "table", "template"),
        *("textarea", "title", "ul", "xmp"),
    }
)
# the boundaries of the parser's scopes: an end tag of a special element does not close past
_SCOPE = frozenset({"applet", "marquee", "object", "table", "template"})
# closed by an end tag past elements other than special ones (else left open and reparented)
# and opened again by the text that follows when another end tag closed them
_FORMATTING = frozenset(
    {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt"}
    | {"u"}
)
# HTML start tags that end SVG or MathML content
_BREAKOUT = frozenset(
    {
        *("b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt"),
        *("em", "embed", "h1", "head", "hr", "i", "img", "li", "listing", "menu", "meta"),
        *("nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub"),
        *("sup", "table", "tt", "u", "ul", "var", "font"),
    }
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _OpenElements:
    """The parser's stack of open elements as far as the count follows it."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.specials: list[int] = []  # where special elements stand in `names`
        self.scopes: list[int] = []
        self.foreign: list[int] = []  # where open <svg> and <math> stand
        self.deepest = 0

    def open(self, name: str) -> None:
        if self.foreign and name in _BREAKOUT:
            self._end_foreign()
        if name in _NOT_NESTING:
            return
        at = len(self.names)
        if name in _SPECIAL:
            self.specials.append(at)
            if name in _SCOPE:
                self.scopes.append(at)
        elif name in ("svg", "math"):
            self.foreign.append(at)
        self.names.append(name)
        if at >= self.deepest:
            self.deepest = at + 1

    def close(self, name: str) -> None:
        """An end tag: it closes the last element of its name and those after it unless the
        parser would ignore it; formatting elements it closes on the way are opened again."""
        names = self.names
        if names and names[-1] == name and not self.foreign:
            self._pop(len(names) - 1)
            return
        if self.foreign and self._last(name) < self.foreign[-1]:
            self._end_foreign()  # the parser reads it as HTML, which ends SVG and MathML
        at = self._last(name)
        barriers = self.scopes if name in _SPECIAL else self.specials
        if at < 0 or (barriers and barriers[-1] > at):
            return  # nothing of that name is open, or the parser does not close past a barrier
        if name == "form" or ("select" in names and name != "select"):
            return  # a form's end tag closes the form alone; a <select> ignores other end tags
        reopened = [n for n in names[at + 1 :] if n in _FORMATTING]
        self._pop(at)
        for formatting in reopened:
            self.open(formatting)

    def _last(self, name: str) -> int:
        """Where the last open element of that name stands, -1 if none."""
        names = self.names
        return len(names) - 1 - names[::-1].index(name) if name in names else -1

    def _pop(self, at: int) -> None:
        """The elements from `at` on closed."""
        del self.names[at:]
        for places in (self.specials, self.scopes, self.foreign):
            while places and places[-1] >= at:
                places.pop()

    def _end_foreign(self) -> None:
        """The elements from the first open <svg> or <math> on made unmatchable: the parser
        closed them (or some of them), and the count keeps them."""
        if self.foreign:
            for at in range(self.foreign[0], len(self.names)):
                self.names[at] = ""
            self.foreign.clear()


def nesting(markup: str) -> int:
    """How deep the elements of an HTML fragment nest (elements whose end tag may be left out,
    like `<p>` and `<li>`, not counted), stopping once past MAX_HTML_NESTING."""
    elements = _OpenElements()
    foreign_seen = False
    pos = 0
    while elements.deepest <= MAX_HTML_NESTING and (token := _TOKEN.search(markup, pos)):
        pos = token.end()
        closing, name, closed = token.groups()
        if name is None:
            if foreign_seen and token.group().startswith("<![CDATA["):
                pos = _end_of(_CDATA_END.search(markup, token.start()), len(markup))
                _open_all(elements, markup, token.end(), pos)  # text unless in SVG or MathML
            continue
        if not closed:
            break  # the text ends inside this tag: the parser drops it
        name = _normal(name)
        if closing:
            elements.close(name)
            continue
        elements.open(name)
        foreign_seen = foreign_seen or name in ("svg", "math")
        if name in _RAW_TEXT or name == "plaintext":
            end = _raw_text_end(markup, name, pos)
            if foreign_seen:  # raw text to HTML, markup inside SVG: count what it opens
                _open_all(elements, markup, pos, end)
            pos = end
    return elements.deepest


@lru_cache(maxsize=1024)
def _normal(name: str) -> str:
    """A tag name as the count compares it: ASCII lower case (as the parser folds it), each
    heading `h1` (the end tag of any heading closes the last open one)."""
    name = name.lower() if name.isascii() else name
    return "h1" if name in _HEADINGS else name


def _open_all(elements: _OpenElements, markup: str, start: int, end: int) -> None:
    """The start tags between `start` and `end` opened, their end tags ignored."""
    for token in _TOKEN.finditer(markup, start, end):
        if token.group(2) and not token.group(1):
            elements.open(_normal(token.group(2)))


def _raw_text_end(markup: str, name: str, start: int) -> int:
    """Where the raw text of a `name` element that opens at `start` ends: at its end tag."""
    if name == "plaintext":
        return len(markup)
    if name == "script":
        return _script_end(markup, start)
    return _end_of(_end_tag(name).search(markup, start), len(markup))


@cache
def _end_tag(name: str) -> re.Pattern[str]:
    return re.compile(f"</{name}(?=[\t\n\f\r />])", re.IGNORECASE)


def _script_end(markup: str, start: int) -> int:
    """Where a script's text ends, by the tokenizer's script states: `</script` ends it,
    except after `<!--` then `<script` (until `</script` or `-->`)."""
    escaped = double = False
    for mark in _SCRIPT_MARK.finditer(markup, start):
        text = mark.group()
        if text.startswith("<!--"):
            if mark.group(1):
                escaped = double = False
            elif not double:
                escaped = True
        elif text.startswith("-"):
            escaped = double = False
        elif mark.group(2):
            if not double:
                return mark.start()
            double = False
        elif escaped:
            double = True
    return len(markup)


def _end_of(match: re.Match[str] | None, default: int) -> int:
    return match.end() if match else default
