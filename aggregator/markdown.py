"""Sanitize entry HTML (nh3 allowlist), make its URLs absolute, and turn it into Markdown that a
Hugo site renders as the same text: no raw HTML (Hugo would omit it), no shortcode calls."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import unquote, urljoin, urlsplit

import html_to_markdown
import nh3
from html_to_markdown import _html_to_markdown as _native
from html_to_markdown.api import _to_rust_conversion_options

from aggregator.defaults import MAX_HTML_NESTING, MAX_TEXT_PIECES
from aggregator.emphasis import CLOSE, EMPHASIS_TAGS, OPEN, hold_emphasis
from aggregator.htmldepth import nesting
from aggregator.text import fold, html_to_text, plain_to_html

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc", "poster"})
CODE_TAGS = frozenset({"pre", "code", "kbd", "samp", "tt"})
WORD_JOINER = "\u2060"
# where lazy-loading pages keep an image's source while `src` is missing or a `data:` stand-in
# (lazysizes and WeChat, jQuery lazyload, WP Rocket, Zhihu)
LAZY_SOURCES = ("data-src", "data-original", "data-lazy-src", "data-actualsrc")

_TAGS = (set(nh3.ALLOWED_TAGS) - {"map", "area"}) | {"video", "audio", "source", "iframe"}
_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "srcset", *LAZY_SOURCES},
    "abbr": {"title"},
    "video": {"src", "poster"},
    "audio": {"src"},
    "source": {"src", "type"},
    "iframe": {"src"},
    "pre": {"class"},
    "code": {"class"},
}
_OPTIONS = html_to_markdown.ConversionOptions(
    extract_metadata=False,
    bullets="-",
    heading_style="atx",
    code_block_style="backticks",
    newline_style="backslash",
    highlight_style="bold",
    autolinks=False,
    escape_asterisks=True,
    escape_underscores=True,
    escape_misc=True,
)
# converted once: the public convert() rebuilds the native options on every call (~0.3 ms)
_NATIVE_OPTIONS = _to_rust_conversion_options(_OPTIONS)

# Noncharacters stand in for text the converter would mangle or leave unsafe; they never occur
# in real text (sanitize() removes any from the input) and pass through the converter untouched.
_NBSP, _LT, _GT, _LBRACE, _STAR, _UNDER, _TICK, _LBRACK, _RBRACK, _AMP = (
    chr(c) for c in range(0xFDD0, 0xFDDA)
)
_WORD_HYPHEN, _WORD_UNDER, _DIGIT_DOT, _DEFINITION, _BANG = (
    chr(c) for c in (0xFDDA, 0xFDDB, 0xFDDC, 0xFDDD, 0xFDE0)
)
# the converter makes every Unicode space but the no-break one an ASCII space: these stand in
# for the ones with a meaning (an indent in Chinese text, French spacing before `!` and `%`)
_SPACES = {space: chr(0xFDE1 + n) for n, space in enumerate("\u2002\u2003\u2007\u2009\u202f\u3000")}
_KEEP_SPACES = str.maketrans(_SPACES)
_TEXT_SEPARATOR = "\ufdef"  # between the texts _mark() marks in one go
_PLACEHOLDERS = re.compile("[\ufdd0-\ufdef]")
_RESTORED = re.compile("[\ufdd0-\ufddd\ufde0-\ufdef]")  # not the markers, which stay
_RESTORED_UTF8 = re.compile(b"\xef\xb7[\x90-\x9d\xa0-\xaf]")  # those, found faster
_RESTORE = {
    _NBSP: "\xa0",
    _LT: "&lt;",
    _GT: "&gt;",
    _LBRACE: "\\{",
    _STAR: "\\*",
    _UNDER: "\\_",
    _TICK: "\\`",
    _LBRACK: "\\[",
    _RBRACK: "\\]",
    _AMP: "\\&",
    _WORD_HYPHEN: "-",
    _WORD_UNDER: "_",
    _DIGIT_DOT: ".",
    _DEFINITION: ": ",  # Hugo's definition list syntax
    _BANG: "\\!",
    **{placeholder: space for space, placeholder in _SPACES.items()},
}
_TITLE_MARKS = {"&lt;": _LT, "&gt;": _GT, "{": _LBRACE, "&amp;": _AMP}
_ALT_MARKS = {**_TITLE_MARKS, "*": _STAR, "_": _UNDER, "`": _TICK, "[": _LBRACK, "]": _RBRACK}
_TITLE_RE = re.compile("&lt;|&gt;|&amp;|[{]")
_ALT_RE = re.compile(r"&lt;|&gt;|&amp;|[{*_`\[\]]")

# inside a word, `-`, `_` (between letters or digits) and a decimal point mean nothing to
# Markdown: spare them escapes
_WORD_HYPHEN_RE = re.compile(r"-(?<=\w-)(?=\w)")
_WORD_UNDER_RE = re.compile(r"_(?<=[^\W_]_)(?=[^\W_])")
_DIGIT_DOT_RE = re.compile(r"\.(?<=\d\.)(?=\d)")
# elements the converter writes inline (a block inside them cannot be a block in Markdown)
_INLINE = frozenset(
    {
        *("a", "abbr", "acronym", "b", "bdi", "bdo", "cite", "data", "del", "dfn", "em", "i"),
        *("ins", "mark", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "time"),
        *("u", "var", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "caption", "summary"),
        *("dt", "td", "th"),
    }
)
# the elements _mark() does more to than write their name in lower case
_MARKED_TAGS = frozenset({"pre", "dl", "dd", *_INLINE, *CODE_TAGS, *EMPHASIS_TAGS})
# common block tags with nothing to mark (_mark() leaves them in the text as they are), and the
# inline ones that only count towards `inline` (read for a `<pre>`) or are `<a>` (dropped
# inside code): those too where no `<pre>` or code element opens
_PLAIN_BLOCKS = r"p|li|[ou]l|tr|t(?:able|body|head)|div|figure|blockquote|br|hr"
_PLAIN_INLINE = "|".join(sorted(_INLINE - EMPHASIS_TAGS.keys() - {"dt"}))
_TAG_REST = r"(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>"
_TAG = re.compile(rf"<(?!/?(?:{_PLAIN_BLOCKS})>){_TAG_REST}")
_TAG_OUTSIDE_CODE = re.compile(rf"<(?!/?(?:{_PLAIN_BLOCKS}|{_PLAIN_INLINE})>){_TAG_REST}")
_CODE_OPENS = re.compile(rf"<(?:{'|'.join(sorted(CODE_TAGS))})(?![a-zA-Z0-9])", re.IGNORECASE)
# the start of a definition's text (none when it is empty)
_DEFINITION_START = re.compile(r"<dd>(?:\s*+<(?:p|div)>)*+\s*+(?!</)")
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    url_schemes=set(LINK_SCHEMES),
    link_rel=None,
    strip_comments=True,
)
_TAG_WITH_ATTRIBUTES = re.compile(r"<([a-z][a-z0-9]*)(\s[^>]*)>")
_ATTRIBUTE_VALUE = re.compile(r'\s([a-z-]+)="([^"]*)"')
_ATTRIBUTE = re.compile(r'\s(alt|title)="([^"]*)"')
_SRC = re.compile(r'\ssrc="([^"]*)"')
_IFRAME = re.compile(r"<iframe\b([^>]*)>.*?</iframe>", re.DOTALL)
# the converter runs two code spans (or two emphases) together into one delimiter run: make
# them one element
_ADJACENT = re.compile(r"</(code|kbd|samp|tt|strong|em|del)><\1>")
_SYNONYM = re.compile(r"<(/?)(b|i|s|strike)>")
_SYNONYMS = {"b": "strong", "i": "em", "s": "del", "strike": "del"}
_IMAGE_ALT = re.compile(r'<img\b[^>]*?\salt="([^"]*)"')
_IMAGE = re.compile(r"<img(\s[^>]*)?>")
_CANDIDATE_URL = re.compile(r"[\s,]*(\S+)")
_CANDIDATE_SIZE = re.compile(r"(\d+(?:\.\d+)?)[wx]")
_IMAGE_WITHOUT_SOURCE = re.compile(r'<img\b(?![^>]*\ssrc=")[^>]*>')
# in nh3's output but an iframe's (raw) text every `<` and `>` is markup and each tag is its name
# then ` name="value"` for each attribute, no value holding `"`, `<` or `>`: an attribute to
# rewrite is one of those with the rest of its tag after it (an even number of quotes)
_REWRITTEN = re.compile(
    r' (href|src|cite|longdesc|poster|class|start)="([^"<>]*)"(?=(?: [a-z-]+="[^"<>]*")*>)'
)
_INVISIBLE_CONTENT = re.compile(
    r"<(script|style|template)\b.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # a `<` that html5ever reads as markup
_TAG_ANYWHERE = re.compile(r"<[A-Za-z/!?][^>]*>?")
_NOSCRIPT = re.compile(r"</?noscript\b[^>]*>", re.IGNORECASE)
_LEADING_IMAGE = re.compile(
    r'^\s*(?:<(?:p|div|figure|a|span)\b[^>]*>\s*)*<img\b[^>]*?\bsrc="([^"]*)"[^>]*>\s*'
    r"(?:</(?:a|span)>\s*)*(?:</(?:p|div|figure)>\s*)?",
)
_FIRST_IMAGE = re.compile(r'<img\b[^>]*?\bsrc="([^"]*)"')
_LIST_START = re.compile(r"[0-9]{1,9}")
_CODE_LANGUAGE = re.compile(r"(?:^|\s)(?:language-|lang-|brush:\s*)([\w+#.-]{1,40})")
# an absolute http(s) URL that urljoin() and urlsplit() give back as it is and that has nothing
# to percent-encode or decode: no `%`, no `;` params, no empty query or fragment
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[\w.~!$&'()*+,=:@/-]*)?"
    r"(?:\?[\w.~!$&'()*+,=:@/?-]+)?(?:#[\w.~!$&'()*+,=:@/?-]+)?",
    re.ASCII,
)
# a path reference that urljoin() resolves by plain concatenation: no scheme-like first segment,
# no dot segment, no empty segment (urljoin drops those when it merges paths)
_PLAIN_PATH = re.compile(
    r"/?[\w~!$&'()*+,=@-][\w.~!$&'()*+,=:@-]*(?:/[\w.~!$&'()*+,=:@-]+)*"
    r"(?:\?[\w.~!$&'()*+,=:@/?-]+)?(?:#[\w.~!$&'()*+,=:@/?-]+)?",
    re.ASCII,
)
_SCHEME_LIKE = re.compile(r"[^/?#]*:")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?=$|[/?#])")
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f\"<>\\^`{|}]")
_SCRIPT_URL = re.compile(r"(?<![a-z0-9])(?:java|vb|live)script:|(?<![a-z0-9])data:", re.IGNORECASE)
_HUGO_OPEN = re.compile(r"\{\{([<%])")
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_HUGO_LITERAL = re.compile(r"\{\{([<%])/\*")
_DEFUSED_DIVIDER = re.compile(f"<!--(\\s*more\\s*)-{WORD_JOINER}->", re.IGNORECASE)
_SUMMARY_DIVIDER = re.compile(r"<!--(\s*more\s*)-->", re.IGNORECASE)


def absolute_url(url: str, base: str | None, schemes: frozenset[str]) -> str | None:
    """`url` made absolute against `base` and percent-encoded where Markdown or Hugo would read
    it as syntax; None unless it is of an allowed scheme and names nothing executable."""
    url = url.strip()
    if not url:
        return None
    if _PLAIN_ABSOLUTE.fullmatch(url) and url[: url.index(":")] in schemes:
        return None if _names_script(url) else url  # what resolve_url() gives back
    joined = _plain_join(base, url) if base else None
    if joined is not None and joined[: joined.index(":")] in schemes:
        return None if _names_script(joined) else joined
    return resolve_url(url, base, schemes)


def _names_script(plain: str) -> bool:
    """_SCRIPT_URL.search() for an ASCII URL, which it can only match where it says `script:`
    or `data:` in any case."""
    lowered = plain.lower()
    return ("script:" in lowered or "data:" in lowered) and bool(_SCRIPT_URL.search(plain))


def _plain_join(base: str, url: str) -> str | None:
    """What urljoin(base, url) gives, when it is a plain absolute URL made by concatenation:
    `base` plain absolute, `url` a plain path (from the root, or with no dot or empty segment
    on either side); else None."""
    if not _PLAIN_PATH.fullmatch(url) or _DOT_SEGMENT.search(url):
        return None
    origin, folder = _base_parts(base)
    if url.startswith("/"):
        return origin + url if origin else None
    if folder is None or _SCHEME_LIKE.match(url):
        return None
    return origin + folder + url


@lru_cache(maxsize=64)
def _base_parts(base: str) -> tuple[str, str | None]:
    """A plain absolute base URL's scheme and host (empty when not plain), and the folder a
    relative path joins (None when it has a dot or empty segment)."""
    if not _PLAIN_ABSOLUTE.fullmatch(base):
        return "", None
    base = base.split("#", 1)[0].split("?", 1)[0]
    start = base.find("/", base.index("//") + 2)
    if start < 0:
        return base, "/"
    origin, path = base[:start], base[start:]
    if "//" in path or _DOT_SEGMENT.search(path):
        return origin, None
    return origin, path[: path.rindex("/") + 1]


def resolve_url(url: str, base: str | None, schemes: frozenset[str]) -> str | None:
    """absolute_url() the long way, for any stripped, non-empty URL."""
    try:
        resolved = urljoin(base, url) if base else url
        parts = urlsplit(resolved)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in schemes or (scheme != "mailto" and not parts.hostname):
        return None
    if _SCRIPT_URL.search(unquote(resolved)):
        return None
    return _URL_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", resolved)


def sanitize(markup: str, base_url: str | None) -> str:
    """Allowlisted HTML: absolute http(s)/mailto links, http(s) images, embeds made links."""
    markup = _without_noscript_tags(markup)
    if not _parseable(markup):  # the text, as HTML made here (nh3 would be as slow on it)
        return _without_placeholders(plain_to_html(_text_of(markup)))
    # after nh3, which decodes a reference such as `&#xfdd0;` to the character itself
    clean = _without_placeholders(_CLEANER.clean(markup))
    if "<img" in clean and (" data-" in clean or " srcset=" in clean):
        clean = _IMAGE.sub(_image_source, clean)
    if "<iframe" in clean:
        return _rewritten_tag_by_tag(clean, base_url)
    return _rewritten(clean, base_url)


def _rewritten(clean: str, base_url: str | None) -> str:
    """nh3's output without an iframe, its attributes rewritten (_rewriter()) in one pass over
    it, images without a source dropped: what _rewritten_tag_by_tag() gives for it."""
    clean = _REWRITTEN.sub(_rewriter(base_url), clean)
    # no image lacks a source when each has one first, as nh3 writes most
    if clean.count("<img") > clean.count('<img src="'):
        return _IMAGE_WITHOUT_SOURCE.sub("", clean)
    return clean


def _rewritten_tag_by_tag(clean: str, base_url: str | None) -> str:
    """Any output of nh3 (an iframe's raw text included) with its attributes rewritten a tag
    at a time, embeds made links and images without a source dropped."""
    attribute = _rewriter(base_url)
    clean = _TAG_WITH_ATTRIBUTES.sub(
        lambda tag: f"<{tag.group(1)}{_ATTRIBUTE_VALUE.sub(attribute, tag.group(2))}>", clean
    )
    if "<iframe" in clean:
        clean = _IFRAME.sub(_iframe_link, clean)
    return _IMAGE_WITHOUT_SOURCE.sub("", clean) if "<img" in clean else clean


def _rewriter(base_url: str | None) -> Callable[[re.Match[str]], str]:
    """The rewriting of one ` name="value"` attribute: a URL made absolute (the attribute
    dropped when it is not a safe one), a code class made its language, a list start too long
    for Markdown dropped, any other kept."""

    def attribute(match: re.Match[str]) -> str:
        key, value = match.groups()
        if key in URL_ATTRIBUTES:
            schemes = LINK_SCHEMES if key == "href" else IMAGE_SCHEMES
            url = absolute_url(_unescape_attr(value), base_url, schemes)
            return f' {key}="{url.replace("&", "&amp;")}"' if url else ""
        if key == "class":
            language = _CODE_LANGUAGE.search(value)
            return f' class="language-{language.group(1)}"' if language else ""
        if key == "start" and not _LIST_START.fullmatch(value):
            return ""  # a Markdown list number has at most 9 digits
        return match.group()

    return attribute


def _image_source(image: re.Match[str]) -> str:
    """An `<img>` of nh3's output with `src` taken, when it has none, from a lazy-loading
    attribute or else the largest candidate of its `srcset`; those attributes dropped."""
    attributes = dict(_ATTRIBUTE_VALUE.findall(image.group(1) or ""))
    chosen = attributes.get("src") or next(
        (attributes[name] for name in LAZY_SOURCES if attributes.get(name)), None
    )
    if not chosen and attributes.get("srcset"):
        chosen = _largest_candidate(attributes["srcset"])
    kept = {"src": chosen} if chosen else {}
    kept |= {k: v for k, v in attributes.items() if k in ("alt", "title")}
    return "<img" + "".join(f' {k}="{v}"' for k, v in kept.items()) + ">"


def _largest_candidate(srcset: str) -> str:
    """The URL of a `srcset`'s widest (or densest) candidate, read as HTML reads the list: a
    URL may hold commas, except at its end, where they end the candidate."""
    best, best_size, pos = "", -1.0, 0
    while found := _CANDIDATE_URL.match(srcset, pos):
        url, pos, descriptor = found.group(1), found.end(), ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = srcset.find(",", pos)
            end = len(srcset) if end < 0 else end
            descriptor, pos = srcset[pos:end].strip(), end + 1
        found_size = _CANDIDATE_SIZE.fullmatch(descriptor)
        size = float(found_size.group(1)) if found_size else 1.0
        if url and size > best_size:
            best, best_size = url, size
    return best


def _parseable(markup: str) -> bool:
    """Whether nh3's parser may be given this HTML: it is quadratic in how deep elements nest
    and in how many pieces it reads one text node in (each `&` and each `<` that starts no tag
    ends a piece: 640 KB of `&` took 7.5 s)."""
    tags = markup.count("<")
    if tags > MAX_HTML_NESTING and nesting(markup) > MAX_HTML_NESTING:
        return False
    return tags + markup.count("&") <= MAX_TEXT_PIECES or _most_pieces(markup) <= MAX_TEXT_PIECES


def _most_pieces(markup: str) -> int:
    """About the most pieces one text node is read in: `&` and stray `<` between two tags."""
    return max(p.count("&") + p.count("<") for p in _TAG_START.split(markup))


def _tags_end(markup: str) -> int:
    """Where the last `>` ends: a tag pattern that needs one matches nothing after it, and
    searching for one from an opener that never closes would read on to the end of the text."""
    return markup.rfind(">") + 1


def _may_hold_placeholders(text: str) -> bool:
    """Whether text may hold a placeholder: a character of U+FDC0 to U+FDFF, found by its UTF-8
    lead bytes (a regex reads non-ASCII text several times slower)."""
    return b"\xef\xb7" in text.encode("utf-8", "surrogatepass")


def _without_placeholders(text: str) -> str:
    """The text without the characters this module uses as placeholders (noncharacters)."""
    return _PLACEHOLDERS.sub("", text) if _may_hold_placeholders(text) else text


def _without_noscript_tags(markup: str) -> str:
    if "<n" not in markup and "<N" not in markup and "</n" not in markup and "</N" not in markup:
        return markup
    end = _tags_end(markup)
    return _NOSCRIPT.sub("", markup[:end]) + markup[end:]


def _text_of(markup: str) -> str:
    """The text of HTML too deep to parse, found without parsing: tags and the content of
    script, style and template elements dropped, entities decoded."""
    return html.unescape(_TAG_ANYWHERE.sub(" ", _INVISIBLE_CONTENT.sub(" ", markup)))


def _iframe_link(match: re.Match[str]) -> str:
    src = _SRC.search(match.group(1))
    return f'<a href="{src.group(1)}">{src.group(1)}</a>' if src else ""


def plain_text(markup: str) -> str:
    """The visible text of untrusted HTML (script and style content dropped), on one line."""
    if "<" not in markup and "&" not in markup:
        return fold(markup)
    return html_to_text(nh3.clean(markup)) if _parseable(markup) else fold(_text_of(markup))


def leading_image(clean: str) -> str | None:
    """The src of an image that stands before any text in sanitized HTML."""
    match = _LEADING_IMAGE.match(clean)
    return _unescape_attr(match.group(1)) if match else None


def drop_leading_image(clean: str) -> str:
    """Sanitized HTML without the image (and its empty wrapper) that stands first."""
    match = _LEADING_IMAGE.match(clean)
    return clean[match.end() :] if match else clean


def image_text(clean: str) -> str:
    """The alternative text of sanitized HTML's images, on one line (a photo post's only text)."""
    return fold(" ".join(html.unescape(alt) for alt in _IMAGE_ALT.findall(clean)))


def first_image(clean: str) -> str | None:
    match = _FIRST_IMAGE.search(clean)
    return _unescape_attr(match.group(1)) if match else None


def to_markdown(clean: str) -> str:
    """Markdown for sanitized HTML that renders the same text: Markdown syntax characters in
    the text escaped, `<` and `>` as entities, no shortcode call, no summary divider."""
    clean = _without_placeholders(clean)  # sanitize() leaves none, but a name may bring one
    try:
        marked = _mark(_kept_spaces(_joined(clean)))
        result = _native.convert(html=marked, options=_NATIVE_OPTIONS, visitor=None)
    except html_to_markdown.ConversionError:  # the converter gave up on this HTML: keep its text
        return defuse_hugo(escape_text(html_to_text(clean)))
    converted = result.content or ""
    if _RESTORED_UTF8.search(converted.encode("utf-8", "surrogatepass")):
        converted = _RESTORED.sub(lambda m: _RESTORE[m.group()], converted)
    return defuse_hugo(hold_emphasis(converted).strip(" \t\n"))


def _kept_spaces(clean: str) -> str:
    return clean.translate(_KEEP_SPACES) if any(s in clean for s in _SPACES) else clean


def _joined(clean: str) -> str:
    """The HTML with each run of adjacent like elements made one element."""
    clean = _SYNONYM.sub(lambda m: f"<{m.group(1)}{_SYNONYMS[m.group(2)]}>", clean)
    joined = 1
    while joined:  # `</code></b><b><code>` joins in two rounds
        clean, joined = _ADJACENT.subn("", clean)
    return clean


def escape_text(text: str) -> str:
    """Plain text as Markdown that shows it as it is: every ASCII punctuation escaped, `<` and
    `>` as entities."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", text).replace("\\<", "&lt;").replace("\\>", "&gt;")


def defuse_hugo(text: str) -> str:
    """Text where Hugo finds no shortcode call and no summary divider, yet shows the same: a
    closed `{{< x >}}` / `{{% x %}}` becomes Hugo's literal form `{{</* x */>}}` (valid in code
    too), an unclosed opener gets an invisible word joiner."""
    if "<!--" in text:
        text = _SUMMARY_DIVIDER.sub(lambda m: f"<!--{m.group(1)}-{WORD_JOINER}->", text)
    if "{{" not in text:
        return text
    out: list[str] = []
    pos = 0
    unclosed = {"<": len(text), "%": len(text)}  # from here on, no closing mark of the kind
    while match := _HUGO_OPEN.search(text, pos):
        mark = match.group(1)
        closing = (">" if mark == "<" else "%") + "}}"
        end = text.find(closing, match.end()) if match.end() < unclosed[mark] else -1
        out.append(text[pos : match.start()])
        if end < 0:
            unclosed[mark] = match.end()
            out.append("{{" + WORD_JOINER + mark)
            pos = match.end()
        else:
            out.append(f"{{{{{mark}/*{text[match.end() : end]}*/{closing}")
            pos = end + len(closing)
    out.append(text[pos:])
    return "".join(out)


def hugo_shown(text: str) -> str:
    """What a Hugo page shows for text defuse_hugo() wrote: the literal shortcode form unwrapped
    as Hugo's lexer does, the word joiners gone. Renderers other than Hugo should get this."""
    if WORD_JOINER in text:
        text = text.replace("{{" + WORD_JOINER, "{{")
        text = _DEFUSED_DIVIDER.sub(lambda m: f"<!--{m.group(1)}-->", text)
    if "{{" not in text:
        return text
    out: list[str] = []
    pos = 0
    while match := _HUGO_LITERAL.search(text, pos):
        closing = "*/" + (">" if match.group(1) == "<" else "%") + "}}"
        end = text.find(closing, match.end())
        if end < 0:
            break
        out.append(text[pos : match.start() + 3] + text[match.end() : end] + closing[2:])
        pos = end + len(closing)
    out.append(text[pos:])
    return "".join(out)


def _mark(clean: str) -> str:
    """Put placeholders in the text outside code (and in alt/title attributes) so that the
    converter neither interprets nor half-escapes what needs escaping for Markdown and Hugo.
    A `<pre>` inside inline markup becomes `<code>`: the converter cannot fence it there, and
    its text must still end up inside backticks."""
    code = inline = 0
    pres: list[bool] = []
    emphasis = dict.fromkeys(EMPHASIS_TAGS.values(), 0)
    terms: list[bool] = []  # for each open list of definitions: whether it had a term yet
    definitions: list[bool] = []  # for each open <dd>: whether it is a definition
    tag = _TAG if _CODE_OPENS.search(clean) else _TAG_OUTSIDE_CODE
    parts = tag.split(clean)  # text, then each tag's `/`, name and attributes, then text
    last = len(parts) - 1
    out: list[str] = []
    marked: list[int] = []  # where in `out` the text outside code is, marked all at once
    for index in range(0, last + 1, 4):
        text = parts[index]
        if text:
            if code:
                text = text.replace("&nbsp;", _NBSP)
            else:
                if index < last and text[-1] == "!":  # `![` would make the link an image
                    text = text[:-1] + _BANG
                marked.append(len(out))
            out.append(text)
        if index == last:
            break
        closing, name, attributes = parts[index + 1], parts[index + 2].lower(), parts[index + 3]
        if name in _MARKED_TAGS:
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
            elif name == "a" and code:  # Markdown has no link inside code: its text stays
                continue
            elif name in EMPHASIS_TAGS and not code:
                # the converter garbles an emphasis inside one of its kind, which adds nothing
                kind = EMPHASIS_TAGS[name]
                emphasis[kind] += -1 if closing else 1
                if emphasis[kind] <= (0 if closing else 1):
                    out.append(f"{CLOSE}</{name}>" if closing else f"<{name}{attributes}>{OPEN}")
                continue
        if attributes and ("alt=" in attributes or "title=" in attributes):
            attributes = _ATTRIBUTE.sub(_mark_attribute, attributes)
        out.append(f"<{closing}{name}{attributes}>")
    if marked:
        # the separator is no word character or digit, as the edge of each text is not
        texts = _marked_text(_TEXT_SEPARATOR.join([out[at] for at in marked]))
        for at, text in zip(marked, texts.split(_TEXT_SEPARATOR), strict=True):
            out[at] = text
    result = "".join(out)
    return _DEFINITION_START.sub(rf"\g<0>{_DEFINITION}", result) if "<dd>" in result else result


def _marked_text(text: str) -> str:
    """Text between two tags, outside code, with its characters that need one as placeholders
    (each mark is decided by its neighbours, which a placeholder does not change as a word
    character or digit would; `-` goes first, as `_` is a word character)."""
    text = text.replace("&lt;", _LT).replace("&gt;", _GT).replace("&nbsp;", _NBSP)
    text = text.replace("{", _LBRACE).replace("\xa0", _NBSP).replace("!<", _BANG + "<")
    if "-" in text:
        text = _WORD_HYPHEN_RE.sub(_WORD_HYPHEN, text)
    if "_" in text:
        text = _WORD_UNDER_RE.sub(_WORD_UNDER, text)
    if "." in text:
        text = _DIGIT_DOT_RE.sub(_DIGIT_DOT, text)
    return text


def _definition_part(name: str, closing: bool, terms: list[bool], definitions: list[bool]) -> str:
    """The element a part of a definition list is written as: a `<dd>` before any `<dt>` of
    its list becomes a `<div>`, since Hugo's `: definition` needs a term line above it (it
    would make a term of the paragraph before)."""
    if name == "dl":
        if closing and terms:
            terms.pop()
        elif not closing:
            terms.append(False)
    elif name == "dt" and terms:
        terms[-1] = True
    elif name == "dd":
        if not closing:
            definitions.append(bool(terms and terms[-1]))
            return "dd" if definitions[-1] else "div"
        return "dd" if not definitions or definitions.pop() else "div"
    return name


def _mark_attribute(match: re.Match[str]) -> str:
    name, value = match.groups()
    value = " ".join(value.split())
    if name == "alt":
        return f' alt="{_sub(_ALT_RE, _ALT_MARKS, value)}"'
    return f' title="{_sub(_TITLE_RE, _TITLE_MARKS, value)}"'


def _sub(pattern: re.Pattern[str], marks: dict[str, str], text: str) -> str:
    return pattern.sub(lambda m: marks[m.group()], text)


def _unescape_attr(value: str) -> str:
    return (
        value.replace("&amp;", "&").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    )
